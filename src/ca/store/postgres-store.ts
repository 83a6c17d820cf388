/**
 * The PostgreSQL store: the CA's state in one database that several CA processes on
 * different hosts share. The CA folder keeps the keys and config.yaml; everything the
 * folder store keeps in index.jsonl, audit.log, issued/, crl/ and tokens.json lives here.
 *
 * Its parts: the URL checks (util/postgres-url.ts), the pool (postgres-pool.ts), the schema and
 * its migrations (postgres-schema.ts, postgres-migrations.ts), transactions and what makes
 * sharing safe (postgres-transaction.ts), export and import (postgres-transfer.ts), errors
 * (postgres-errors.ts). Index records (certificates and revocations) share one ordering
 * sequence, the audit log has its own; reads order by them.
 *
 * The schema is versioned (schema_migrations); `migrate` creates or upgrades it, and a store
 * refuses a schema older or newer than it knows (`mcp-mtls ca migrate`).
 */
import type pg from 'pg';
import { isMtlsError } from '../../errors.js';
import { storeError } from './postgres-errors.js';
import { lookupsOn } from './postgres-lookups.js';
import { openPool, type PostgresStoreOptions } from './postgres-pool.js';
import { readCrlWith, readIndexWith, storedToken, type TokenRow } from './postgres-rows.js';
import { checkSchema } from './postgres-schema.js';
import { runTransaction } from './postgres-transaction.js';
import { readSnapshot, writeSnapshot } from './postgres-transfer.js';
import { assertNoPassword, redactUrl } from '../../util/postgres-url.js';
import type { AuditEvent, CrlName, IndexRecord, Store, StoreLookups, StoreSnapshot, StoredToken, StoreTransaction } from './store.js';

export { SCHEMA_VERSION } from './postgres-migrations.js';
export { migrate } from './postgres-schema.js';
export { assertNoPassword, redactUrl } from '../../util/postgres-url.js';
export type { PostgresStoreOptions } from './postgres-pool.js';

/**
 * The CA's state in PostgreSQL, shared safely by several CA processes on different hosts
 * (unique serials by constraint, cRLNumbers from a sequence, atomic token use, revocation and
 * CRL signing under an advisory lock). The `pg` driver is loaded on first use. The schema must
 * be at this version: migrate it first (`mcp-mtls ca migrate`, or `migratePostgres` from `mcp-mtls/ca`).
 *
 * @param url - `postgres://user@host:port/database`, without a password (PGPASSWORD, ~/.pgpass
 *   or `options.password`)
 * @throws MtlsError `USAGE` for a URL with a password; on use `STORE_SCHEMA` (schema missing,
 *   older or newer), `STORE_UNAVAILABLE` (server unreachable, or the login refused), `CA_CONFIG_INVALID` (another CA's database)
 */
export class PostgresStore implements Store {
  readonly #url: string;
  #poolPromise: Promise<pg.Pool> | undefined;
  readonly #options: PostgresStoreOptions;
  #ready: Promise<void> | undefined;

  constructor(url: string, options: PostgresStoreOptions = {}) {
    assertNoPassword(url, 'store');
    this.#url = url;
    this.#options = options;
  }

  #pool(): Promise<pg.Pool> {
    return (this.#poolPromise ??= openPool(this.#url, this.#options));
  }

  get location(): string {
    return redactUrl(this.#url);
  }

  async close(): Promise<void> {
    const p = this.#poolPromise;
    this.#poolPromise = undefined;
    if (p) await (await p).end();
  }

  /** Checks the schema version (and which CA the database belongs to) once per store. */
  #check(): Promise<void> {
    this.#ready ??= checkSchema(this.#pool(), this.#url, this.#options.caFingerprint);
    this.#ready.catch(() => {
      this.#ready = undefined; // try again next time (the server may come back)
    });
    return this.#ready;
  }

  async #query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    await this.#check();
    try {
      return await (await this.#pool()).query<R>(sql, params);
    } catch (e) {
      throw storeError(this.#url, e);
    }
  }

  async transaction<T>(fn: (tx: StoreTransaction) => T | Promise<T>): Promise<T> {
    await this.#check();
    return runTransaction(await this.#pool(), this.#url, fn);
  }

  /**
   * The pool, after the schema check: for the console's decisions queries and their pruning
   * (src/console/decisions-postgres.ts), which share the store's connections. @internal
   */
  async decisionsPool(): Promise<pg.Pool> {
    await this.#check();
    return this.#pool();
  }

  async readIndex(): Promise<IndexRecord[]> {
    await this.#check();
    return readIndexWith(await this.#pool()).catch((e) => Promise.reject(storeError(this.#url, e)));
  }

  /** lookups on the pool, after the schema check; the database's errors become the store's */
  readonly #lookups: StoreLookups = (() => {
    const on = lookupsOn(async () => {
      await this.#check();
      return this.#pool();
    });
    const wrap =
      <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
      (...a: A): Promise<R> =>
        f(...a).catch((e) => Promise.reject(isMtlsError(e) ? e : storeError(this.#url, e)));
    return {
      lookup: wrap(on.lookup),
      successorOf: wrap(on.successorOf),
      delegatedFrom: wrap(on.delegatedFrom),
      exchangedWith: wrap(on.exchangedWith),
      activeRevocations: wrap(on.activeRevocations),
      listIssued: wrap(on.listIssued),
      principalRevocation: wrap(on.principalRevocation),
    };
  })();

  lookup: StoreLookups['lookup'] = (serial) => this.#lookups.lookup(serial);
  successorOf: StoreLookups['successorOf'] = (serial) => this.#lookups.successorOf(serial);
  delegatedFrom: StoreLookups['delegatedFrom'] = (serial) => this.#lookups.delegatedFrom(serial);
  exchangedWith: StoreLookups['exchangedWith'] = (serial) => this.#lookups.exchangedWith(serial);
  activeRevocations: StoreLookups['activeRevocations'] = (now) => this.#lookups.activeRevocations(now);
  listIssued: StoreLookups['listIssued'] = (q) => this.#lookups.listIssued(q);
  principalRevocation: StoreLookups['principalRevocation'] = (principal) => this.#lookups.principalRevocation(principal);

  async readIssued(serial: string): Promise<Buffer | undefined> {
    const r = await this.#query<{ der: Buffer }>('SELECT der FROM certificates WHERE serial = $1', [serial]);
    return r.rows[0]?.der;
  }

  async readAudit(): Promise<AuditEvent[]> {
    const r = await this.#query<{ event: AuditEvent }>('SELECT event FROM audit ORDER BY ord');
    return r.rows.map((x) => x.event);
  }

  async readCrl(which: CrlName): Promise<Buffer | undefined> {
    await this.#check();
    return readCrlWith(await this.#pool(), which).catch((e) => Promise.reject(storeError(this.#url, e)));
  }

  async readTokens(): Promise<readonly StoredToken[]> {
    const r = await this.#query<TokenRow>('SELECT token, used_at, used_for FROM tokens ORDER BY ord');
    return r.rows.map(storedToken);
  }

  /** For export: true when the database holds no CA state yet. */
  async isEmpty(): Promise<boolean> {
    const r = await this.#query<{ n: string }>('SELECT (SELECT count(*) FROM certificates) + (SELECT count(*) FROM revocations) + (SELECT count(*) FROM audit) + (SELECT count(*) FROM crls) + (SELECT count(*) FROM tokens) AS n');
    return r.rows[0]?.n === '0';
  }

  /** Everything the database holds, read in one consistent snapshot: for `ca import`. */
  async snapshot(): Promise<StoreSnapshot> {
    await this.#check();
    return readSnapshot(await this.#pool(), this.#url);
  }

  /**
   * For export (folder store -> database): writes everything in one transaction, in the
   * folder store's order, and sets the CRL sequences past the imported CRLs' numbers.
   * With `replace`, whatever the database held is removed first.
   */
  async importAll(data: StoreSnapshot, replace: boolean): Promise<void> {
    await this.transaction(async () => undefined); // schema check
    await writeSnapshot(await this.#pool(), this.#url, data, replace);
  }
}
