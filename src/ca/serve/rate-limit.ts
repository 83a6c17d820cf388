/**
 * A token bucket per key (a certificate's principal for /renew): `burst` requests at once,
 * refilled at `perMinute`. In memory and per process: with several replicas behind a load
 * balancer each replica allows its own burst (the limit is there against a runaway client,
 * not as an accounting of certificates). Idle buckets are dropped once full again.
 */
export interface RateLimit {
  /** requests a key may make at once (the bucket's size) */
  readonly burst: number;
  /** refill rate: requests a key gets back per minute, refilled continuously; 0 never refills */
  readonly perMinute: number;
}

export const DEFAULT_RENEW_RATE: RateLimit = { burst: 3, perMinute: 3 };

/**
 * POST /delegate, per actor principal (config.yaml `delegation.rate`). A platform exchanges once
 * per person per certificate lifetime: 2,000 at once lets one that starts cold with 2,000 people
 * active through, and 2,000 a minute sustains 120,000 people on 1h certificates (the CA signs
 * about 16 a second on 2 cores, so the limit bites only a runaway loop, not a busy platform).
 */
export const DEFAULT_DELEGATE_RATE: RateLimit = { burst: 2000, perMinute: 2000 };

export interface RateLimiter {
  /** takes one token: 0 when allowed, else the seconds until one is available (for Retry-After) */
  take(key: string): number;
  readonly size: number;
}

export function createRateLimiter(limit: RateLimit, now: () => number = () => Date.now()): RateLimiter {
  const perMs = limit.perMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  let sweptAt = now();
  const sweep = (t: number) => {
    // a bucket full again is the same as no bucket: forget it (bounded memory under churn)
    for (const [k, b] of buckets) if (b.tokens + (t - b.at) * perMs >= limit.burst) buckets.delete(k);
    sweptAt = t;
  };
  return {
    take(key) {
      const t = now();
      if (t - sweptAt > 60_000 || buckets.size > 100_000) sweep(t);
      const b = buckets.get(key) ?? { tokens: limit.burst, at: t };
      const tokens = Math.min(limit.burst, b.tokens + (t - b.at) * perMs);
      if (tokens >= 1) {
        buckets.set(key, { tokens: tokens - 1, at: t });
        return 0;
      }
      buckets.set(key, { tokens, at: t });
      return perMs > 0 ? Math.max(1, Math.ceil((1 - tokens) / perMs / 1000)) : 3600;
    },
    get size() {
      return buckets.size;
    },
  };
}
