/**
 * The PostgreSQL store's lookups (StoreLookups): each one query that an index answers (primary
 * keys; the id, teams and roles indexes of migration 6; certificates_acting_for, migration 7;
 * revoked_principals' primary key, migration 8; renewedFrom, delegatedFrom and actorSerial each
 * with ord, migration 9, which serve the condition and the order at once), never a read of every
 * row, whether or not the table was analyzed since it grew. The statements are exported for the test that checks
 * each plan uses an index (test/ca/store-lookups.test.ts).
 */
import type { IndexRecord, IssuedQuery, IssuedRecord, IssuedWithRevocation, PrincipalRevocation, RevokedRecord, StoreLookups } from './store.js';
import type { Queryable } from './postgres-rows.js';

export const LOOKUP_SQL = {
  lookup: 'SELECT (SELECT record FROM certificates WHERE serial = $1) AS issued, (SELECT record FROM revocations WHERE serial = $1) AS revoked',
  successorOf: "SELECT record FROM certificates WHERE record->>'renewedFrom' = $1 ORDER BY ord LIMIT 1",
  delegatedFrom: "SELECT record FROM certificates WHERE record->>'delegatedFrom' = $1 ORDER BY ord",
  exchangedWith: "SELECT record FROM certificates WHERE record->>'actorSerial' = $1 ORDER BY ord",
  // a subquery per revocation on the primary key, not a join: a join let the planner hash all of
  // certificates when the table had grown since its last ANALYZE (CRL signing then read every row)
  activeRevocations: 'SELECT r.record FROM revocations r WHERE (SELECT c.not_after FROM certificates c WHERE c.serial = r.serial) >= $1 ORDER BY r.ord',
  principalRevocation: 'SELECT principal, revoked_at, reason FROM revoked_principals WHERE principal = $1',
} as const;

/** A row of revoked_principals as a {@link PrincipalRevocation}. */
export const principalRevocationRow = (r: { principal: string; revoked_at: Date; reason: string }): PrincipalRevocation => ({ principal: r.principal, revokedAt: r.revoked_at.toISOString(), reason: r.reason });

/**
 * The statement and parameters of listIssued: the filters an index serves in SQL (teams and
 * roles: GIN on the JSON arrays; user and service: the id index; actingFor: its index), status by the revocation join
 * and not_after, in the order recorded.
 */
export function listIssuedSql(q: IssuedQuery): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (q.type) where.push(`c.type = ${p(q.type)}`);
  if (q.team !== undefined) where.push(`(c.record->'teams')::jsonb ? ${p(q.team)}`);
  if (q.role !== undefined) where.push(`(c.record->'roles')::jsonb ? ${p(q.role)}`);
  if (q.user !== undefined) where.push(`c.record->>'id' = ${p(q.user)} AND c.record->>'kind' = 'user'`);
  if (q.service !== undefined) where.push(`c.record->>'id' = ${p(q.service)} AND c.record->>'kind' = 'service'`);
  if (q.actingFor !== undefined) where.push(`c.record->>'actingFor' = ${p(q.actingFor)}`);
  if (q.status === 'revoked') where.push('r.serial IS NOT NULL');
  else if (q.status) where.push(`r.serial IS NULL AND c.not_after ${q.status === 'expired' ? '<' : '>='} ${p((q.now ?? new Date()).toISOString())}`);
  return {
    sql: `SELECT c.record AS issued, r.record AS revoked FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY c.ord`,
    params,
  };
}

/** The lookups on a pool or a transaction's client. */
export function lookupsOn(q: () => Promise<Queryable>): StoreLookups {
  return {
    lookup: async (serial) => {
      const r = await (await q()).query<{ issued: IssuedRecord | null; revoked: RevokedRecord | null }>(LOOKUP_SQL.lookup, [serial]);
      const row = r.rows[0];
      return { ...(row?.issued ? { issued: row.issued } : {}), ...(row?.revoked ? { revoked: row.revoked } : {}) };
    },
    successorOf: async (serial) => (await (await q()).query<{ record: IssuedRecord }>(LOOKUP_SQL.successorOf, [serial])).rows[0]?.record,
    delegatedFrom: async (serial) => (await (await q()).query<{ record: IssuedRecord }>(LOOKUP_SQL.delegatedFrom, [serial])).rows.map((x) => x.record),
    exchangedWith: async (serial) => (await (await q()).query<{ record: IssuedRecord }>(LOOKUP_SQL.exchangedWith, [serial])).rows.map((x) => x.record),
    activeRevocations: async (now) => (await (await q()).query<{ record: RevokedRecord }>(LOOKUP_SQL.activeRevocations, [now.toISOString()])).rows.map((x) => x.record),
    listIssued: async (query) => {
      const { sql, params } = listIssuedSql(query);
      const r = await (await q()).query<{ issued: IndexRecord; revoked: RevokedRecord | null }>(sql, params);
      return r.rows.map((x): IssuedWithRevocation => (x.revoked ? { issued: x.issued as IssuedRecord, revoked: x.revoked } : { issued: x.issued as IssuedRecord }));
    },
    principalRevocation: async (principal) => {
      const row = (await (await q()).query<{ principal: string; revoked_at: Date; reason: string }>(LOOKUP_SQL.principalRevocation, [principal])).rows[0];
      return row ? principalRevocationRow(row) : undefined;
    },
  };
}
