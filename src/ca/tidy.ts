/**
 * `tidy`: removing from the CA's index the records of certificates that expired more than a
 * retention ago (renewed ones, "superseded", and never renewed ones alike), with their
 * revocation records. The index otherwise grows with every renewal.
 *
 * What is never removed, whatever the retention:
 * - a certificate still inside its validity, renewed or not: it can still be presented, so it
 *   must stay listable and revocable;
 * - a revoked certificate a CRL must still list (activeRevocations: not yet expired);
 * - a certificate whose predecessor stays: revoking a serial revokes its renewals too
 *   (revocation.ts walks `renewedFrom` forwards), and a gap would cut that chain.
 * Removed serials are retired by the store (StoreTransaction.removeRecords), never issued again.
 */
import { MtlsError } from '../errors.js';
import { actor, type Authority } from './authority.js';
import { activeRevocations } from './crl-signing.js';
import { successorIn, type IndexRecord, type IssuedRecord } from './store/store.js';

/** The default retention of `tidy`: records go 30 days after their certificate expired. */
export const DEFAULT_TIDY_RETENTION = '30d';
/** the longest retention (the longest duration parseDuration reads: 1000 years) */
const MAX_RETENTION_MS = 1000 * 365 * 86_400_000;

/** Options of {@link tidyIndex}. */
export interface TidyOptions {
  /** how long after its certificate expired a record is kept (ms) */
  readonly olderThanMs: number;
  /** only say what would be removed */
  readonly dryRun?: boolean;
}

/** What {@link tidyIndex} removed (or, with `dryRun`, would remove). */
export interface TidyReport {
  readonly dryRun: boolean;
  /** records of certificates that expired before this time (ISO 8601) were candidates */
  readonly cutoff: string;
  readonly removed: {
    /** certificates that expired without being renewed */
    readonly expired: number;
    /** certificates that were renewed and then expired */
    readonly superseded: number;
    /** revocation records of removed certificates (no CRL lists them any more) */
    readonly revocations: number;
  };
  /** the serials removed, oldest record first */
  readonly serials: readonly string[];
  /** records kept although old enough, and why */
  readonly kept: {
    /** expired before the cutoff, but an earlier certificate of their renewal chain stays */
    readonly chain: number;
  };
  /** index records before and after */
  readonly recordsBefore: number;
  readonly recordsAfter: number;
}

/** Which certificates of `index` {@link tidyIndex} removes at `now` with this retention, and how many old ones it keeps for their renewal chain (pure). */
export function tidyPlan(index: readonly IndexRecord[], now: Date, olderThanMs: number): { remove: IssuedRecord[]; keptForChain: number } {
  const cutoff = now.getTime() - olderThanMs;
  const listed = new Set(activeRevocations(index, now).map((e) => e.serial));
  const issued = new Map<string, IssuedRecord>();
  for (const r of index) if (r.op === 'issue') issued.set(r.serial, r);
  const candidates = new Set<string>();
  for (const r of issued.values()) {
    if (Date.parse(r.notAfter) < cutoff && Date.parse(r.notAfter) < now.getTime() && !listed.has(r.serial)) candidates.add(r.serial);
  }
  const old = candidates.size;
  // a record stays while its predecessor stays (to the fixpoint: chains are short)
  for (let changed = true; changed; ) {
    changed = false;
    for (const s of candidates) {
      const from = issued.get(s)?.renewedFrom;
      if (from !== undefined && issued.has(from) && !candidates.has(from)) {
        candidates.delete(s);
        changed = true;
      }
    }
  }
  return { remove: [...issued.values()].filter((r) => candidates.has(r.serial)), keptForChain: old - candidates.size };
}

/**
 * Removes from the index the records of certificates that expired more than `olderThanMs` ago,
 * renewed or not, with their revocation records; never a certificate still valid, a revocation
 * a CRL still lists, or a certificate whose predecessor in a renewal chain stays. Removed serials
 * are retired (never issued again). One store transaction, serialised with revocation and CRL
 * signing; audited as `ca.tidy`. With `dryRun`, changes nothing.
 */
export async function tidyIndex(ca: Authority, options: TidyOptions): Promise<TidyReport> {
  const ms = options.olderThanMs;
  if (!(Number.isFinite(ms) && ms >= 0 && ms <= MAX_RETENTION_MS)) {
    throw new MtlsError('BAD_DURATION', `the retention of tidy (--older-than) must be 0 to 1000 years in ms (got ${ms})`, { hint: `e.g. ${DEFAULT_TIDY_RETENTION}` });
  }
  return ca.store.transaction(async (tx) => {
    const now = ca.now();
    const index = await tx.readIndex();
    const { remove, keptForChain } = tidyPlan(index, now, options.olderThanMs);
    const gone = new Set(remove.map((r) => r.serial));
    const superseded = remove.filter((r) => successorIn(index, r.serial)).length;
    const revocations = index.filter((r) => r.op === 'revoke' && gone.has(r.serial)).length;
    const serials = remove.map((r) => r.serial);
    const report: TidyReport = {
      dryRun: options.dryRun === true,
      cutoff: new Date(now.getTime() - options.olderThanMs).toISOString(),
      removed: { expired: remove.length - superseded, superseded, revocations },
      serials,
      kept: { chain: keptForChain },
      recordsBefore: index.length,
      recordsAfter: index.length - remove.length - revocations,
    };
    if (!options.dryRun && serials.length > 0) {
      await tx.removeRecords(serials, { time: now.toISOString(), event: 'ca.tidy', actor: actor(), cutoff: report.cutoff, removed: report.removed, serials });
    }
    return report;
  });
}
