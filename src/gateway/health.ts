/**
 * Whether each route's upstream answers, for /healthz: a bounded, cached probe. At most one
 * probe per route is in flight, a result is reused for {@link PROBE_EVERY_MS}, and a probe
 * gives up after {@link PROBE_TIMEOUT_MS}: however often /healthz is asked, the upstream sees
 * at most one `HEAD` per route per interval, and /healthz answers within the timeout.
 * Any HTTP answer counts as reachable (an MCP endpoint answers HEAD with 405, or 401 without
 * the gateway's identity); a refused or reset connection, a TLS failure or the timeout do not.
 *
 * /healthz answers without a client certificate, so what it says names no upstream address
 * and no error text (found in review, issue 19: it printed each upstream's URL, credentials
 * included, and messages such as `connect ECONNREFUSED 10.0.0.5:8443` to anyone): the route,
 * reachable or not, the HTTP status and an error code; the full reason goes to the
 * operator's log ({@link UpstreamProbe}'s `onChange`).
 */
import { request, type Dispatcher } from 'undici';

/** How long a probe's result is reused. */
export const PROBE_EVERY_MS = 5_000;
/** How long a probe waits for the upstream's response headers (connection included). */
export const PROBE_TIMEOUT_MS = 2_000;

/** One route's upstream as /healthz reports it (to anyone: no address, no error text). */
export interface UpstreamHealth {
  readonly route: string;
  readonly reachable: boolean;
  /** the HTTP status the probe got */
  readonly status?: number;
  /** why it is not reachable, as a code: `ECONNREFUSED`, `ECONNRESET`, `timeout`, `tls`, ... */
  readonly error?: string;
  readonly checkedAt: string;
}

/** The code of a probe failure, never its message (which names addresses and certificate names). */
function errorCode(e: unknown, timedOut: boolean): string {
  if (timedOut) return 'timeout';
  const err = e as { code?: unknown; cause?: { code?: unknown } };
  const code = typeof err?.cause?.code === 'string' ? err.cause.code : typeof err?.code === 'string' ? err.code : undefined;
  if (code === undefined) return 'unreachable';
  // OpenSSL's certificate codes (ERR_TLS_CERT_ALTNAME_INVALID, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) as one word
  if (/^ERR_TLS_|^ERR_SSL_|CERT|SIGNATURE|^DEPTH_ZERO|^SELF_SIGNED/.test(code)) return 'tls';
  return /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'unreachable';
}

/** The probe of one upstream. */
export class UpstreamProbe {
  #last: (UpstreamHealth & { at: number }) | undefined;
  #running: Promise<void> | undefined;

  /**
   * @param onChange - told, with the full reason (upstream URL without credentials, error
   *   message), each time the upstream becomes unreachable or reachable again: for the log
   */
  constructor(
    private readonly route: string,
    private readonly upstream: URL,
    private readonly dispatcher: Dispatcher,
    private readonly onChange?: (line: string) => void,
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
    const base = { route: this.route };
    const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
    const wasReachable = this.#last?.reachable;
    // for the log only: the upstream without userinfo
    const where = `${this.upstream.protocol}//${this.upstream.host}${this.upstream.pathname}`;
    try {
      const r = await request(this.upstream, { method: 'HEAD', dispatcher: this.dispatcher, headersTimeout: PROBE_TIMEOUT_MS, signal });
      r.body.on('error', () => undefined);
      r.body.destroy();
      this.#last = { ...base, reachable: true, status: r.statusCode, checkedAt: new Date().toISOString(), at: Date.now() };
      if (wasReachable === false) this.onChange?.(`upstream of ${this.route} (${where}) answers again (HTTP ${r.statusCode})`);
    } catch (e) {
      const err = e as { code?: string; cause?: { code?: string; message?: string }; message?: string; name?: string };
      const timedOut = signal.aborted || err.name === 'TimeoutError';
      const code = err.code ?? err.cause?.code;
      const why = timedOut ? `no answer within ${PROBE_TIMEOUT_MS} ms` : `${code ? `${code}: ` : ''}${err.cause?.message ?? err.message ?? String(e)}`;
      this.#last = { ...base, reachable: false, error: errorCode(e, timedOut), checkedAt: new Date().toISOString(), at: Date.now() };
      if (wasReachable !== false) this.onChange?.(`upstream of ${this.route} (${where}) is unreachable: ${why}`);
    }
  }
}
