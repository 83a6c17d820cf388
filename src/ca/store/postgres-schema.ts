/**
 * The schema of a PostgreSQL store: `migrate` creates or upgrades it (`mcp-mtls ca migrate`),
 * and a store checks it before first use: a schema older or newer than this code knows is
 * refused, and so is another CA's database.
 */
import type pg from 'pg';
import { MtlsError } from '../../errors.js';
import { storeError } from './postgres-errors.js';
import { LOCK_MIGRATE } from './postgres-locks.js';
import { MIGRATIONS, SCHEMA_VERSION } from './postgres-migrations.js';
import { openPool, type PostgresStoreOptions } from './postgres-pool.js';
import { redactUrl } from '../../util/postgres-url.js';

/** Creates or upgrades the schema to SCHEMA_VERSION; returns the versions before and after. */
export async function migrate(url: string, options: PostgresStoreOptions = {}): Promise<{ from: number; to: number; applied: number[] }> {
  const p = await openPool(url, { ...options, max: 1 });
  try {
    const c = await p.connect().catch((e) => Promise.reject(storeError(url, e)));
    try {
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())').catch(async (e) => {
        // two migrating processes may race on the CREATE: the loser sees the table afterwards
        if ((e as { code?: string }).code !== '23505' && (e as { code?: string }).code !== '42P07') throw e;
      });
      const from = await currentVersion(c);
      if (from > SCHEMA_VERSION) throw newerSchema(url, from);
      const applied: number[] = [];
      for (let n = from + 1; n <= SCHEMA_VERSION; n++) {
        await c.query('BEGIN');
        try {
          await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_MIGRATE.toString()]);
          if ((await currentVersion(c)) >= n) {
            await c.query('ROLLBACK');
            continue; // another process applied it meanwhile
          }
          await c.query(MIGRATIONS[n - 1] as string);
          await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [n]);
          await c.query('COMMIT');
          applied.push(n);
        } catch (e) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }
      return { from, to: await currentVersion(c), applied };
    } finally {
      c.release();
    }
  } catch (e) {
    throw storeError(url, e);
  } finally {
    await p.end();
  }
}

async function currentVersion(c: pg.PoolClient): Promise<number> {
  const r = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
  return r.rows[0]?.v ?? 0;
}

function newerSchema(url: string, version: number): MtlsError {
  return new MtlsError('STORE_SCHEMA', `the store ${redactUrl(url)} has schema version ${version}, newer than this mcp-mtls knows (${SCHEMA_VERSION})`, {
    hint: 'upgrade mcp-mtls on this host to the version that migrated the database',
  });
}

/**
 * Checks that the database has this code's schema version and, given the CA's root
 * fingerprint, that it belongs to this CA (recorded on first use). The pool is awaited inside:
 * a driver that cannot be loaded is reported as the store's error too. @internal (not in the
 * declarations: they would need the `pg` types, which users do not install)
 */
export async function checkSchema(pool: Promise<pg.Pool>, url: string, caFingerprint: string | undefined): Promise<void> {
  const location = redactUrl(url);
  let version: number | undefined;
  try {
    const r = await (await pool).query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
    version = r.rows[0]?.v ?? 0;
  } catch (e) {
    if ((e as { code?: string }).code !== '42P01') throw storeError(url, e);
    version = undefined; // no schema_migrations table
  }
  if (version === undefined || version < SCHEMA_VERSION) {
    throw new MtlsError('STORE_SCHEMA', version === undefined ? `the store ${location} has no mcp-mtls schema` : `the store ${location} has schema version ${version}, older than this mcp-mtls needs (${SCHEMA_VERSION})`, {
      hint: `run \`mcp-mtls ca migrate --store ${location}\``,
    });
  }
  if (version > SCHEMA_VERSION) throw newerSchema(url, version);
  if (caFingerprint) {
    await (await pool).query("INSERT INTO ca_meta (key, value) VALUES ('root_fingerprint', $1) ON CONFLICT (key) DO NOTHING", [caFingerprint]);
    const r = await (await pool).query<{ value: string }>("SELECT value FROM ca_meta WHERE key = 'root_fingerprint'");
    if (r.rows[0]?.value !== caFingerprint) {
      throw new MtlsError('CA_CONFIG_INVALID', `the store ${location} belongs to another CA (root ${r.rows[0]?.value.slice(0, 16)}..., this CA's is ${caFingerprint.slice(0, 16)}...)`, {
        hint: 'point this CA at its own database; one database holds one CA',
      });
    }
  }
}
