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
  /** give up connecting after this long (default: the driver's, none) */
  readonly connectTimeoutMs?: number;
}

let driver: Promise<[typeof import('pg'), typeof import('pg-connection-string')]> | undefined;

/**
 * A pool for the URL; a connection lost while idle or checked out never crashes the process.
 * @internal (not in the declarations: they would need the `pg` types, which users do not install)
 */
export async function openPool(url: string, options: PostgresStoreOptions): Promise<pg.Pool> {
  const [{ default: pgDriver }, { parseIntoClientConfig }] = await (driver ??= Promise.all([import('pg'), import('pg-connection-string')]));
  // The URL is parsed here, with the driver's own parser, rather than passed as `connectionString`:
  // the driver parses a connection string again in every client and lets what it finds win over
  // the other options, and a URL without a password parses to the empty password, so a `password`
  // option (the caller's, or the CLI's ~/.pgpass reader) was silently ignored. The URL never holds
  // a password (openStore refuses one), so an empty one is dropped and the option, PGPASSWORD or
  // the driver's ~/.pgpass lookup decide.
  const fromUrl = parseIntoClientConfig(url);
  if (!fromUrl.password) delete fromUrl.password;
  const p = new pgDriver.Pool({
    ...fromUrl,
    max: options.max ?? 10,
    ...(options.connectTimeoutMs ? { connectionTimeoutMillis: options.connectTimeoutMs } : {}),
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
