/**
 * Whether each route's upstream answers, for /healthz: a bounded, cached probe. At most one
 * probe per route is in flight, a result is reused for {@link PROBE_EVERY_MS}, and a probe
 * gives up after {@link PROBE_TIMEOUT_MS}: however often /healthz is asked, the upstream sees
 * at most one `HEAD` per route per interval, and /healthz answers within the timeout.
 * Any HTTP answer counts as reachable (an MCP endpoint answers HEAD with 405, or 401 without
 * the gateway's identity); a refused or reset connection, a TLS failure or the timeout do not.
 */
import { request, type Dispatcher } from 'undici';

/** How long a probe's result is reused. */
export const PROBE_EVERY_MS = 5_000;
/** How long a probe waits for the upstream's response headers (connection included). */
export const PROBE_TIMEOUT_MS = 2_000;

/** One route's upstream as /healthz reports it. */
export interface UpstreamHealth {
  readonly route: string;
  readonly upstream: string;
  readonly reachable: boolean;
  /** the HTTP status the probe got */
  readonly status?: number;
  /** why it is not reachable */
  readonly error?: string;
  readonly checkedAt: string;
}

/** The probe of one upstream. */
export class UpstreamProbe {
  #last: (UpstreamHealth & { at: number }) | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly route: string,
    private readonly upstream: URL,
    private readonly dispatcher: Dispatcher,
  ) {}

  /** The last result, probing first when it is older than {@link PROBE_EVERY_MS} (at most one probe at a time). */
  async health(now = Date.now()): Promise<UpstreamHealth> {
    if (!this.#last || now - this.#last.at >= PROBE_EVERY_MS) {
      this.#running ??= this.#probe().finally(() => (this.#running = undefined));
      await this.#running;
    }
    const { at: _at, ...h } = this.#last as UpstreamHealth & { at: number };
    return h;
  }

  async #probe(): Promise<void> {
    const base = { route: this.route, upstream: this.upstream.href };
    const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
    try {
      const r = await request(this.upstream, { method: 'HEAD', dispatcher: this.dispatcher, headersTimeout: PROBE_TIMEOUT_MS, signal });
      r.body.on('error', () => undefined);
      r.body.destroy();
      this.#last = { ...base, reachable: true, status: r.statusCode, checkedAt: new Date().toISOString(), at: Date.now() };
    } catch (e) {
      const err = e as { code?: string; cause?: { code?: string; message?: string }; message?: string; name?: string };
      const code = err.code ?? err.cause?.code;
      const why = signal.aborted || err.name === 'TimeoutError' ? `no answer within ${PROBE_TIMEOUT_MS} ms` : `${code ? `${code}: ` : ''}${err.cause?.message ?? err.message ?? String(e)}`;
      this.#last = { ...base, reachable: false, error: why, checkedAt: new Date().toISOString(), at: Date.now() };
    }
  }
}
