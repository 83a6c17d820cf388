/**
 * When the renewer calls the CA next: pure functions of the certificate's validity, the time,
 * the failures so far and what the CA said (Retry-After). No timers and no I/O here; the
 * renewer (renewal.ts) arms its timer at the instant these return. `random` (a value in
 * [0, 1)) is passed in, so tests can pin every jitter.
 */
import { backoffDelay } from '../util/backoff.js';

/** How far apart retries are after a failure: doubling from `initialMs` up to `maxMs`, each jittered (half to all of it). */
export interface RenewalBackoff {
  /** first retry after about this long (default 1 s) */
  readonly initialMs?: number;
  /** retries are at most this far apart (default 5 min, and at most a tenth of the lifetime) */
  readonly maxMs?: number;
}

/** When a certificate valid from notBefore to notAfter is due for renewal (without jitter: latest). */
export function renewalTime(notBefore: Date, notAfter: Date, fraction = 2 / 3, jitter = 0, random = Math.random): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  return new Date(notBefore.getTime() + life * fraction - random() * jitter * life);
}

/** What {@link nextRenewalAt} decides from. */
export interface RenewalTimeInput {
  /** the current certificate's validity */
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly now: number;
  /** when to renew, as a fraction of the lifetime */
  readonly fraction: number;
  /** up to this fraction of the lifetime earlier, at random */
  readonly jitter: number;
  readonly random: () => number;
  /** true right after a renewal, false when the renewer starts */
  readonly afterRenewal: boolean;
}

/** The instant of the next renewal of a valid certificate (renewalTime, with the two corrections below). */
export function nextRenewalAt(input: RenewalTimeInput): Date {
  const { notBefore, notAfter, now, jitter, random } = input;
  let at = renewalTime(notBefore, notAfter, input.fraction, jitter, random);
  // a certificate already due when it arrives (a CA clock behind ours): not again at once
  if (input.afterRenewal && at.getTime() < now + 1000) at = new Date(now + 1000);
  // already due at start (a fleet restarted after a night): spread over up to 30 s, not all at once
  if (!input.afterRenewal && at.getTime() < now) at = new Date(now + random() * Math.min(30_000, jitter * (notAfter.getTime() - notBefore.getTime())));
  return at;
}

/** What {@link afterFailure} decides from. */
export interface FailureInput {
  /** failures in a row, this one included */
  readonly failures: number;
  readonly now: number;
  /** the current certificate's end, and its lifetime (notAfter - notBefore) */
  readonly notAfter: Date;
  readonly lifetimeMs: number;
  /** the CA refused (a 4xx other than 408 and 429): asking again will not help */
  readonly permanent: boolean;
  /** the CA's Retry-After, when it gave one */
  readonly retryAfterMs: number | undefined;
  readonly backoff: RenewalBackoff | undefined;
  readonly random: () => number;
}

/** After a failed renewal: try again at `at`, or stop because the CA refused or the certificate is (about to be) expired. */
export type FailureDecision = { readonly next: 'retry'; readonly at: Date } | { readonly next: 'refused' } | { readonly next: 'expired'; readonly leftMs: number };

/** Whether and when to try again after a failure (see {@link FailureDecision}). */
export function afterFailure(input: FailureInput): FailureDecision {
  if (input.permanent) return { next: 'refused' };
  const { now } = input;
  const left = input.notAfter.getTime() - now;
  if (left <= 1000) return { next: 'expired', leftMs: left };
  const maxMs = Math.max(1000, Math.min(input.backoff?.maxMs ?? 300_000, input.lifetimeMs / 10));
  const initialMs = Math.min(input.backoff?.initialMs ?? 1000, maxMs);
  // Retry-After is honoured, but never below a second: `Retry-After: 0` (or a past date) from a
  // proxy must not turn the renewer into a loop of key generations and TLS handshakes
  let delay = input.retryAfterMs !== undefined ? Math.max(1000, input.retryAfterMs) : backoffDelay(input.failures, { initialMs, maxMs }, input.random);
  delay = Math.min(delay, left - 1000); // one last try before the end
  return { next: 'retry', at: new Date(now + delay) };
}
