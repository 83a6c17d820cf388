/**
 * Moving a CA's state into and out of a PostgreSQL store (`ca export`, `ca import`): a
 * snapshot read in one consistent transaction, and an import written in one.
 */
import type pg from 'pg';
import { MtlsError } from '../../errors.js';
import { storeError } from './postgres-errors.js';
import { LOCK_CRL } from './postgres-locks.js';
import { principalRevocationRow } from './postgres-lookups.js';
import { readCrlWith, readIndexWith, storedToken, type TokenRow } from './postgres-rows.js';
import { transactionOps } from './postgres-transaction.js';
import { checkPrincipalRevocations, withoutRevokedTokens, type AuditEvent, type IssuedRecord, type RevokedRecord, type StoreSnapshot } from './store.js';

/** Everything the database holds, read in one consistent snapshot: for `ca import`. */
export async function readSnapshot(pool: pg.Pool, url: string): Promise<StoreSnapshot> {
  const c = await pool.connect().catch((e) => Promise.reject(storeError(url, e)));
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const index = await readIndexWith(c);
    const issued = (await c.query<{ serial: string; der: Buffer }>('SELECT serial, der FROM certificates ORDER BY ord')).rows;
    const audit = (await c.query<{ event: AuditEvent }>('SELECT event FROM audit ORDER BY ord')).rows.map((x) => x.event);
    const [root, intermediate] = [await readCrlWith(c, 'root'), await readCrlWith(c, 'intermediate')];
    const tokens = (await c.query<TokenRow>('SELECT token, used_at, used_for FROM tokens ORDER BY ord')).rows.map(storedToken);
    const retired = (await c.query<{ serial: string }>('SELECT serial FROM retired_serials ORDER BY retired_at, serial')).rows.map((r) => r.serial);
    const usedOnce = (await c.query<{ key: string; expires_at: Date }>('SELECT key, expires_at FROM used_once ORDER BY key')).rows.map((r) => ({ key: r.key, expiresAt: r.expires_at.toISOString() }));
    const principalRevocations = (await c.query<{ principal: string; revoked_at: Date; reason: string }>('SELECT principal, revoked_at, reason FROM revoked_principals ORDER BY principal')).rows.map(principalRevocationRow);
    await c.query('COMMIT');
    return {
      index,
      issued,
      audit,
      crls: { ...(root ? { root } : {}), ...(intermediate ? { intermediate } : {}) },
      tokens,
      ...(retired.length ? { retired } : {}),
      ...(usedOnce.length ? { usedOnce } : {}),
      ...(principalRevocations.length ? { principalRevocations } : {}),
    };
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw storeError(url, e);
  } finally {
    c.release();
  }
}

/**
 * For export (folder store -> database): writes everything in one transaction, in the
 * folder store's order, and sets the CRL sequences past the imported CRLs' numbers.
 * With `replace`, whatever the database held is removed first. The schema is checked by the caller.
 */
export async function writeSnapshot(pool: pg.Pool, url: string, data: StoreSnapshot, replace: boolean): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_CRL.toString()]);
    // TRUNCATE fires no row trigger: the append-only rule guards single rows, --replace is explicit
    if (replace) await c.query('TRUNCATE certificates, revocations, audit, crls, tokens, retired_serials');
    if (data.retired?.length) await c.query('INSERT INTO retired_serials (serial) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [data.retired]);
    const tx = transactionOps(c);
    const ders = new Map(data.issued.map((i) => [i.serial, i.der]));
    // index records in their order: runs of issue records go in one statement
    let run: { record: IssuedRecord; der: Uint8Array }[] = [];
    const flush = async () => {
      for (let i = 0; i < run.length; i += 1000) await tx.commitIssued(run.slice(i, i + 1000), []);
      run = [];
    };
    for (const r of data.index) {
      if (r.op === 'issue') {
        const der = ders.get(r.serial);
        if (!der) throw new MtlsError('STORE_CORRUPT', `issued/${r.serial}.crt is missing`, { hint: 'restore the CA folder from backup before exporting' });
        run.push({ record: r, der });
      } else {
        await flush();
        await c.query('INSERT INTO revocations (serial, record, reason, revoked_at) VALUES ($1, $2, $3, $4)', [r.serial, JSON.stringify(r), (r as RevokedRecord).reason, (r as RevokedRecord).revokedAt]);
      }
    }
    await flush();
    for (let i = 0; i < data.audit.length; i += 5000) await tx.appendAudit(data.audit.slice(i, i + 5000));
    for (const which of ['root', 'intermediate'] as const) {
      const der = data.crls[which];
      if (der) await tx.writeCrl(which, der);
    }
    // revoked principals (below) are kept, the database's own and the snapshot's: their tokens not used yet stay out
    const kept = (await c.query<{ principal: string; revoked_at: Date; reason: string }>('SELECT principal, revoked_at, reason FROM revoked_principals')).rows.map(principalRevocationRow);
    for (const t of withoutRevokedTokens(data.tokens, [...kept, ...(data.principalRevocations ?? [])])) {
      const { usedAt, usedFor, ...token } = t;
      await c.query('INSERT INTO tokens (id, hash, token, expires_at, used_at, used_for) VALUES ($1, $2, $3, $4, $5, $6)', [token.id, token.hash, JSON.stringify(token), token.expiresAt, usedAt ?? null, usedFor ?? null]);
    }
    // used ID tokens (useOnce): added to the database's own records, the later expiry winning;
    // --replace keeps those too (a record only ever refuses a replay)
    for (let i = 0; i < (data.usedOnce?.length ?? 0); i += 1000) {
      const part = data.usedOnce!.slice(i, i + 1000);
      await c.query(
        'INSERT INTO used_once (key, expires_at) SELECT * FROM unnest($1::text[], $2::timestamptz[]) ON CONFLICT (key) DO UPDATE SET expires_at = GREATEST(used_once.expires_at, EXCLUDED.expires_at)',
        [part.map((r) => r.key), part.map((r) => r.expiresAt)],
      );
    }
    // revoked principals: added to the database's own, the later revocation winning; --replace keeps them too
    if (data.principalRevocations?.length) {
      checkPrincipalRevocations(data.principalRevocations);
      for (const r of data.principalRevocations) await tx.recordPrincipalRevocation(r);
    }
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e instanceof MtlsError ? e : storeError(url, e);
  } finally {
    c.release();
  }
}
