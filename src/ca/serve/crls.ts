/**
 * The CRLs `ca serve` publishes, read from the store (the one place every replica and the CLI
 * write them), and kept fresh:
 *
 * - GET answers reuse what was read for `cacheMs` (1 s): a CRL the CLI re-signs (`revoke`
 *   re-signs the intermediate's at once) or another replica re-signs is served within a
 *   second. ETag is the CRL's number plus a hash of its DER; `If-None-Match` gives 304.
 * - Cache-Control max-age is the time until the CRL's planned re-sign (two thirds of its
 *   validity, the `crl --if-due` rule), capped at `maxAgeMs` (5 min by default) so that HTTP
 *   caches pick up a revocation within minutes rather than days.
 * - A timer (every `checkMs`, 60 s by default, with jitter) runs the `crl --if-due` logic:
 *   re-signs a CRL once it is due or when an active revocation is missing from it (a
 *   revocation whose CRL write was cut short). Two replicas racing both re-sign (under the
 *   store's lock, with increasing numbers): harmless, the later one is served.
 * - The root's CRL is re-signed only where the root key is (normally offline); when it is due
 *   and the key is not here, health and the log say so.
 */
import { parseCrl } from '../../x509/crl.js';
import type { Authority } from '../authority.js';
import { crlState, type CrlState } from '../crl-signing.js';
import { writeCrls } from '../revocation.js';
import type { CrlName } from '../store/store.js';
import { silentLog } from '../../util/log.js';
import { sha256Hex } from '../../util/sha256.js';

export interface PublishedCrl {
  readonly der: Buffer;
  readonly etag: string;
  readonly number: string;
  readonly state: CrlState;
  /** when the timer will re-sign it (two thirds of its validity) */
  readonly plannedResign: Date;
}

export interface CrlPublisherOptions {
  readonly cacheMs?: number;
  readonly maxAgeMs?: number;
  readonly checkMs?: number;
  readonly log?: (message: string) => void;
  /** called for each CRL this process re-signed */
  readonly onResigned?: (which: CrlName, number: string) => void;
}

export interface CrlCheck {
  readonly at: string;
  readonly signed: CrlName[];
  readonly error?: string;
  readonly note?: string;
}

export class CrlPublisher {
  readonly #ca: Authority;
  readonly #cacheMs: number;
  readonly #maxAgeMs: number;
  readonly #checkMs: number;
  readonly #log: (m: string) => void;
  readonly #onResigned: ((which: CrlName, number: string) => void) | undefined;
  readonly #cache = new Map<CrlName, { at: number; crl: Promise<PublishedCrl | undefined> }>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<CrlCheck> | undefined;
  lastCheck: CrlCheck | undefined;

  constructor(ca: Authority, options: CrlPublisherOptions = {}) {
    this.#ca = ca;
    this.#cacheMs = options.cacheMs ?? 1000;
    this.#maxAgeMs = options.maxAgeMs ?? 300_000;
    this.#checkMs = options.checkMs ?? 60_000;
    this.#log = options.log ?? silentLog;
    this.#onResigned = options.onResigned;
  }

  /** The stored CRL (re-read once `cacheMs` passed), or undefined before the first one. */
  get(which: CrlName): Promise<PublishedCrl | undefined> {
    const now = Date.now();
    const hit = this.#cache.get(which);
    if (hit && now - hit.at < this.#cacheMs) return hit.crl;
    const crl = this.#read(which);
    this.#cache.set(which, { at: now, crl });
    crl.catch(() => this.#cache.delete(which)); // a failed read is not cached
    return crl;
  }

  async #read(which: CrlName): Promise<PublishedCrl | undefined> {
    const der = await this.#ca.store.readCrl(which);
    if (!der) return undefined;
    const parsed = parseCrl(der);
    const state = crlState(parsed, this.#ca.now());
    const start = parsed.thisUpdate.getTime();
    const end = (parsed.nextUpdate ?? parsed.thisUpdate).getTime();
    const hash = sha256Hex(der).slice(0, 16);
    return { der, etag: `"${state.number}-${hash}"`, number: state.number, state, plannedResign: new Date(start + ((end - start) * 2) / 3) };
  }

  /** Seconds a client (or cache) may keep this CRL: until its planned re-sign, at most maxAgeMs. */
  maxAge(crl: PublishedCrl): number {
    const untilResign = crl.plannedResign.getTime() - this.#ca.now().getTime();
    return Math.max(0, Math.floor(Math.min(untilResign, this.#maxAgeMs) / 1000));
  }

  /** Runs the `crl --if-due` logic now (one run at a time in this process). */
  check(): Promise<CrlCheck> {
    this.#running ??= this.#check().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #check(): Promise<CrlCheck> {
    const at = new Date().toISOString();
    let result: CrlCheck;
    try {
      const r = await writeCrls(this.#ca, { ifDue: true });
      const signed: CrlName[] = [];
      if (r.intermediate.signed) signed.push('intermediate');
      if (r.root.signed) signed.push('root');
      for (const which of signed) {
        this.#cache.delete(which);
        const number = which === 'root' ? r.root.state.number : r.intermediate.state.number;
        this.#onResigned?.(which, number);
        this.#log(`re-signed the ${which} CRL (#${number})`);
      }
      if (r.root.note) this.#log(`warning: ${r.root.note}`);
      result = { at, signed, ...(r.root.note ? { note: r.root.note } : {}) };
    } catch (e) {
      const message = (e as Error)?.message ?? String(e);
      this.#log(`warning: could not re-sign the CRLs (will retry): ${message}`);
      result = { at, signed: [], error: message };
    }
    this.lastCheck = result;
    return result;
  }

  /** Checks now, then every checkMs (±10 % so that replicas spread out). */
  start(): void {
    if (this.#timer || this.#checkMs <= 0) return;
    const schedule = () => {
      this.#timer = setTimeout(() => void this.check().finally(() => this.#timer && schedule()), this.#checkMs * (0.9 + Math.random() * 0.2));
      this.#timer.unref();
    };
    void this.check();
    schedule();
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
