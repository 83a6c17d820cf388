/**
 * What a CRL URL's answer changes: the CRLs it returned, checked against those applied now
 * (rollback and replay protection) and merged into those the URL gave before. Pure: the
 * fetcher (crl-fetch.ts) applies the result.
 */
import { MtlsError } from '../errors.js';
import { compareCrls, type VerifiedCrl } from './revocation.js';

/** The CRLs a URL holds after an answer, and whether any of them is newer than what is applied for its CA. */
export interface MergedCrls {
  readonly crls: VerifiedCrl[];
  readonly newer: boolean;
}

/**
 * Merges `fetched` (verified, from one answer) into `held` (what the same URL gave before).
 * Throws MtlsError `CRL_INVALID` when a fetched CRL is older than the one applied for its CA:
 * a replay or a stale copy must not un-revoke anything.
 */
export function mergeFetchedCrls(held: readonly VerifiedCrl[], fetched: readonly VerifiedCrl[], applied: readonly VerifiedCrl[]): MergedCrls {
  let newer = false;
  for (const v of fetched) {
    const current = applied.filter((a) => a.caKey === v.caKey).reduce<VerifiedCrl | undefined>((n, a) => (!n || compareCrls(a, n) > 0 ? a : n), undefined);
    if (current && compareCrls(v, current) < 0) {
      throw new MtlsError('CRL_INVALID', `its CRL #${v.number ?? '?'} of ${v.issuer} is older than the #${current.number ?? '?'} applied (thisUpdate ${v.thisUpdate.toISOString()}): refused as a replay or a stale copy`);
    }
    if (!current || compareCrls(v, current) > 0) newer = true;
  }
  // merged per CA, never replaced: an answer without a CA's CRL (a root CRL served at the
  // intermediate's URL, by mistake or by someone in the path) must not drop the CRL this
  // source gave for that CA before, which would silently un-revoke its certificates
  return { crls: newestPerCa([...held, ...fetched]), newer };
}

/** one CRL per CA (caKey): the newest */
function newestPerCa(crls: readonly VerifiedCrl[]): VerifiedCrl[] {
  const best = new Map<string, VerifiedCrl>();
  for (const c of crls) {
    const b = best.get(c.caKey);
    if (!b || compareCrls(c, b) > 0) best.set(c.caKey, c);
  }
  return [...best.values()];
}
