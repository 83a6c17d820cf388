/**
 * Reads the PostgreSQL store shares between its own methods, its transactions and the export
 * snapshot: each runs on a pool, a transaction's client or a snapshot's client alike.
 */
import type pg from 'pg';
import type { CrlName, EnrollmentToken, IndexRecord, StoredToken } from './store.js';

/** A pool or a client: whatever runs a query. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** A row of `tokens`, as `SELECT token, used_at, used_for` reads it. */
export interface TokenRow {
  token: EnrollmentToken;
  used_at: Date | null;
  used_for: string | null;
}

export const storedToken = (x: TokenRow): StoredToken => ({ ...x.token, ...(x.used_at ? { usedAt: x.used_at.toISOString() } : {}), ...(x.used_for ? { usedFor: x.used_for } : {}) });

/** Every index record, certificates and revocations in the order written (one ordering sequence). */
export async function readIndexWith(q: Queryable): Promise<IndexRecord[]> {
  const r = await q.query<{ record: IndexRecord }>('SELECT record, ord FROM certificates UNION ALL SELECT record, ord FROM revocations ORDER BY ord');
  return r.rows.map((x) => x.record);
}

export async function readCrlWith(q: Queryable, which: CrlName): Promise<Buffer | undefined> {
  const r = await q.query<{ der: Buffer }>('SELECT der FROM crls WHERE name = $1', [which]);
  return r.rows[0]?.der;
}
