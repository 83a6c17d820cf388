/**
 * CRLs from URLs, in the background: each URL is fetched on an interval (ETag / If-None-Match,
 * Cache-Control max-age), every CRL it returns is verified against the trusted CA certificates
 * and must not be older than the one applied for its CA (rollback and replay protection). A
 * fetch that fails for any reason (network, HTTP status, size, signature, older number) keeps
 * the last good CRLs, is logged with the URL and the reason, and is retried with backoff.
 *
 * Nothing here runs on the request path: URLs learned from client certificates are only
 * recorded (`add`), and the timers fetch them.
 *
 * HTTPS: the server is verified against the system roots plus the configured CA certificates
 * (so `mcp-mtls ca serve`, whose certificate our CA issued, works). Redirects are not followed.
 * The CRL's own signature is what makes it trusted; TLS only adds privacy and availability.
 *
 * The GET and its limits are util/bounded-get.ts, the checks and merge of an answer's CRLs
 * crl-merge.ts, when to fetch next crl-schedule.ts; this module holds the URLs and their timers.
 */
import { setMaxListeners } from 'node:events';
import tls from 'node:tls';
import { MtlsError } from '../errors.js';
import { boundedGet, type BoundedGetResponse } from '../util/bounded-get.js';
import { looksLikePem, pemEncode } from '../x509/pem.js';
import { mergeFetchedCrls } from './crl-merge.js';
import { nextFetchDelay } from './crl-schedule.js';
import type { CrlVerifier, VerifiedCrl } from './revocation.js';

export const CRL_FETCH_DEFAULTS = {
  intervalMs: 300_000,
  minIntervalMs: 1_000,
  timeoutMs: 10_000,
  maxBytes: 10 * 1024 * 1024,
  /** Cache-Control max-age shorter than the interval is honoured, but not below this */
  minMaxAgeMs: 30_000,
  /** first retry after a failure (then doubling, up to the interval) */
  retryMs: 5_000,
  /** learned URLs (from certificates) kept at most (createTrust raises it to maxLearnedPerCa per CA certificate) */
  maxLearned: 32,
  /** learned URLs taken per issuing CA: one tenant's certificates naming many URLs cannot use up the others' */
  maxLearnedPerCa: 4,
  warnWithinMs: 86_400_000,
} as const;

export interface CrlFetchOptions {
  readonly urls: readonly string[];
  readonly verifier: CrlVerifier;
  /** the CRLs applied now (files and fetched), for the "not older" check */
  readonly applied: () => readonly VerifiedCrl[];
  /** a URL returned a newer CRL than the one applied for its CA: rebuild and apply */
  readonly onUpdate: (url: string, crls: readonly VerifiedCrl[]) => void;
  readonly log: (message: string) => void;
  /** how often each URL is fetched (default 5 minutes, at least 1 s) */
  readonly intervalMs?: number;
  /** per fetch, connection to last byte (default 10 s) */
  readonly timeoutMs?: number;
  /** bodies larger than this are refused (default 10 MiB) */
  readonly maxBytes?: number;
  /** CA certificates (DER or PEM) trusted for https URLs, in addition to the system roots */
  readonly ca?: readonly Uint8Array[];
  /** warn on a failed fetch when a kept CRL's nextUpdate is this close (default 1 day) */
  readonly warnWithinMs?: number;
  readonly clock?: () => Date;
  /** URLs learned from certificates (`add(url, 'certificate')`) kept at most (default 32) */
  readonly maxLearned?: number;
}

/**
 * How a CRL URL became known: `configured` when given at start (`crlUrls`, and with
 * `crlFromCertificates` those named by the CA certificates and the server's own chain);
 * `certificate` when learned later from a client certificate (at most 32 such URLs).
 */
export type CrlSourceOrigin = 'configured' | 'certificate';

/**
 * One CRL URL a server fetches and how its fetches went, from `MtlsServer.crlSources()`
 * (also in the gateway's /healthz and /metrics). Dates are snapshots; call again for fresh ones.
 */
export interface CrlSourceStatus {
  /** The URL as fetched (normalised by the URL parser). */
  readonly url: string;
  readonly origin: CrlSourceOrigin;
  /** pending: not fetched yet; ok: the last fetch gave a usable answer; error: it did not (the last good CRLs are kept) */
  readonly status: 'pending' | 'ok' | 'error';
  /** When the last fetch started. */
  readonly lastAttempt?: Date;
  /** the last 200 with a valid CRL, or 304 */
  readonly lastSuccess?: Date;
  /** when a fetched CRL last changed what is applied */
  readonly lastChange?: Date;
  /** Why the last fetch failed (network, HTTP status, size, signature, an older CRL); absent after a success. */
  readonly error?: string;
  /** failures in a row */
  readonly failures: number;
  /** Fetches since start: `ok` (200 with an accepted CRL), `notModified` (304), `error` (failed). */
  readonly fetches: { readonly ok: number; readonly notModified: number; readonly error: number };
  /** When the next fetch is scheduled (sooner after a failure, with backoff); absent while a fetch runs. */
  readonly nextFetch?: Date;
  /** the CRLs this URL gave last (kept while fetches fail); `number` is the cRLNumber in decimal */
  readonly crls: readonly { readonly issuer: string; readonly number: string | undefined; readonly thisUpdate: Date; readonly nextUpdate: Date | undefined; readonly entries: number }[];
}

export interface CrlFetcher {
  /** records a URL learned from a certificate (fetched soon by the background loop); false when refused or known */
  add(url: string, origin?: CrlSourceOrigin): boolean;
  /** the CRLs fetched so far, the last good ones of every URL */
  crls(): VerifiedCrl[];
  /** fetches every URL now; resolves when all are done (failures are logged, not thrown) */
  refresh(): Promise<void>;
  status(): CrlSourceStatus[];
  /** clears the timers and aborts fetches in flight */
  stop(): void;
}

interface Source {
  readonly url: URL;
  readonly origin: CrlSourceOrigin;
  crls: VerifiedCrl[];
  etag?: string;
  maxAgeMs?: number;
  lastAttempt?: Date;
  lastSuccess?: Date;
  lastChange?: Date;
  error?: string;
  failures: number;
  fetches: { ok: number; notModified: number; error: number };
  timer?: NodeJS.Timeout;
  nextFetch?: Date;
  running?: Promise<void>;
}

/** An http(s) URL in printable ASCII, or an error saying why not. */
export function checkCrlUrl(url: string): URL {
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !/^[\x21-\x7e]+$/.test(url) || url.length > 2048 || u.username || u.password) {
    throw new MtlsError('BAD_ARGUMENT', `CRL URL "${u?.username || u?.password ? '(with credentials)' : url.slice(0, 200)}" is not an http(s) URL without credentials`, { hint: 'e.g. http://crl.acme.test/intermediate.crl or https://ca.acme.test/crl/intermediate.crl' });
  }
  return u;
}

const describe = (crls: readonly VerifiedCrl[]) => (crls.length ? crls.map((c) => `#${c.number ?? '?'} of ${c.issuer}`).join(', ') : 'nothing fetched from it yet');

export function createCrlFetcher(options: CrlFetchOptions): CrlFetcher {
  const interval = options.intervalMs ?? CRL_FETCH_DEFAULTS.intervalMs;
  if (!Number.isFinite(interval) || interval < CRL_FETCH_DEFAULTS.minIntervalMs) {
    throw new MtlsError('BAD_ARGUMENT', `the CRL refresh interval must be at least ${CRL_FETCH_DEFAULTS.minIntervalMs} ms (got ${interval})`, { hint: 'e.g. 5m' });
  }
  const timeoutMs = options.timeoutMs ?? CRL_FETCH_DEFAULTS.timeoutMs;
  const maxBytes = options.maxBytes ?? CRL_FETCH_DEFAULTS.maxBytes;
  const warnWithin = options.warnWithinMs ?? CRL_FETCH_DEFAULTS.warnWithinMs;
  const clock = options.clock ?? (() => new Date());
  const log = options.log;
  const sources = new Map<string, Source>();
  // aborted by stop(): every fetch in flight is destroyed; one listener per fetch in flight, and
  // refresh() runs all URLs at once, so Node's leak warning (past 10 listeners) does not apply
  const inFlight = new AbortController();
  setMaxListeners(0, inFlight.signal);
  let stopped = false;
  let learned = 0;

  // https: the system roots and the configured CAs, in one context built on first use (~ms)
  let secureContext: tls.SecureContext | undefined;
  const httpsContext = () =>
    (secureContext ??= tls.createSecureContext({
      ca: [...tls.rootCertificates, ...(options.ca ?? []).map((c) => (looksLikePem(c) ? Buffer.from(c).toString('utf8') : pemEncode('CERTIFICATE', c)))],
    }));

  function get(src: Source): Promise<BoundedGetResponse> {
    const headers: Record<string, string> = { accept: 'application/pkix-crl, application/x-pem-file;q=0.9, */*;q=0.1', 'user-agent': 'mcp-mtls' };
    if (src.etag && src.crls.length) headers['if-none-match'] = src.etag;
    return boundedGet(src.url, { headers, timeoutMs, maxBytes, signal: inFlight.signal, ...(src.url.protocol === 'https:' ? { secureContext: httpsContext() } : {}) });
  }

  /** One fetch of one URL; the state it leaves decides the next delay. */
  async function fetchOne(src: Source): Promise<void> {
    const url = src.url.href;
    src.lastAttempt = clock();
    try {
      const r = await get(src);
      if (stopped) return;
      if (r.status === 304) {
        if (!src.crls.length) throw new Error('HTTP 304 without a CRL to keep');
        src.fetches.notModified++;
      } else if (r.status !== 200) {
        throw new Error(`HTTP ${r.status}${r.status >= 300 && r.status < 400 ? ' (redirects are not followed: configure the final URL)' : ''}`);
      } else {
        const verified = options.verifier.verify(r.body, url);
        if (!verified.length) throw new Error('the answer holds no CRL');
        const { crls, newer } = mergeFetchedCrls(src.crls, verified, options.applied());
        src.crls = crls;
        const etag = r.headers.etag;
        if (typeof etag === 'string' && etag.length <= 256) src.etag = etag;
        else delete src.etag;
        const maxAge = /(?:^|,)\s*max-age=(\d+)/i.exec(String(r.headers['cache-control'] ?? ''));
        if (maxAge) src.maxAgeMs = Number(maxAge[1]) * 1000;
        else delete src.maxAgeMs;
        src.fetches.ok++;
        if (newer) {
          src.lastChange = clock();
          options.onUpdate(url, verified);
        }
      }
      src.lastSuccess = clock();
      src.failures = 0;
      delete src.error;
    } catch (e) {
      if (stopped) return;
      const reason = (e as Error)?.message ?? String(e);
      src.failures++;
      src.fetches.error++;
      src.error = reason;
      log(`CRL fetch from ${url} failed: ${reason}; keeping ${describe(src.crls)}`);
      const now = clock().getTime();
      for (const c of src.crls) {
        const left = (c.nextUpdate?.getTime() ?? Infinity) - now;
        if (left <= warnWithin) {
          log(left <= 0 ? `the kept CRL #${c.number ?? '?'} of ${c.issuer} from ${url} expired at ${c.nextUpdate!.toISOString()}: it still applies; fix the CRL URL or load a fresh CRL` : `the kept CRL #${c.number ?? '?'} of ${c.issuer} from ${url} expires at ${c.nextUpdate!.toISOString()}, in ${Math.round(left / 60_000)} minutes, and fetching a fresh one fails`);
        }
      }
    }
  }

  const nextDelay = (src: Source): number =>
    nextFetchDelay({
      failures: src.failures,
      intervalMs: interval,
      maxAgeMs: src.maxAgeMs,
      crls: src.crls,
      now: clock().getTime(),
      retryMs: CRL_FETCH_DEFAULTS.retryMs,
      minMaxAgeMs: CRL_FETCH_DEFAULTS.minMaxAgeMs,
    });

  function schedule(src: Source, delay: number): void {
    if (stopped) return;
    clearTimeout(src.timer);
    src.nextFetch = new Date(clock().getTime() + delay);
    src.timer = setTimeout(() => void run(src), delay);
    src.timer.unref();
  }

  function run(src: Source): Promise<void> {
    if (stopped) return Promise.resolve();
    if (src.running) return src.running;
    clearTimeout(src.timer);
    delete src.nextFetch;
    src.running = fetchOne(src).finally(() => {
      delete src.running;
      schedule(src, nextDelay(src));
    });
    return src.running;
  }

  function add(raw: string, origin: CrlSourceOrigin = 'configured'): boolean {
    if (stopped) return false;
    let url: URL;
    try {
      url = checkCrlUrl(raw);
    } catch (e) {
      if (origin === 'configured') throw e;
      log(`ignoring the CRL URL of a certificate: ${(e as Error).message}`);
      return false;
    }
    if (sources.has(url.href)) return false;
    if (origin === 'certificate') {
      if (learned >= (options.maxLearned ?? CRL_FETCH_DEFAULTS.maxLearned)) return false;
      learned++;
      log(`fetching CRLs from ${url.href} too (named by a certificate)`);
    }
    const src: Source = { url, origin, crls: [], failures: 0, fetches: { ok: 0, notModified: 0, error: 0 } };
    sources.set(url.href, src);
    schedule(src, 0);
    return true;
  }

  for (const u of options.urls) add(u);

  return {
    add,
    crls: () => [...sources.values()].flatMap((s) => s.crls),
    refresh: async () => {
      await Promise.all([...sources.values()].map(run));
    },
    status: () =>
      [...sources.values()].map((s) => ({
        url: s.url.href,
        origin: s.origin,
        status: s.error !== undefined ? 'error' : s.lastSuccess ? 'ok' : 'pending',
        ...(s.lastAttempt ? { lastAttempt: s.lastAttempt } : {}),
        ...(s.lastSuccess ? { lastSuccess: s.lastSuccess } : {}),
        ...(s.lastChange ? { lastChange: s.lastChange } : {}),
        ...(s.error !== undefined ? { error: s.error } : {}),
        failures: s.failures,
        fetches: { ...s.fetches },
        ...(s.nextFetch ? { nextFetch: s.nextFetch } : {}),
        crls: s.crls.map((c) => ({ issuer: c.issuer, number: c.number?.toString(), thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate, entries: c.serials.size })),
      })),
    stop() {
      stopped = true;
      for (const s of sources.values()) clearTimeout(s.timer);
      inFlight.abort();
    },
  };
}
