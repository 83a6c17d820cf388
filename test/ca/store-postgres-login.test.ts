/**
 * A database login refused (a role that does not exist: 28000; a wrong password: 28P01) is a
 * store error with a hint about the login, never `CA_KEY_LOCKED`: that code says the CA's key
 * is locked, so the operator looked for a passphrase while the database password was wrong
 * (issue 17), and `ca serve` answered "the CA key is not available".
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { migrate, PostgresStore } from '../../src/ca/store/postgres-store.js';
import { isMtlsError } from '../../src/errors.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

/** The same URL with another user. */
function asUser(url: string, user: string): string {
  const u = new URL(url);
  u.username = user;
  return u.toString();
}

/** A login failure as the store must report it. */
const loginRefused = (e: unknown): boolean =>
  isMtlsError(e, 'STORE_UNAVAILABLE') && /cannot use the store postgres:\/\/mcp_mtls_/.test(e.message) && /login/.test(e.message) && /PGPASSWORD/.test(e.hint ?? '') && /~\/\.pgpass/.test(e.hint ?? '');

test('postgres: a role that does not exist (28000) is STORE_UNAVAILABLE with a login hint, not CA_KEY_LOCKED', async () => {
  const url = asUser(await server.newDatabase(), 'mcp_mtls_nobody');
  await assert.rejects(migrate(url), loginRefused);
  const store = new PostgresStore(url);
  try {
    await assert.rejects(store.readIndex(), loginRefused);
    await assert.rejects(store.transaction(() => undefined), loginRefused);
  } finally {
    await store.close();
  }
});

test('postgres: a wrong password (28P01) is STORE_UNAVAILABLE with a login hint, not CA_KEY_LOCKED', async (t) => {
  if (process.env.MCP_MTLS_TEST_PG) {
    // the login rule below is written into the private cluster's pg_hba.conf; a shared server's is not ours to change
    t.diagnostic('MCP_MTLS_TEST_PG is set: the wrong-password case needs the private test cluster (its pg_hba.conf); only the unknown-role test ran');
    return;
  }
  const url = await server.newDatabase();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query("CREATE ROLE mcp_mtls_pw LOGIN PASSWORD 'right-password'");
    await admin.query('GRANT USAGE, CREATE ON SCHEMA public TO mcp_mtls_pw'); // it migrates the schema below
    // the harness trusts every login; this role alone must give a password (written as the server's user, then reloaded)
    const hba = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
    const rules = ['local all all trust', 'host all mcp_mtls_pw 127.0.0.1/32 scram-sha-256', 'host all all 127.0.0.1/32 trust', 'host all all ::1/128 trust'];
    await admin.query(`COPY (SELECT unnest($$\{${rules.map((r) => `"${r}"`).join(',')}\}$$::text[])) TO '${hba.replace(/'/g, "''")}'`);
    await admin.query('SELECT pg_reload_conf()');
  } finally {
    await admin.end();
  }
  const url2 = asUser(url, 'mcp_mtls_pw');
  // the server reloads its configuration asynchronously: wait until the rule is in force
  for (let i = 0; ; i++) {
    const probe = new pg.Client({ connectionString: url2 }); // no password: refused once the rule is in force
    const refused = await probe.connect().then(() => false, () => true);
    await probe.end().catch(() => undefined);
    if (refused) break;
    if (i === 50) assert.fail('pg_hba.conf reload did not take effect');
    await new Promise((r) => setTimeout(r, 100));
  }
  // PGPASSWORD, as an operator sets it (the driver reads it; a URL never holds a password)
  const saved = process.env.PGPASSWORD;
  process.env.PGPASSWORD = 'wrong-password';
  const store = new PostgresStore(url2);
  try {
    await assert.rejects(store.readIndex(), loginRefused);
    await assert.rejects(migrate(url2), loginRefused);
  } finally {
    await store.close();
    if (saved === undefined) delete process.env.PGPASSWORD;
    else process.env.PGPASSWORD = saved;
  }
  // the rule is in force: the right password, given as the store's `password` option (as the
  // CLI passes what it read from ~/.pgpass, and as an API user would), logs in: the failure above
  // was the password's. Before the fix the URL's empty password won over the option (28P01).
  const rightPassword = { password: async () => 'right-password' };
  await migrate(url2, rightPassword);
  const right = new PostgresStore(url2, rightPassword);
  try {
    await right.readIndex();
  } finally {
    await right.close();
  }
  const wrong = new PostgresStore(url2, { password: async () => 'wrong-password' });
  try {
    await assert.rejects(wrong.readIndex(), loginRefused);
  } finally {
    await wrong.close();
  }
});
