/**
 * Clients renew on their own: at two thirds of the certificate's lifetime (notBefore to
 * notAfter), a little earlier by a random jitter so that a fleet issued together does not
 * call the CA together, the renewer POSTs to the CA's /renew over mTLS with the current
 * certificate (renew-request.ts), checks what comes back, writes the bundle atomically
 * (bundle-rewrite.ts) and hands the new credentials to its subscribers (a RenewingAgent
 * moves new connections to them).
 *
 * By default each renewal makes a new key and sends a CSR: the key never leaves the machine.
 * A CA that is down, busy (429) or unavailable (503) is retried with exponential backoff and
 * jitter, as told by Retry-After, until the certificate expires. Any other 4xx (revoked,
 * unknown, not allowed) stops the renewer and says so: asking again will not help.
 *
 *   const renewer = createBundleRenewer({ bundle: await loadBundle('alice.yaml'), renewUrl: 'https://ca.acme.test/renew' });
 *   await client.connect(createSdk1Transport(renewer));
 *   ...
 *   renewer.stop();
 *
 * Timers are unref'd (a renewer alone does not keep a process alive) and stop() clears them.
 *
 * This module holds the renewer's state and its one timer. When to call next is decided by
 * renewal-schedule.ts (pure), the key to certify by renewal-key.ts, whether the answer is usable
 * by check-renewed.ts, and the write over the bundle file by renewal-write-back.ts.
 */
import { loadBundle, type Bundle } from '../bundle/load.js';
import { isMtlsError, MtlsError } from '../errors.js';
import { silentLog } from '../util/log.js';
import { parseCertificate } from '../x509/certificate.js';
import type { CredentialSource } from './agent.js';
import { checkRenewed } from './check-renewed.js';
import { RenewalHttpError, requestRenewal } from './renew-request.js';
import { systemClock, timerAt, type RenewalClock } from './renewal-clock.js';
import { createRenewalKeys } from './renewal-key.js';
import { afterFailure, nextRenewalAt, type RenewalBackoff } from './renewal-schedule.js';
import { createBundleWriteBack, type BundleWriteBack } from './renewal-write-back.js';

export { systemClock, type RenewalClock } from './renewal-clock.js';
export { renewalTime, type RenewalBackoff } from './renewal-schedule.js';

/** What {@link createBundleRenewer} renews, where, and how it reports. */
export interface BundleRenewerOptions {
  /** the bundle to renew; written back to bundle.source.file unless `write` is false */
  readonly bundle: Bundle;
  /** the CA's renewal endpoint (default: the bundle profile's renewUrl) */
  readonly renewUrl?: string | URL;
  /** a new key and a CSR on each renewal (default true); false keeps the public key */
  readonly rekey?: boolean;
  /** the bundle passphrase: needed to write a PKCS#12 bundle, or a new key into an encrypted one */
  readonly passphrase?: string | (() => string | Promise<string>);
  /** write the renewed bundle over the file it came from (default true) */
  readonly write?: boolean;
  /** when to renew, as a fraction of the lifetime (default 2/3) */
  readonly renewAt?: number;
  /** up to this fraction of the lifetime earlier, at random (default 0.05) */
  readonly jitter?: number;
  readonly backoff?: RenewalBackoff;
  /** per /renew call (default 30 s) */
  readonly requestTimeoutMs?: number;
  readonly clock?: RenewalClock;
  /** in [0, 1), for the jitter (default Math.random) */
  readonly random?: () => number;
  /** after each renewal, with the new bundle (already written and in use for new connections) */
  readonly onRenewed?: (bundle: Bundle) => void;
  /** after each failure: whether and when the renewer tries again (also, without a retry, when a renewal could not be written to the bundle file) */
  readonly onError?: (error: MtlsError, retry: { readonly at: Date } | undefined) => void;
  /** one line per event (scheduled, renewed, retrying, stopped); the CLI sends it to stderr */
  readonly log?: (line: string) => void;
}

/**
 * scheduled: waiting for the renewal time; renewing: a /renew call is under way; retrying:
 * the last call failed and another is scheduled; refused: the CA said no (4xx), nothing more
 * is tried; expired: the certificate ran out before a renewal succeeded; stopped: stop() was called.
 */
export type RenewalState = 'scheduled' | 'renewing' | 'retrying' | 'refused' | 'expired' | 'stopped';

/** A renewer's state, for health checks and logs (secrets never appear here). */
export interface RenewalStatus {
  readonly state: RenewalState;
  /** the current certificate's */
  readonly notAfter: Date;
  readonly serial: string;
  /** when the next /renew call is due (none when refused, expired or stopped) */
  readonly nextAttemptAt: Date | undefined;
  readonly lastRenewedAt: Date | undefined;
  readonly lastError: { readonly code: string; readonly message: string; readonly status?: number; readonly at: Date } | undefined;
  /** renewals done */
  readonly renewals: number;
  /** failures since the last success */
  readonly failures: number;
}

/** Renews one bundle in the background; a {@link CredentialSource} for createMtlsAgent and the transports. */
export interface BundleRenewer extends CredentialSource {
  /** the current credentials */
  readonly bundle: Bundle;
  readonly renewUrl: URL;
  status(): RenewalStatus;
  /** renews now (or joins the call under way); rejects with the error that also went to onError */
  renewNow(): Promise<Bundle>;
  /** clears every timer and aborts a call under way; the current credentials stay usable */
  stop(): void;
}

/**
 * The CA's codes for a revoked certificate: its own (`ca serve`) and the mTLS layer's refusal
 * reason; a refusal with one of them (or a 403) is logged as a possible revocation.
 */
const REVOKED_CODES: ReadonlySet<string> = new Set(['CERT_REVOKED', 'certificate_revoked']);

const errorOf = (e: unknown): MtlsError =>
  isMtlsError(e) ? e : new MtlsError('RENEWAL_FAILED', `renewal failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });

function resolveUrl(options: BundleRenewerOptions): URL {
  const u = options.renewUrl ?? options.bundle.renewUrl;
  if (!u) {
    throw new MtlsError('USAGE', 'no renewal URL: pass renewUrl, or put renewUrl in the bundle profile', { hint: 'e.g. --renew-url https://ca.acme.test/renew (or MCP_MTLS_RENEW_URL)' });
  }
  let url: URL;
  try {
    url = new URL(u);
  } catch (cause) {
    throw new MtlsError('BAD_ARGUMENT', `the renewal URL "${String(u)}" is not a URL`, { cause, hint: 'e.g. https://ca.acme.test/renew' });
  }
  if (url.protocol !== 'https:') throw new MtlsError('BAD_ARGUMENT', `the renewal URL must be https: (${url.href})`, { hint: 'e.g. https://ca.acme.test/renew' });
  return url;
}

/**
 * Starts renewing `options.bundle`: the first /renew call is scheduled at once (see the
 * module comment). Throws USAGE or BAD_ARGUMENT for a missing or non-https renewal URL, and
 * BUNDLE_PASSWORD when the bundle cannot be rewritten without a passphrase that was not given.
 */
export function createBundleRenewer(options: BundleRenewerOptions): BundleRenewer {
  const renewUrl = resolveUrl(options);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const rekey = options.rekey ?? true;
  const write = options.write ?? true;
  const fraction = options.renewAt ?? 2 / 3;
  const jitter = options.jitter ?? 0.05;
  const log = options.log ?? silentLog;
  if (!(fraction > 0 && fraction < 1)) throw new MtlsError('BAD_ARGUMENT', `renewAt must be between 0 and 1 (got ${fraction})`);
  if (!(jitter >= 0 && jitter < fraction)) throw new MtlsError('BAD_ARGUMENT', `jitter must be at least 0 and below renewAt (got ${jitter})`);
  const writeBack: BundleWriteBack | undefined = write ? createBundleWriteBack(options.bundle, { rekey, passphrase: options.passphrase }) : undefined;
  const keys = createRenewalKeys(rekey);

  let bundle = options.bundle;
  let state: RenewalState = 'scheduled';
  let cancelTimer: (() => void) | undefined;
  let nextAttemptAt: Date | undefined;
  let lastRenewedAt: Date | undefined;
  let lastError: RenewalStatus['lastError'];
  let renewals = 0;
  let failures = 0;
  let inFlight: Promise<Bundle> | undefined;
  let abort: AbortController | undefined;
  const listeners = new Set<(b: Bundle) => void>();

  const leafOf = (b: Bundle) => parseCertificate(b.chain[0] as Buffer);
  const clearTimer = () => {
    cancelTimer?.();
    cancelTimer = undefined;
  };

  const schedule = (at: Date, next: RenewalState) => {
    if (state === 'stopped' || state === 'refused') return;
    cancelTimer?.();
    state = next;
    nextAttemptAt = at;
    cancelTimer = timerAt(clock, at.getTime(), () => {
      cancelTimer = undefined;
      void attempt().catch(() => undefined);
    });
  };

  const scheduleRenewal = (afterRenewal = false) => {
    const leaf = leafOf(bundle);
    const at = nextRenewalAt({ notBefore: leaf.notBefore, notAfter: leaf.notAfter, now: clock.now(), fraction, jitter, random, afterRenewal });
    schedule(at, 'scheduled');
    log(`certificate ${leaf.serial} valid until ${leaf.notAfter.toISOString()}; renewal at ${at.toISOString()} through ${renewUrl.href}`);
  };

  /** the renewer gives up: nothing is scheduled until renewNow() */
  const settle = (final: 'refused' | 'expired') => {
    clearTimer();
    state = final;
    nextAttemptAt = undefined;
  };

  const onFailure = (error: MtlsError) => {
    failures++;
    const now = clock.now();
    const http = error instanceof RenewalHttpError ? error : undefined;
    lastError = { code: error.code, message: error.message, ...(http ? { status: http.status } : {}), at: new Date(now) };
    if (state === 'stopped') return;
    const leaf = leafOf(bundle);
    const decision = afterFailure({
      failures,
      now,
      notAfter: bundle.notAfter,
      lifetimeMs: leaf.notAfter.getTime() - leaf.notBefore.getTime(),
      permanent: http?.permanent ?? false,
      retryAfterMs: http?.retryAfterMs,
      backoff: options.backoff,
      random,
    });
    if (decision.next === 'refused') {
      settle('refused');
      const revoked = http!.status === 403 || REVOKED_CODES.has(http!.caCode ?? '');
      log(`renewal refused, not retrying: ${error.message}${revoked ? ' (the certificate may be revoked)' : ''}${error.hint ? `; ${error.hint}` : ''}. The current certificate is used until ${bundle.notAfter.toISOString()}`);
      options.onError?.(error, undefined);
      return;
    }
    if (decision.next === 'expired') {
      settle('expired');
      log(`renewal failed and the certificate ${decision.leftMs <= 0 ? 'has expired' : 'expires now'} (${bundle.notAfter.toISOString()}): ${error.message}. Make a new bundle`);
      options.onError?.(error, undefined);
      return;
    }
    schedule(decision.at, 'retrying');
    log(`renewal failed (${failures}): ${error.message}; retrying at ${decision.at.toISOString()}`);
    options.onError?.(error, { at: decision.at });
  };

  const renewOnce = async (signal: AbortSignal): Promise<Bundle> => {
    const current = bundle;
    const { key, csr } = keys.for(current);
    const t0 = clock.now();
    const chain = await requestRenewal(renewUrl, current, { ...(csr ? { csr } : {}), signal, ...(options.requestTimeoutMs ? { timeoutMs: options.requestTimeoutMs } : {}), now: clock.now });
    if (signal.aborted) throw new MtlsError('RENEWAL_FAILED', 'renewal stopped');
    const next = checkRenewed(current, chain, key, new Date(clock.now()));
    // a bundle that cannot be written (moved, disk full, passphrase refused) does not waste the
    // renewal: the new credentials are used in memory, the file keeps the old ones, and the
    // error is reported; the next renewal writes again
    let writeError: MtlsError | undefined;
    if (writeBack) {
      try {
        await writeBack.write(current, { chain, key, keyChanged: rekey });
      } catch (e) {
        writeError = errorOf(e);
      }
    }
    if (signal.aborted) throw new MtlsError('RENEWAL_FAILED', 'renewal stopped');
    bundle = next;
    renewals++;
    failures = 0;
    lastRenewedAt = new Date(clock.now());
    log(`renewed: certificate ${leafOf(next).serial} valid until ${next.notAfter.toISOString()}${rekey ? ' (new key)' : ''} in ${clock.now() - t0} ms${write && !writeError ? `, written to ${current.source.file}` : ''}`);
    if (writeError) {
      lastError = { code: writeError.code, message: `renewed, but the bundle was not written: ${writeError.message}`, at: new Date(clock.now()) };
      log(`${lastError.message}; the new certificate is used by this process only, ${current.source.file} still holds the old one`);
      options.onError?.(writeError, undefined);
    }
    for (const l of listeners) {
      try {
        l(next);
      } catch {
        // a subscriber's failure is its own
      }
    }
    options.onRenewed?.(next);
    return next;
  };

  const attempt = (): Promise<Bundle> => {
    if (inFlight) return inFlight;
    if (state === 'stopped') return Promise.reject(new MtlsError('RENEWAL_FAILED', 'the renewer was stopped'));
    clearTimer();
    state = 'renewing';
    nextAttemptAt = undefined;
    abort = new AbortController();
    const p = renewOnce(abort.signal).then(
      (next) => {
        if (state !== 'stopped') scheduleRenewal(true);
        return next;
      },
      (e: unknown) => {
        const error = errorOf(e);
        onFailure(error);
        throw error;
      },
    );
    inFlight = p.finally(() => {
      inFlight = undefined;
      abort = undefined;
    });
    return inFlight;
  };

  scheduleRenewal();

  return {
    get bundle() {
      return bundle;
    },
    renewUrl,
    subscribe(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    status: () => ({
      state,
      notAfter: bundle.notAfter,
      serial: leafOf(bundle).serial,
      nextAttemptAt,
      lastRenewedAt,
      lastError,
      renewals,
      failures,
    }),
    renewNow: () => {
      if (state === 'refused') state = 'scheduled'; // an explicit call may try again
      return attempt();
    },
    stop() {
      clearTimer();
      nextAttemptAt = undefined;
      state = 'stopped';
      abort?.abort();
      listeners.clear();
    },
  };
}

/** loadBundle(file) then createBundleRenewer: the passphrase, when given, serves both. */
export async function loadBundleRenewer(file: string, options: Omit<BundleRenewerOptions, 'bundle'>): Promise<BundleRenewer> {
  const secret = options.passphrase;
  const bundle = await loadBundle(file, secret === undefined ? {} : { passphrase: typeof secret === 'string' ? () => secret : secret });
  return createBundleRenewer({ ...options, bundle });
}
