/**
 * The PostgreSQL store: the CA's state in one database that several CA processes on
 * different hosts share. The CA folder keeps the keys and config.yaml; everything the
 * folder store keeps in index.jsonl, audit.log, issued/, crl/ and tokens.json lives here.
 *
 * What makes sharing safe:
 * - serials: `certificates.serial` is the primary key. A commit that hits a serial another
 *   process committed meanwhile fails as a whole with SERIAL_TAKEN (never overwrites); the
 *   authority signs again with new serials. Issuance takes no global lock.
 * - revocations and CRLs: `nextCrlNumber` and `commitRevocation` take a transaction-scoped
 *   advisory lock first, so CRL signing and revocation are serialised across processes, and
 *   a CRL signed after the lock sees every revocation committed before it. cRLNumbers come
 *   from one SEQUENCE per CA (never reused, even by a rolled back transaction).
 * - tokens: consumed with one `UPDATE ... WHERE used_at IS NULL AND expires_at > now
 *   RETURNING`: of concurrent consumers exactly one wins.
 * - order: index records (certificates and revocations) share one ordering sequence, the
 *   audit log has its own; reads order by them.
 *
 * The schema is versioned (schema_migrations); `migrate` creates or upgrades it, and a store
 * refuses a schema older or newer than it knows (`mcp-mtls ca migrate`).
 */
import type pg from 'pg';
import { MtlsError } from '../../errors.js';
import { parseCrl } from '../../x509/crl.js';
import type { AuditEvent, CrlName, EnrollmentToken, IndexRecord, IssuedRecord, RevokedRecord, Store, StoreSnapshot, StoredToken, StoreTransaction, TokenConsumeResult } from './store.js';

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION = 2;

/** Migration N takes the schema from version N-1 to N; each runs once, in a transaction. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE SEQUENCE index_order;
  CREATE TABLE certificates (
    serial text PRIMARY KEY,
    ord bigint NOT NULL UNIQUE DEFAULT nextval('index_order'),
    der bytea NOT NULL,
    record json NOT NULL,
    type text NOT NULL,
    principal text,
    not_after timestamptz NOT NULL
  );
  CREATE TABLE revocations (
    serial text PRIMARY KEY,
    ord bigint NOT NULL UNIQUE DEFAULT nextval('index_order'),
    record json NOT NULL,
    reason text NOT NULL,
    revoked_at timestamptz NOT NULL
  );
  CREATE TABLE audit (
    ord bigserial PRIMARY KEY,
    event json NOT NULL
  );
  CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
  CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TABLE crls (
    name text PRIMARY KEY CHECK (name IN ('root', 'intermediate')),
    number numeric NOT NULL,
    der bytea NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE SEQUENCE crl_number_root;
  CREATE SEQUENCE crl_number_intermediate;
  CREATE TABLE tokens (
    id text PRIMARY KEY,
    hash text NOT NULL UNIQUE,
    ord bigserial NOT NULL UNIQUE,
    token json NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
  );
  CREATE TABLE ca_meta (
    key text PRIMARY KEY,
    value text NOT NULL
  );
  `,
  // 2: which certificate a token enrolled (a client whose answer was lost can fetch it again), and
  // which certificate renewed which (a certificate renews once)
  `
  ALTER TABLE tokens ADD COLUMN used_for text;
  CREATE INDEX certificates_renewed_from ON certificates ((record->>'renewedFrom'));
  `,
];

if (MIGRATIONS.length !== SCHEMA_VERSION) throw new Error('internal error: SCHEMA_VERSION and MIGRATIONS disagree');

interface TokenRow {
  token: EnrollmentToken;
  used_at: Date | null;
  used_for: string | null;
}

const storedToken = (x: TokenRow): StoredToken => ({ ...x.token, ...(x.used_at ? { usedAt: x.used_at.toISOString() } : {}), ...(x.used_for ? { usedFor: x.used_for } : {}) });

/** Advisory lock keys (per database): one database holds one CA. */
const LOCK_CRL = 0x6d63706d746c01n;
const LOCK_MIGRATE = 0x6d63706d746c02n;
/** the first key of the two-key advisory lock per renewed serial (32 bits, unlike the others) */
const LOCK_RENEWAL = 0x6d63706d;

/** Options of {@link PostgresStore} and of the migration (`migratePostgres`). */
export interface PostgresStoreOptions {
  /** the password, when not in PGPASSWORD (the CLI reads ~/.pgpass); never in the URL */
  readonly password?: () => Promise<string | undefined>;
  /** the CA this database belongs to (the root certificate's SHA-256): recorded on first use, checked after */
  readonly caFingerprint?: string;
  /** pool size (default 10) */
  readonly max?: number;
}

/** A connection URL without password, for messages (`postgres://user@host:port/db`). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** Refuses a URL that carries a password: it would sit in argv, process lists and config files. */
export function assertNoPassword(url: string, where: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MtlsError('USAGE', `${where}: "${redactUrl(url)}" is not a PostgreSQL URL`, { hint: 'e.g. postgres://ca@db.internal:5432/mcp_ca' });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new MtlsError('USAGE', `${where}: "${u.protocol}" is not a store URL`, { hint: 'use postgres://USER@HOST:PORT/DATABASE, or "folder" (the default) for the CA folder' });
  }
  if (u.password) {
    throw new MtlsError('USAGE', `${where}: the store URL holds a password; secrets never go on the command line or into config files`, {
      hint: 'remove it from the URL and set PGPASSWORD, or put it in ~/.pgpass (mode 0600)',
    });
  }
}

let driver: Promise<typeof import('pg')> | undefined;

/** The driver is loaded on first use: commands on a folder store never pay for it. */
async function pool(url: string, options: PostgresStoreOptions): Promise<pg.Pool> {
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

function unavailable(url: string, e: unknown): MtlsError {
  if (e instanceof MtlsError) return e;
  const err = e as { code?: string; message?: string };
  const auth = err.code === '28P01' || err.code === '28000';
  return new MtlsError(auth ? 'CA_KEY_LOCKED' : 'STORE_UNAVAILABLE', `cannot use the store ${redactUrl(url)}: ${err.message ?? String(e)}`, {
    cause: e,
    hint: auth ? 'check the user and PGPASSWORD or ~/.pgpass' : 'check that PostgreSQL runs and the URL (host, port, database) is right',
  });
}

/** Creates or upgrades the schema to SCHEMA_VERSION; returns the versions before and after. */
export async function migrate(url: string, options: PostgresStoreOptions = {}): Promise<{ from: number; to: number; applied: number[] }> {
  const p = await pool(url, { ...options, max: 1 });
  try {
    const c = await p.connect().catch((e) => Promise.reject(unavailable(url, e)));
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
    throw unavailable(url, e);
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

/** An error of the database or the connection to it (not one of the caller's own). */
function isDriverError(e: unknown): boolean {
  if (e instanceof MtlsError || !(e instanceof Error)) return false;
  const x = e as { severity?: unknown; code?: unknown };
  return x.severity !== undefined || (typeof x.code === 'string' && /^E[A-Z]+$/.test(x.code)) || /Connection terminated|timeout exceeded when trying to connect/i.test(e.message);
}

const isUniqueViolation = (e: unknown, constraint?: string) =>
  (e as { code?: string }).code === '23505' && (constraint === undefined || (e as { constraint?: string }).constraint === constraint);

/**
 * The CA's state in PostgreSQL, shared safely by several CA processes on different hosts
 * (unique serials by constraint, cRLNumbers from a sequence, atomic token use, revocation and
 * CRL signing under an advisory lock). The `pg` driver is loaded on first use. The schema must
 * be at this version: migrate it first (`mcp-mtls ca migrate`, or `migratePostgres` from `mcp-mtls/ca`).
 *
 * @param url - `postgres://user@host:port/database`, without a password (PGPASSWORD, ~/.pgpass
 *   or `options.password`)
 * @throws MtlsError `USAGE` for a URL with a password; on use `STORE_SCHEMA` (schema missing,
 *   older or newer), `STORE_UNAVAILABLE` (server unreachable), `CA_CONFIG_INVALID` (another CA's database)
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
    return (this.#poolPromise ??= pool(this.#url, this.#options));
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
    this.#ready ??= (async () => {
      let version: number | undefined;
      try {
        const r = await (await this.#pool()).query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
        version = r.rows[0]?.v ?? 0;
      } catch (e) {
        if ((e as { code?: string }).code !== '42P01') throw unavailable(this.#url, e);
        version = undefined; // no schema_migrations table
      }
      if (version === undefined || version < SCHEMA_VERSION) {
        throw new MtlsError('STORE_SCHEMA', version === undefined ? `the store ${this.location} has no mcp-mtls schema` : `the store ${this.location} has schema version ${version}, older than this mcp-mtls needs (${SCHEMA_VERSION})`, {
          hint: `run \`mcp-mtls ca migrate --store ${this.location}\``,
        });
      }
      if (version > SCHEMA_VERSION) throw newerSchema(this.#url, version);
      const fp = this.#options.caFingerprint;
      if (fp) {
        await (await this.#pool()).query("INSERT INTO ca_meta (key, value) VALUES ('root_fingerprint', $1) ON CONFLICT (key) DO NOTHING", [fp]);
        const r = await (await this.#pool()).query<{ value: string }>("SELECT value FROM ca_meta WHERE key = 'root_fingerprint'");
        if (r.rows[0]?.value !== fp) {
          throw new MtlsError('CA_CONFIG_INVALID', `the store ${this.location} belongs to another CA (root ${r.rows[0]?.value.slice(0, 16)}..., this CA's is ${fp.slice(0, 16)}...)`, {
            hint: 'point this CA at its own database; one database holds one CA',
          });
        }
      }
    })();
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
      throw unavailable(this.#url, e);
    }
  }

  async transaction<T>(fn: (tx: StoreTransaction) => T | Promise<T>): Promise<T> {
    await this.#check();
    let c: pg.PoolClient;
    try {
      c = await (await this.#pool()).connect();
    } catch (e) {
      throw unavailable(this.#url, e);
    }
    let broken = false;
    const lost = () => (broken = true); // the server went away under this transaction (see pool())
    c.on('error', lost);
    const state = { failed: undefined as unknown };
    try {
      await c.query('BEGIN');
      const result = await fn(this.#tx(c, state));
      // PostgreSQL answers COMMIT of an aborted transaction with a silent ROLLBACK: a statement
      // that failed inside (even one the caller caught) fails the transaction here
      if (state.failed !== undefined) throw state.failed;
      await c.query('COMMIT');
      return result;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw broken || isDriverError(e) ? unavailable(this.#url, e) : e; // the caller's own errors pass unchanged
    } finally {
      c.off('error', lost);
      c.release(broken);
    }
  }

  #tx(client: pg.PoolClient, state: { failed: unknown } = { failed: undefined }): StoreTransaction {
    const c = {
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
    return {
      serialExists: async (serial) => (await c.query('SELECT 1 FROM certificates WHERE serial = $1', [serial])).rowCount !== 0,
      commitIssued: async (items, audit) => {
        if (items.length === 0) return insertAudit(audit);
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
        const r = await c.query<{ revoked: boolean; successor: string | null }>(
          "SELECT EXISTS (SELECT 1 FROM revocations WHERE serial = $1) AS revoked, (SELECT serial FROM certificates WHERE record->>'renewedFrom' = $1 ORDER BY ord LIMIT 1) AS successor",
          [serial],
        );
        const row = r.rows[0];
        return { revoked: row?.revoked === true, ...(row?.successor ? { successor: row.successor } : {}) };
      },
      readCrl: async (which) => readCrlWith(c, which),
      putToken: async (token) => {
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
      nextCrlNumber: async (which) => {
        await lockCrl();
        const r = await c.query<{ n: string }>(`SELECT nextval('crl_number_${which === 'root' ? 'root' : 'intermediate'}')::text AS n`);
        return BigInt(r.rows[0]?.n as string);
      },
    };
  }

  async readIndex(): Promise<IndexRecord[]> {
    await this.#check();
    return readIndexWith(await this.#pool()).catch((e) => Promise.reject(unavailable(this.#url, e)));
  }

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
    return readCrlWith(await this.#pool(), which).catch((e) => Promise.reject(unavailable(this.#url, e)));
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
    const c = await (await this.#pool()).connect().catch((e) => Promise.reject(unavailable(this.#url, e)));
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const index = await readIndexWith(c);
      const issued = (await c.query<{ serial: string; der: Buffer }>('SELECT serial, der FROM certificates ORDER BY ord')).rows;
      const audit = (await c.query<{ event: AuditEvent }>('SELECT event FROM audit ORDER BY ord')).rows.map((x) => x.event);
      const [root, intermediate] = [await readCrlWith(c, 'root'), await readCrlWith(c, 'intermediate')];
      const tokens = (await c.query<TokenRow>('SELECT token, used_at, used_for FROM tokens ORDER BY ord')).rows.map(storedToken);
      await c.query('COMMIT');
      return { index, issued, audit, crls: { ...(root ? { root } : {}), ...(intermediate ? { intermediate } : {}) }, tokens };
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw unavailable(this.#url, e);
    } finally {
      c.release();
    }
  }

  /**
   * For export (folder store -> database): writes everything in one transaction, in the
   * folder store's order, and sets the CRL sequences past the imported CRLs' numbers.
   * With `replace`, whatever the database held is removed first.
   */
  async importAll(data: StoreSnapshot, replace: boolean): Promise<void> {
    await this.transaction(async () => undefined); // schema check
    const c = await (await this.#pool()).connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_CRL.toString()]);
      // TRUNCATE fires no row trigger: the append-only rule guards single rows, --replace is explicit
      if (replace) await c.query('TRUNCATE certificates, revocations, audit, crls, tokens');
      const tx = this.#tx(c);
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
      for (const t of data.tokens) {
        const { usedAt, usedFor, ...token } = t;
        await c.query('INSERT INTO tokens (id, hash, token, expires_at, used_at, used_for) VALUES ($1, $2, $3, $4, $5, $6)', [token.id, token.hash, JSON.stringify(token), token.expiresAt, usedAt ?? null, usedFor ?? null]);
      }
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e instanceof MtlsError ? e : unavailable(this.#url, e);
    } finally {
      c.release();
    }
  }
}

interface Queryable {
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

async function readIndexWith(q: Queryable): Promise<IndexRecord[]> {
  const r = await q.query<{ record: IndexRecord }>('SELECT record, ord FROM certificates UNION ALL SELECT record, ord FROM revocations ORDER BY ord');
  return r.rows.map((x) => x.record);
}

async function readCrlWith(q: Queryable, which: CrlName): Promise<Buffer | undefined> {
  const r = await q.query<{ der: Buffer }>('SELECT der FROM crls WHERE name = $1', [which]);
  return r.rows[0]?.der;
}
