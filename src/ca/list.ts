/** `list`: the index folded into one entry per certificate, with its current status. */
import { statusAt, type IndexRecord, type IssuedRecord, type Store } from './store/store.js';

/** A certificate's status at a given time: revoked wins over expired (past its notAfter). */
export type CertificateStatus = 'valid' | 'expired' | 'revoked';

/** One issued certificate as {@link listCertificates} returns it: its index record plus its status. */
export interface CertificateEntry extends IssuedRecord {
  readonly status: CertificateStatus;
  /** when revoked: the time, ISO 8601 */
  readonly revokedAt?: string;
  /** when revoked: the RFC 5280 reason name, e.g. `keyCompromise` */
  readonly revocationReason?: string;
}

/** Which certificates {@link listCertificates} returns: every field given must match (AND); `{}` lists all. */
export interface ListFilter {
  readonly status?: CertificateStatus;
  /** a user id (not the principal URI): client certificates of that user */
  readonly user?: string;
  /** a service id: client certificates of that service */
  readonly service?: string;
  /** certificates whose teams include this one */
  readonly team?: string;
  /** certificates whose roles include this one */
  readonly role?: string;
  readonly type?: 'client' | 'server';
}

export function foldIndex(records: readonly IndexRecord[], now: Date): CertificateEntry[] {
  const revoked = new Map<string, { revokedAt: string; reason: string }>();
  for (const r of records) if (r.op === 'revoke') revoked.set(r.serial, { revokedAt: r.revokedAt, reason: r.reason });
  const out: CertificateEntry[] = [];
  for (const r of records) {
    if (r.op !== 'issue') continue;
    const rev = revoked.get(r.serial);
    const status: CertificateStatus = rev ? 'revoked' : new Date(r.notAfter) < now ? 'expired' : 'valid';
    out.push({ ...r, status, ...(rev ? { revokedAt: rev.revokedAt, revocationReason: rev.reason } : {}) });
  }
  return out;
}

/**
 * The certificates a store recorded, one entry per certificate in the order recorded, with their
 * status at `now`, filtered by `filter`. The store filters (StoreLookups.listIssued: indexed
 * queries in PostgreSQL, in-memory maps in the folder store): a filter by team, role, user or
 * service reads only the certificates that match.
 */
export async function listCertificates(store: Store, filter: ListFilter, now: Date): Promise<CertificateEntry[]> {
  const { status, type, user, service, team, role } = filter;
  const query = { ...(status ? { status } : {}), ...(type ? { type } : {}), ...(user ? { user } : {}), ...(service ? { service } : {}), ...(team ? { team } : {}), ...(role ? { role } : {}), now };
  return (await store.listIssued(query)).map(({ issued, revoked }) => ({ ...issued, status: statusAt(issued, revoked, now), ...(revoked ? { revokedAt: revoked.revokedAt, revocationReason: revoked.reason } : {}) }));
}
