/**
 * When the CRL fetcher fetches a URL next: a pure function of how its last fetches went and
 * of the CRLs it holds. After failures: backoff (util/backoff.ts) from `retryMs`, doubling, up
 * to the interval. After a success: the interval, shorter when the server's Cache-Control
 * max-age says so, and just after a held CRL's nextUpdate when that comes first.
 */
import { backoffDelay } from '../util/backoff.js';

/** What {@link nextFetchDelay} decides from. */
export interface CrlFetchTiming {
  /** failures in a row (0 after a success) */
  readonly failures: number;
  readonly intervalMs: number;
  /** the last answer's Cache-Control max-age, when it had one */
  readonly maxAgeMs: number | undefined;
  /** the CRLs the URL gave last */
  readonly crls: readonly { readonly nextUpdate: Date | undefined }[];
  readonly now: number;
  /** first retry after a failure */
  readonly retryMs: number;
  /** a max-age is honoured, but not below this */
  readonly minMaxAgeMs: number;
}

/** The delay, in ms from `now`, before the next fetch. */
export function nextFetchDelay(t: CrlFetchTiming): number {
  const interval = t.intervalMs;
  if (t.failures > 0) return backoffDelay(t.failures, { initialMs: Math.min(interval, t.retryMs), maxMs: interval, maxDoublings: 20 });
  let d = interval;
  if (t.maxAgeMs !== undefined) d = Math.min(d, Math.max(t.maxAgeMs, t.minMaxAgeMs));
  // a CRL that will be past its nextUpdate before the next fetch: fetch again just after it
  for (const c of t.crls) {
    const left = (c.nextUpdate?.getTime() ?? Infinity) - t.now;
    if (left > 0) d = Math.min(d, Math.max(left + 1_000, Math.min(interval, t.retryMs)));
  }
  return d;
}
