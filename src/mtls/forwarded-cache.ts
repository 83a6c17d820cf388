/**
 * The trusted-proxy reader's cache (trusted-proxies.ts): what the authenticator decided for the
 * certificate in a forwarded header value, kept by the exact header bytes, so that a request
 * repeating a value (every request of a client, through its proxy) is answered by one map lookup
 * and a few comparisons: no decoding, no hashing, no ASN.1, nothing allocated.
 *
 * One key, which two different inputs never share:
 * - `scope`, the trusted-proxy entry the value came through (so its format and header names): a
 *   value kept for one entry is no answer for another, whose format may read the same bytes
 *   otherwise, or whose headers mean something else;
 * - `shape` and `key`, which header lines exactly: the common case, one line of one header, is
 *   keyed by that line itself (`shape`: the header's index in the entry's list); anything else (a
 *   chain header too, a header sent twice) by every header's lines, length-prefixed
 *   ({@link compositeKey}, `shape` -1): no two sets of lines give one key, whatever bytes they
 *   hold. The decoder reads exactly those lines, so one key is one input: the same certificate
 *   with another chain is another key, and so is the same value in another header.
 *   A kept record whose scope or shape is not the request's is a miss (and is replaced).
 *
 * The map is indexed by a probe of the key, not the key: V8 hashes the whole of a string used as a
 * Map key, about 4 µs for a 1.7 kB PEM (each request brings a new string, so no hash is reused),
 * while a record's full key is compared as well, a few hundred ns. A probe is a hash of 256
 * characters from the end and the middle of a long single value (a certificate's signature and
 * key, which two certificates do not share), computed in place; two values with one probe only
 * take each other's place (a miss).
 *
 * What is kept: the verified result (before expiry and revocation) until the first CA certificate
 * on its chain expires (`until`: then verified again), and the answer `current` gave for it, reused
 * while the authenticator's revocation revision is unchanged and the clock has not passed the
 * identity's notAfter: new revocation data makes the next request ask `current` again, so a revoked
 * certificate is refused on its next request, even on a connection the proxy keeps open.
 * Bounded: at most 10,000 values and 32 Mi characters of header lines (a value is anyone's the
 * proxy forwards for, up to the server's header size limit, and refusals are kept too: 10,000
 * values of 16 kB would hold 160 MB), least recently used first out, an hour idle.
 */
import type { AuthResult, ForwardedAuthenticator } from './authenticate.js';
import { IdleMap } from '../util/idle-map.js';

/** One kept header value: its verified certificate and the answer as of `revision`. */
export interface KeptForwarded<S, O> {
  readonly scope: S;
  readonly shape: number;
  readonly key: string;
  readonly leaf: Buffer;
  readonly verified: AuthResult;
  /** verified again after this (ms): the first CA certificate on its chain expires */
  readonly until: number;
  /** `current(verified)`, and what the reader answers with it (one object, not one per request) */
  answer: AuthResult;
  outcome: O;
  /** the answer holds while the revision is this one and the clock is at most `answerUntil` */
  revision: number;
  answerUntil: number;
}

/** Made by {@link createForwardedCache}. */
export interface ForwardedCache<S, O> {
  /** The record kept for exactly this input, its answer brought up to date; undefined when none is (or it must be verified again). */
  lookup(scope: S, shape: number, key: string): KeptForwarded<S, O> | undefined;
  /** Keeps a freshly verified result (when `keep`) and returns its record, answer computed. */
  add(scope: S, shape: number, key: string, leaf: Buffer, verified: { readonly result: AuthResult; readonly until: number; readonly keep: boolean }): KeptForwarded<S, O>;
  /** How many values are kept, and their characters in all (header lines and leaves). */
  size(): { readonly values: number; readonly chars: number };
}

/**
 * The key of a set of header lines (`headers` in the entry's order, each with its lines or none):
 * every header's line count, then each line with its length, so the key reads back to one set of
 * lines only.
 */
export function compositeKey(headers: readonly string[], lines: Readonly<Record<string, readonly string[] | undefined>>): string {
  let key = '';
  for (const h of headers) {
    const ls = lines[h] ?? [];
    key += `${ls.length}`;
    for (const l of ls) key += `:${l.length}:${l}`;
    key += ';';
  }
  return key;
}

/**
 * What the map is indexed by: for a long single value, a 31-bit hash of its last 128 and middle
 * 128 characters, read in place (slicing and joining them made three strings per request for
 * the GC, and the Map hashed the joined one again); anything else whole.
 */
function probeOf(shape: number, key: string): string | number {
  if (shape < 0 || key.length <= 512) return key;
  let h = 0x811c9dc5;
  for (let i = key.length - 128; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  const mid = key.length >> 1;
  for (let i = mid - 64; i < mid + 64; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 1;
}

/** What the kept header lines may hold in all, in characters (the leaves' bytes counted too). */
export const MAX_KEPT_CHARS = 32 * 1024 * 1024;

/** `outcomeOf(answer)` makes the reader's answer for a record, once per new answer; `maxChars` for tests. */
export function createForwardedCache<S, O>(authenticator: ForwardedAuthenticator, outcomeOf: (scope: S, answer: AuthResult) => O, maxChars: number = MAX_KEPT_CHARS): ForwardedCache<S, O> {
  let chars = 0;
  const sizeOf = (r: KeptForwarded<S, O>): number => r.key.length + r.leaf.length;
  const kept = new IdleMap<string | number, KeptForwarded<S, O>>({ idleMs: 3_600_000, max: 10_000, onEvict: (_, r) => (chars -= sizeOf(r)) });

  /** `current` again when the revocation data changed, the identity expired since, or the last answer was a refusal. */
  const refresh = (r: KeptForwarded<S, O>, now: number): void => {
    const revision = authenticator.revision();
    if (r.revision === revision && now <= r.answerUntil) return;
    r.answer = authenticator.current(r.verified);
    r.outcome = outcomeOf(r.scope, r.answer);
    r.revision = revision;
    // a refusal is asked again each time (it is rare, and `current` of it is cheap)
    r.answerUntil = r.answer.ok ? Math.min(r.until, r.answer.identity.notAfter.getTime()) : -Infinity;
  };

  return {
    lookup(scope, shape, key) {
      const r = kept.get(probeOf(shape, key));
      if (!r || r.scope !== scope || r.shape !== shape || r.key !== key) return undefined;
      const now = authenticator.now();
      if (r.until < now) return undefined;
      refresh(r, now);
      return r;
    },
    size: () => ({ values: kept.size, chars }),
    add(scope, shape, key, leaf, verified) {
      const r: KeptForwarded<S, O> = { scope, shape, key, leaf, verified: verified.result, until: verified.until, answer: verified.result, outcome: undefined as O, revision: -1, answerUntil: -Infinity };
      refresh(r, authenticator.now());
      if (verified.keep && sizeOf(r) <= maxChars) {
        const probe = probeOf(shape, key);
        const old = kept.get(probe);
        if (old) chars -= sizeOf(old);
        kept.set(probe, r);
        chars += sizeOf(r);
        while (chars > maxChars && kept.evictOldest());
      }
      return r;
    },
  };
}
