/**
 * The PostgreSQL connection pool of a store or a migration. The `pg` driver is loaded on first
 * use: commands on a folder store never pay for it.
 */
import type pg from 'pg';

/** Options of {@link PostgresStore} and of the migration (`migratePostgres`). */
export interface PostgresStoreOptions {
  /** the password, when not in PGPASSWORD (the CLI reads ~/.pgpass); never in the URL */
  readonly password?: () => Promise<string | undefined>;
  /** the CA this database belongs to (the root certificate's SHA-256): recorded on first use, checked after */
  readonly caFingerprint?: string;
  /** pool size (default 10) */
  readonly max?: number;
}

let driver: Promise<typeof import('pg')> | undefined;

/** A pool for the URL; a connection lost while idle or checked out never crashes the process. */
export async function openPool(url: string, options: PostgresStoreOptions): Promise<pg.Pool> {
  const { default: pgDriver } = await (driver ??= import('pg'));
  const p = new pgDriver.Pool({
    connectionString: url,
    max: options.max ?? 10,
    allowExitOnIdle: true,
    ...(options.password ? { password: options.password as () => Promise<string> } : {}),
  });
  p.on('error', () => undefined); // an idle client lost: the next query reports it
  // a client that loses its server while checked out (failover, restart, a terminated
  // backend) emits 'error', and pg-pool listens only while the client is idle: without a
  // listener of our own that event would crash the process. The query in flight rejects with
  // the same error, and the transaction then releases the client as broken.
  p.on('connect', (client) => client.on('error', () => undefined));
  return p;
}
