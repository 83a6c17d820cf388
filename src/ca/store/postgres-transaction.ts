/**
 * Transactions of the PostgreSQL store: one client, BEGIN to COMMIT, and the operations of
 * {@link StoreTransaction} on it. What makes sharing the database safe across CA processes:
 *
 * - serials: `certificates.serial` is the primary key. A commit that hits a serial another
 *   process committed meanwhile fails as a whole with SERIAL_TAKEN (never overwrites); the
 *   authority signs again with new serials. Issuance takes no global lock.
 * - revocations and CRLs: `nextCrlNumber` and `commitRevocation` take a transaction-scoped
 *   advisory lock first, so CRL signing and revocation are serialised across processes, and
 *   a CRL signed after the lock sees every revocation committed before it. cRLNumbers come
 *   from one SEQUENCE per CA (never reused, even by a rolled back transaction).
 * - revoked principals: `recordPrincipalRevocation` and a transaction's `principalRevocation`
 *   take a transaction-scoped advisory lock per principal, so an issuance that checks the
 *   principal either commits before the revocation reads what to revoke, or sees its record.
 * - tokens: consumed with one `UPDATE ... WHERE used_at IS NULL AND expires_at > now
 *   RETURNING`: of concurrent consumers exactly one wins.
 */
import type pg from 'pg';
import { MtlsError } from '../../errors.js';
import { parseCrl } from '../../x509/crl.js';
import { isDriverError, isUniqueViolation, storeError } from './postgres-errors.js';
import { LOCK_CRL, LOCK_PRINCIPAL, LOCK_RENEWAL } from './postgres-locks.js';
import { lookupsOn } from './postgres-lookups.js';
import { readCrlWith, readIndexWith, type Queryable } from './postgres-rows.js';
import type { AuditEvent, EnrollmentToken, StoreTransaction, TokenConsumeResult } from './store.js';

/** whether a certificate is revoked, and the first certificate that renewed it (its plan is checked in test/ca/store-lookups.test.ts) */
export const RENEWAL_SQL = "SELECT EXISTS (SELECT 1 FROM revocations WHERE serial = $1) AS revoked, (SELECT serial FROM certificates WHERE record->>'renewedFrom' = $1 ORDER BY ord LIMIT 1) AS successor";

/** the once-only credentials expired by now, forgotten at each use, on used_once_expires_at (migration 4; its plan is checked in test/ca/store-lookups.test.ts) */
export const PRUNE_USED_ONCE_SQL = 'DELETE FROM used_once WHERE expires_at <= $1';

/** the unused tokens of a principal, deleted (`revoke --principal`), on tokens_unused_principal (migration 9) */
export const DROP_UNUSED_TOKENS_SQL = "DELETE FROM tokens WHERE used_at IS NULL AND token->'claims'->>'kind' = $1 AND token->'claims'->>'id' = $2 RETURNING id";

/** A statement that failed inside the transaction, which then must not commit (see {@link runTransaction}). */
export interface TransactionState {
  failed: unknown;
}

/** The operations of one transaction on its client. */
export function transactionOps(client: pg.PoolClient, state: TransactionState = { failed: undefined }): StoreTransaction {
  const c: Queryable = {
    query: async <R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> => {
      try {
        return await client.query<R>(sql, params);
      } catch (e) {
        state.failed ??= e;
        throw e;
      }
    },
  };
  let crlLocked = false;
  const lockCrl = async () => {
    if (crlLocked) return;
    await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_CRL.toString()]);
    crlLocked = true;
  };
  const insertAudit = async (events: readonly AuditEvent[]) => {
    if (events.length === 0) return;
    await c.query('INSERT INTO audit (event) SELECT e FROM unnest($1::json[]) WITH ORDINALITY AS t(e, i) ORDER BY i', [events.map((e) => JSON.stringify(e))]);
  };
  const lookups = lookupsOn(async () => c);
  /**
   * held to the end of the transaction: a principal's revocation and an issuance checking it, or
   * a token made for it, run one after the other. Keyed by `kind/id` (one CA, one trust domain
   * per database), which a token's claims name without the trust domain
   */
  const lockPrincipalPath = (path: string) => c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_PRINCIPAL, path]);
  const lockPrincipal = (principal: string) => lockPrincipalPath(principal.replace(/^spiffe:\/\/[^/]*\//, ''));
  return {
    ...lookups,
    principalRevocation: async (principal) => {
      await lockPrincipal(principal);
      return lookups.principalRevocation(principal);
    },
    recordPrincipalRevocation: async (record) => {
      await lockPrincipal(record.principal);
      await c.query(
        'INSERT INTO revoked_principals (principal, revoked_at, reason) VALUES ($1, $2, $3) ON CONFLICT (principal) DO UPDATE SET revoked_at = EXCLUDED.revoked_at, reason = EXCLUDED.reason WHERE revoked_principals.revoked_at <= EXCLUDED.revoked_at',
        [record.principal, record.revokedAt, record.reason],
      );
    },
    serialExists: async (serial) => (await c.query('SELECT 1 FROM certificates WHERE serial = $1 UNION ALL SELECT 1 FROM retired_serials WHERE serial = $1', [serial])).rowCount !== 0,
    commitIssued: async (items, audit) => {
      if (items.length === 0) return insertAudit(audit);
      const retired = await c.query<{ serial: string }>('SELECT serial FROM retired_serials WHERE serial = ANY($1::text[])', [items.map((i) => i.record.serial)]);
      if (retired.rows[0]) throw new MtlsError('SERIAL_TAKEN', `serial ${retired.rows[0].serial} was used before (its record was tidied)`, { hint: 'issue again' });
      try {
        // certificates and their audit events in one statement (one round trip)
        await c.query(
          `WITH issued AS (
             INSERT INTO certificates (serial, der, record, type, principal, not_after)
             SELECT s, d, r, ty, p, na FROM unnest($1::text[], $2::bytea[], $3::json[], $4::text[], $5::text[], $6::timestamptz[]) WITH ORDINALITY AS t(s, d, r, ty, p, na, i) ORDER BY i
             RETURNING 1)
           INSERT INTO audit (event) SELECT e FROM unnest($7::json[]) WITH ORDINALITY AS a(e, i) ORDER BY i`,
          [
            items.map((i) => i.record.serial),
            items.map((i) => Buffer.from(i.der)),
            items.map((i) => JSON.stringify(i.record)),
            items.map((i) => i.record.type),
            items.map((i) => i.record.principal ?? null),
            items.map((i) => i.record.notAfter),
            audit.map((e) => JSON.stringify(e)),
          ],
        );
      } catch (e) {
        if (isUniqueViolation(e, 'certificates_pkey')) {
          throw new MtlsError('SERIAL_TAKEN', `a serial of this issuance was committed by another CA process (${(e as { detail?: string }).detail ?? 'unique violation'})`, { cause: e, hint: 'issue again' });
        }
        throw e;
      }
    },
    appendAudit: insertAudit,
    commitRevocation: async (record, audit) => {
      await lockCrl();
      try {
        await c.query('INSERT INTO revocations (serial, record, reason, revoked_at) VALUES ($1, $2, $3, $4)', [record.serial, JSON.stringify(record), record.reason, record.revokedAt]);
      } catch (e) {
        if (isUniqueViolation(e, 'revocations_pkey')) throw new MtlsError('ALREADY_REVOKED', `certificate ${record.serial} was already revoked`, { cause: e, hint: 'nothing to do' });
        throw e;
      }
      await insertAudit([audit]);
    },
    writeCrl: async (which, der) => {
      await lockCrl();
      const number = parseCrl(Buffer.from(der)).number;
      if (number === undefined) throw new MtlsError('CRL_INVALID', 'a CRL without cRLNumber cannot be stored');
      await c.query(
        `INSERT INTO crls (name, number, der) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET number = EXCLUDED.number, der = EXCLUDED.der, written_at = now()`,
        [which, number.toString(), Buffer.from(der)],
      );
      // the sequence never falls behind a stored CRL (an imported one, say)
      await c.query(`SELECT setval('crl_number_${which}', GREATEST((SELECT last_value FROM crl_number_${which}), $1::bigint))`, [number.toString()]);
    },
    readIndex: async () => readIndexWith(c),
    renewalOf: async (serial) => {
      // held to the end of the transaction: two renewals of one certificate run one after the other
      await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_RENEWAL, serial]);
      const r = await c.query<{ revoked: boolean; successor: string | null }>(RENEWAL_SQL, [serial]);
      const row = r.rows[0];
      return { revoked: row?.revoked === true, ...(row?.successor ? { successor: row.successor } : {}) };
    },
    readCrl: async (which) => readCrlWith(c, which),
    putToken: async (token) => {
      // a revocation of the principal running now either sees this token (and drops it) or committed before it was made
      await lockPrincipalPath(`${token.claims.kind}/${token.claims.id}`);
      try {
        await c.query('INSERT INTO tokens (id, hash, token, expires_at) VALUES ($1, $2, $3, $4)', [token.id, token.hash, JSON.stringify(token), token.expiresAt]);
      } catch (e) {
        if (isUniqueViolation(e)) throw new MtlsError('BAD_ARGUMENT', `an enrollment token with id ${token.id} or the same secret exists already`, { cause: e, hint: 'create a new token' });
        throw e;
      }
    },
    consumeToken: async (hash, now, serial): Promise<TokenConsumeResult> => {
      const won = await c.query<{ token: EnrollmentToken }>('UPDATE tokens SET used_at = $2, used_for = $3 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING token', [hash, now.toISOString(), serial ?? null]);
      if (won.rows[0]) return { token: won.rows[0].token };
      const r = await c.query<{ used_at: Date | null }>('SELECT used_at FROM tokens WHERE hash = $1', [hash]);
      if (!r.rows[0]) return { refused: 'unknown' };
      return { refused: r.rows[0].used_at ? 'used' : 'expired' };
    },
    dropUnusedTokens: async (kind, id) => {
      // a consumption in flight holds the row's lock: this waits for it, then sees it used
      const r = await c.query<{ id: string }>(DROP_UNUSED_TOKENS_SQL, [kind, id]);
      return r.rows.map((row) => row.id);
    },
    useOnce: async (key, expiresAt, now) => {
      // a key recorded before and expired since counts as new (the row is taken over); the
      // primary key makes two replicas racing on one key see one winner
      const r = await c.query(
        'INSERT INTO used_once (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE used_once.expires_at <= $3 RETURNING key',
        [key, expiresAt.toISOString(), now.toISOString()],
      );
      if (r.rowCount === 0) return false;
      // forget what expired (a few rows per sign-in at most, on the expires_at index)
      await c.query(PRUNE_USED_ONCE_SQL, [now.toISOString()]);
      return true;
    },
    removeRecords: async (serials, audit) => {
      if (serials.length === 0) return;
      await lockCrl(); // serialised with revocation and CRL signing
      await c.query('INSERT INTO retired_serials (serial) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [serials]);
      await c.query('DELETE FROM revocations WHERE serial = ANY($1::text[])', [serials]);
      await c.query('DELETE FROM certificates WHERE serial = ANY($1::text[])', [serials]);
      await insertAudit([audit]);
    },
    nextCrlNumber: async (which) => {
      await lockCrl();
      const r = await c.query<{ n: string }>(`SELECT nextval('crl_number_${which === 'root' ? 'root' : 'intermediate'}')::text AS n`);
      return BigInt(r.rows[0]?.n as string);
    },
  };
}

/**
 * Runs `fn` in one transaction on a client of the pool. The caller's own errors pass
 * unchanged; the database's, and any error once the connection broke, become the store's
 * (postgres-errors.ts).
 */
export async function runTransaction<T>(pool: pg.Pool, url: string, fn: (tx: StoreTransaction) => T | Promise<T>): Promise<T> {
  let c: pg.PoolClient;
  try {
    c = await pool.connect();
  } catch (e) {
    throw storeError(url, e);
  }
  let broken = false;
  const lost = () => (broken = true); // the server went away under this transaction (see postgres-pool.ts)
  c.on('error', lost);
  const state: TransactionState = { failed: undefined };
  try {
    await c.query('BEGIN');
    const result = await fn(transactionOps(c, state));
    // PostgreSQL answers COMMIT of an aborted transaction with a silent ROLLBACK: a statement
    // that failed inside (even one the caller caught) fails the transaction here
    if (state.failed !== undefined) throw state.failed;
    await c.query('COMMIT');
    return result;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw broken || isDriverError(e) ? storeError(url, e) : e; // the caller's own errors pass unchanged
  } finally {
    c.off('error', lost);
    c.release(broken);
  }
}
