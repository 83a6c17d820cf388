/**
 * One Store contract (test/support/store-contract.ts) against every store: the folder store, the
 * memory store and the PostgreSQL store (a private throwaway cluster, test/support/postgres.ts,
 * or MCP_MTLS_TEST_PG). Plus what only the PostgreSQL store has: schema versions, URLs, a
 * backend lost in the middle of a transaction.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { MemoryStore } from '../../src/ca/store/memory-store.js';
import { migrate, PostgresStore, SCHEMA_VERSION } from '../../src/ca/store/postgres-store.js';
import type { Store, StoreTransaction } from '../../src/ca/store/store.js';
import { isMtlsError, MtlsError } from '../../src/errors.js';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { tmpDir } from '../support/cli.js';
import { storeContract } from '../support/store-contract.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

storeContract({ name: 'folder', open: async (dir) => new FsStore(dir), second: async (_s, dir) => new FsStore(dir) });
storeContract({ name: 'memory', open: async () => new MemoryStore() });
const urls = new WeakMap<object, string>();
storeContract({
  name: 'postgres',
  rollsBack: true,
  open: async () => {
    const url = await server.newDatabase();
    await migrate(url);
    const s = new PostgresStore(url);
    urls.set(s, url);
    return s;
  },
  second: async (s) => new PostgresStore(urls.get(s) as string),
});

test('postgres: a store refuses a database without the schema, an older and a newer one, with a hint', async () => {
  const url = await server.newDatabase();
  const store = new PostgresStore(url);
  try {
    await assert.rejects(store.readIndex(), (e) => isMtlsError(e, 'STORE_SCHEMA') && /no mcp-mtls schema/.test(e.message) && /mcp-mtls ca migrate --store/.test(e.hint ?? ''));
    await assert.rejects(store.transaction(() => undefined), (e) => isMtlsError(e, 'STORE_SCHEMA'));
    const m = await migrate(url);
    assert.deepEqual(m, { from: 0, to: SCHEMA_VERSION, applied: Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1) });
    assert.deepEqual(await migrate(url), { from: SCHEMA_VERSION, to: SCHEMA_VERSION, applied: [] }, 'a migration is applied once');
    assert.deepEqual(await store.readIndex(), []);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [SCHEMA_VERSION + 1]);
    const newer = new PostgresStore(url);
    await assert.rejects(newer.readAudit(), (e) => isMtlsError(e, 'STORE_SCHEMA') && /newer than this mcp-mtls knows/.test(e.message));
    await assert.rejects(migrate(url), (e) => isMtlsError(e, 'STORE_SCHEMA'));
    await newer.close();
    await c.query('DELETE FROM schema_migrations');
    await c.query('INSERT INTO schema_migrations (version) VALUES (0)');
    await c.end();
    const older = new PostgresStore(url);
    await assert.rejects(older.readAudit(), (e) => isMtlsError(e, 'STORE_SCHEMA') && /older than this mcp-mtls needs/.test(e.message));
    await older.close();
  } finally {
    await store.close();
  }
});

test('postgres: a URL with a password is refused; a database of another CA is refused; the audit log is append-only', async () => {
  assert.throws(() => new PostgresStore('postgres://ca:s3cret@127.0.0.1/db'), (e) => isMtlsError(e, 'USAGE') && !e.message.includes('s3cret') && /PGPASSWORD/.test(e.hint ?? ''));
  assert.throws(() => new PostgresStore('mysql://127.0.0.1/db'), (e) => isMtlsError(e, 'USAGE'));
  const url = await server.newDatabase();
  await migrate(url);
  const mine = new PostgresStore(url, { caFingerprint: 'a'.repeat(64) });
  await mine.transaction((tx) => tx.appendAudit([{ time: new Date().toISOString(), event: 'x', actor: 't' }]));
  const theirs = new PostgresStore(url, { caFingerprint: 'b'.repeat(64) });
  await assert.rejects(theirs.readIndex(), (e) => isMtlsError(e, 'CA_CONFIG_INVALID') && /another CA/.test(e.message));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await assert.rejects(c.query('DELETE FROM audit'), /append-only/);
  await c.end();
  await Promise.all([mine.close(), theirs.close()]);
});

test('postgres: an unreachable server is a clear STORE_UNAVAILABLE error', async () => {
  const store = new PostgresStore('postgres://nobody@127.0.0.1:1/none');
  await assert.rejects(store.readIndex(), (e) => isMtlsError(e, 'STORE_UNAVAILABLE') && /cannot use the store postgres:\/\/nobody@127\.0\.0\.1:1\/none/.test(e.message));
  await store.close();
});

test('the authority signs again with new serials when the store reports SERIAL_TAKEN (another process won the serial)', async () => {
  const dir = tmpDir('mcp-mtls-retry-');
  initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * 365 * 86400_000, intermediateTtlMs: 5 * 365 * 86400_000 });
  const inner = new MemoryStore();
  let refusals = 2;
  const tried: string[] = [];
  const racing: Store = Object.assign(Object.create(inner) as Store, {
    location: 'racing',
    transaction: <T>(fn: (tx: StoreTransaction) => T | Promise<T>) =>
      inner.transaction((tx) =>
        fn({
          ...tx,
          commitIssued: async (items, audit) => {
            tried.push(items[0]!.record.serial);
            if (refusals-- > 0) throw new MtlsError('SERIAL_TAKEN', 'taken by another process');
            return tx.commitIssued(items, audit);
          },
        }),
      ),
    readIndex: () => inner.readIndex(),
  });
  const ca = Authority.open(dir, { store: racing });
  const issued = await ca.issueClient({ kind: 'user', id: 'alice', teams: [], roles: [] });
  assert.equal(tried.length, 3);
  assert.equal(new Set(tried).size, 3, 'a new serial each time');
  assert.equal(issued.record.serial, tried[2]);
  assert.deepEqual((await inner.readIndex()).map((r) => r.serial), [tried[2]]);
  refusals = 99;
  await assert.rejects(ca.issueClient({ kind: 'user', id: 'bob', teams: [], roles: [] }), (e) => isMtlsError(e, 'SERIAL_TAKEN'));
});

test('PostgreSQL: a backend terminated in the middle of a transaction fails that transaction, not the process', async () => {
  const db = await startPostgres();
  const admin = new pg.Client({ connectionString: db.url });
  try {
    await migrate(db.url);
    const store = new PostgresStore(db.url);
    await store.readTokens();
    await admin.connect();
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.readCrl('intermediate');
        await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()');
        await new Promise((r) => setTimeout(r, 300)); // the 'error' event arrives while the client is checked out
        await tx.readCrl('intermediate');
      }),
      (e) => isMtlsError(e, 'STORE_UNAVAILABLE'),
    );
    assert.deepEqual(await store.readIndex(), [], 'the store works again with a new connection');
    await store.close();
  } finally {
    await admin.end().catch(() => undefined);
    await db.stop();
  }
});
