/**
 * Exponential backoff, shared by the client renewer (client/renewal-schedule.ts) and the CRL
 * fetcher (mtls/crl-schedule.ts): the delay before the next try after `failures` failures in
 * a row doubles from `initialMs` up to `maxMs`. Pure: the randomness of the jitter is passed
 * in, so tests can pin it.
 */

/** Where the doubling starts and stops. */
export interface BackoffBounds {
  /** the delay after the first failure */
  readonly initialMs: number;
  /** no delay is longer */
  readonly maxMs: number;
  /** the doubling stops after this many steps even below maxMs (default 30) */
  readonly maxDoublings?: number;
}

/**
 * The delay after `failures` (at least 1) failures in a row: initialMs * 2^(failures - 1), at
 * most maxMs. With `random` (a value in [0, 1)), the delay is jittered to half to all of that,
 * so that clients which failed together do not retry together.
 */
export function backoffDelay(failures: number, bounds: BackoffBounds, random?: () => number): number {
  const steps = Math.min(Math.max(0, failures - 1), bounds.maxDoublings ?? 30);
  const base = Math.min(bounds.maxMs, bounds.initialMs * 2 ** steps);
  return random ? base / 2 + (random() * base) / 2 : base;
}
