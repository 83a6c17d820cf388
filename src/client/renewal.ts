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
 */
import crypto, { type KeyObject } from 'node:crypto';
import { checkBundle, loadBundle, type Bundle } from '../bundle/load.js';
import { isMtlsError, MtlsError } from '../errors.js';
import { checkClientCertificate, identityFromParsed } from '../identity/decode.js';
import { commonNameOf, parseCertificate, type ParsedCertificate } from '../x509/certificate.js';
import { createCsr } from '../x509/csr.js';
import { generateKey, keyTypeOf } from '../x509/keys.js';
import { OID } from '../x509/oids.js';
import type { CredentialSource } from './agent.js';
import { bundleKeyEncrypted, rewriteBundle } from './bundle-rewrite.js';
import { RenewalHttpError, requestRenewal } from './renew-request.js';

/** The longest delay a Node timer holds. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Timers and the time, injectable for tests. */
export interface RenewalClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock, with unref'd timers (a renewer alone does not keep the process alive). */
export const systemClock: RenewalClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** How far apart retries are after a failure: doubling from `initialMs` up to `maxMs`, each jittered (half to all of it). */
export interface RenewalBackoff {
  /** first retry after about this long (default 1 s) */
  readonly initialMs?: number;
  /** retries are at most this far apart (default 5 min, and at most a tenth of the lifetime) */
  readonly maxMs?: number;
}

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

/** When a certificate valid from notBefore to notAfter is due for renewal (without jitter: latest). */
export function renewalTime(notBefore: Date, notAfter: Date, fraction = 2 / 3, jitter = 0, random = Math.random): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  return new Date(notBefore.getTime() + life * fraction - random() * jitter * life);
}

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

/** The checks on what the CA returned: same holder, our key, chains to our CA, valid now, lasts longer. */
export function checkRenewed(current: Bundle, chain: readonly Buffer[], key: KeyObject, now: Date): Bundle {
  const refuse = (why: string, cause?: unknown) =>
    new MtlsError('CERT_INVALID', `the CA returned an unusable certificate: ${why}; it was not used nor written`, { ...(cause ? { cause } : {}), hint: 'the current certificate stays in use; report this to the CA operator' });
  if (chain.length === 0) throw refuse('no certificate');
  let next: Bundle;
  try {
    const { notAfter: _n, warnings: _w, identity: _i, ...rest } = current;
    next = checkBundle({ ...rest, chain, key }, now);
  } catch (e) {
    const m = (e as Error).message;
    throw refuse(/does not match/.test(m) ? 'its public key is not the key this client holds' : /does not chain/.test(m) ? 'it does not chain to the bundle\'s CA' : m.replace(/^.*?: /, ''), e);
  }
  const oldLeaf = parseCertificate(current.chain[0] as Buffer);
  let newLeaf: ParsedCertificate;
  try {
    newLeaf = parseCertificate(chain[0] as Buffer);
  } catch (e) {
    throw refuse((e as Error).message, e);
  }
  const same = (oid: string) => {
    const a = oldLeaf.extensions.get(oid)?.value;
    const b = newLeaf.extensions.get(oid)?.value;
    return a === undefined ? b === undefined : b !== undefined && a.equals(b);
  };
  if (!same(OID.subjectAltName)) throw refuse('its subject alternative names differ from the current certificate\'s');
  if (!same(OID.subjectDirectoryAttributes)) throw refuse('its teams or roles differ from the current certificate\'s');
  if (current.identity) {
    try {
      checkClientCertificate(newLeaf);
      const id = identityFromParsed(newLeaf, { trustDomains: [current.identity.trustDomain] });
      if (id.principal !== current.identity.principal) throw new Error(`principal ${id.principal} is not ${current.identity.principal}`);
    } catch (e) {
      throw refuse((e as Error).message, e);
    }
  }
  if (newLeaf.serial === oldLeaf.serial) throw refuse('it is the current certificate again');
  if (next.notAfter.getTime() < current.notAfter.getTime()) throw refuse(`it ends ${next.notAfter.toISOString()}, before the current one`);
  return next;
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
  const log = options.log ?? (() => undefined);
  if (!(fraction > 0 && fraction < 1)) throw new MtlsError('BAD_ARGUMENT', `renewAt must be between 0 and 1 (got ${fraction})`);
  if (!(jitter >= 0 && jitter < fraction)) throw new MtlsError('BAD_ARGUMENT', `jitter must be at least 0 and below renewAt (got ${jitter})`);
  const fmt = options.bundle.source.format;
  const needsPassphrase = write && (fmt === 'p12' || (rekey && bundleKeyEncrypted(options.bundle)));
  if (needsPassphrase) {
    if (options.passphrase === undefined) {
      throw new MtlsError('BUNDLE_PASSWORD', `${options.bundle.source.file} ${fmt === 'p12' ? 'is a PKCS#12 file' : 'holds an encrypted key'}: renewing it needs the bundle passphrase`, {
        hint: 'pass passphrase (the CLI reads --passphrase-file or MCP_MTLS_BUNDLE_PASSPHRASE), or use rekey: false for an encrypted PEM bundle',
      });
    }
  }
  let passphrase: string | undefined;
  const getPassphrase = async (): Promise<string | undefined> => {
    if (!needsPassphrase) return undefined; // asked only when the write needs it
    if (passphrase === undefined && options.passphrase !== undefined) passphrase = typeof options.passphrase === 'string' ? options.passphrase : await options.passphrase();
    return passphrase;
  };

  let bundle = options.bundle;
  let state: RenewalState = 'scheduled';
  let timer: unknown;
  let nextAttemptAt: Date | undefined;
  let lastRenewedAt: Date | undefined;
  let lastError: RenewalStatus['lastError'];
  let renewals = 0;
  let failures = 0;
  let inFlight: Promise<Bundle> | undefined;
  let abort: AbortController | undefined;
  const listeners = new Set<(b: Bundle) => void>();

  const leafOf = (b: Bundle) => parseCertificate(b.chain[0] as Buffer);
  const lifetimeOf = (b: Bundle) => {
    const leaf = leafOf(b);
    return leaf.notAfter.getTime() - leaf.notBefore.getTime();
  };

  const schedule = (at: Date, next: RenewalState) => {
    if (state === 'stopped' || state === 'refused') return;
    if (timer !== undefined) clock.clearTimeout(timer);
    state = next;
    nextAttemptAt = at;
    // timers hold at most 2^31-1 ms (24.8 days): a later renewal is reached in steps
    const arm = () => {
      const ms = at.getTime() - clock.now();
      timer = ms > MAX_TIMER_MS
        ? clock.setTimeout(arm, MAX_TIMER_MS)
        : clock.setTimeout(() => {
            timer = undefined;
            void attempt().catch(() => undefined);
          }, ms);
    };
    arm();
  };

  const scheduleRenewal = (afterRenewal = false) => {
    const leaf = leafOf(bundle);
    let at = renewalTime(leaf.notBefore, leaf.notAfter, fraction, jitter, random);
    const now = clock.now();
    // a certificate already due when it arrives (a CA clock behind ours): not again at once
    if (afterRenewal && at.getTime() < now + 1000) at = new Date(now + 1000);
    // already due at start (a fleet restarted after a night): spread over up to 30 s, not all at once
    if (!afterRenewal && at.getTime() < now) at = new Date(now + random() * Math.min(30_000, jitter * (leaf.notAfter.getTime() - leaf.notBefore.getTime())));
    schedule(at, 'scheduled');
    log(`certificate ${leaf.serial} valid until ${leaf.notAfter.toISOString()}; renewal at ${at.toISOString()} through ${renewUrl.href}`);
  };

  const onFailure = (error: MtlsError) => {
    failures++;
    const now = clock.now();
    lastError = { code: error.code, message: error.message, ...(error instanceof RenewalHttpError ? { status: error.status } : {}), at: new Date(now) };
    if (state === 'stopped') return;
    if (error instanceof RenewalHttpError && error.permanent) {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      state = 'refused';
      nextAttemptAt = undefined;
      const revoked = error.status === 403 || /revoked/i.test(error.caCode ?? '');
      log(`renewal refused, not retrying: ${error.message}${revoked ? ' (the certificate may be revoked)' : ''}${error.hint ? `; ${error.hint}` : ''}. The current certificate is used until ${bundle.notAfter.toISOString()}`);
      options.onError?.(error, undefined);
      return;
    }
    const notAfter = bundle.notAfter.getTime();
    const left = notAfter - now;
    if (left <= 1000) {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      state = 'expired';
      nextAttemptAt = undefined;
      log(`renewal failed and the certificate ${left <= 0 ? 'has expired' : 'expires now'} (${bundle.notAfter.toISOString()}): ${error.message}. Make a new bundle`);
      options.onError?.(error, undefined);
      return;
    }
    const life = lifetimeOf(bundle);
    const max = Math.max(1000, Math.min(options.backoff?.maxMs ?? 300_000, life / 10));
    const initial = Math.min(options.backoff?.initialMs ?? 1000, max);
    const base = Math.min(max, initial * 2 ** Math.min(failures - 1, 30));
    // Retry-After is honoured, but never below a second: `Retry-After: 0` (or a past date) from a
    // proxy must not turn the renewer into a loop of key generations and TLS handshakes
    let delay = error instanceof RenewalHttpError && error.retryAfterMs !== undefined ? Math.max(1000, error.retryAfterMs) : base / 2 + (random() * base) / 2;
    delay = Math.min(delay, left - 1000); // one last try before the end
    const at = new Date(now + delay);
    schedule(at, 'retrying');
    log(`renewal failed (${failures}): ${error.message}; retrying at ${at.toISOString()}`);
    options.onError?.(error, { at });
  };

  // the new key of a renewal is kept across its retries: a certificate renews once at the CA, and
  // a retry after a lost answer gets that same certificate again only for the same key
  let pending: { readonly forLeaf: Buffer; readonly key: KeyObject; readonly csr: Buffer } | undefined;
  const renewOnce = async (signal: AbortSignal): Promise<Bundle> => {
    const current = bundle;
    let key = current.key;
    let csr: Buffer | undefined;
    if (rekey) {
      if (!pending || !pending.forLeaf.equals(current.chain[0]!)) {
        const generated = generateKey(keyTypeOf(current.key));
        pending = {
          forLeaf: current.chain[0]!,
          key: crypto.createPrivateKey({ key: generated.pkcs8, format: 'der', type: 'pkcs8' }),
          csr: createCsr(generated, current.identity?.id ?? commonNameOf(leafOf(current).subjectName) ?? 'mcp-mtls client'),
        };
      }
      key = pending.key;
      csr = pending.csr;
    }
    const t0 = clock.now();
    const chain = await requestRenewal(renewUrl, current, { ...(csr ? { csr } : {}), signal, ...(options.requestTimeoutMs ? { timeoutMs: options.requestTimeoutMs } : {}), now: clock.now });
    if (signal.aborted) throw new MtlsError('RENEWAL_FAILED', 'renewal stopped');
    const next = checkRenewed(current, chain, key, new Date(clock.now()));
    // a bundle that cannot be written (moved, disk full, passphrase refused) does not waste the
    // renewal: the new credentials are used in memory, the file keeps the old ones, and the
    // error is reported; the next renewal writes again
    let writeError: MtlsError | undefined;
    if (write) {
      try {
        const secret = await getPassphrase();
        rewriteBundle(current, { chain, key, keyChanged: rekey }, secret !== undefined ? { passphrase: secret } : {});
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
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
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
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
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
