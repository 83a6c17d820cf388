/** `list`: the index folded into one entry per certificate, with its current status. */
import type { IndexRecord, IssuedRecord, Store } from './store/store.js';

export type CertificateStatus = 'valid' | 'expired' | 'revoked';

export interface CertificateEntry extends IssuedRecord {
  readonly status: CertificateStatus;
  readonly revokedAt?: string;
  readonly revocationReason?: string;
}

export interface ListFilter {
  readonly status?: CertificateStatus;
  readonly user?: string;
  readonly service?: string;
  readonly team?: string;
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

export async function listCertificates(store: Store, filter: ListFilter, now: Date): Promise<CertificateEntry[]> {
  return foldIndex(await store.readIndex(), now).filter(
    (e) =>
      (!filter.status || e.status === filter.status) &&
      (!filter.type || e.type === filter.type) &&
      (!filter.user || (e.kind === 'user' && e.id === filter.user)) &&
      (!filter.service || (e.kind === 'service' && e.id === filter.service)) &&
      (!filter.team || e.teams.includes(filter.team)) &&
      (!filter.role || e.roles.includes(filter.role)),
  );
}
