/**
 * `ca migrate` on a database that CA processes are using (docs/operations.md says to run it once
 * every process is upgraded, not that the CA must stop). An issuance that read `certificates`
 * and then writes it, while migrations 9 and 10 run, must not deadlock with them: a migration
 * that builds an index (SHARE) and then drops one (ACCESS EXCLUSIVE) in the same transaction
 * waits for the issuance's read lock while the issuance waits for its SHARE (the deadlock the
 * review of #24's migration 9 reproduced, which aborted the issuance).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/ca/store/postgres-migrations.js';
import { migrate } from '../../src/ca/store/postgres-store.js';
import { RENEWAL_SQL } from '../../src/ca/store/postgres-transaction.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

const insertCertificate = (serial: string) =>
  `INSERT INTO certificates (serial, der, record, type, principal, not_after) VALUES ('${serial}', '\\x00'::bytea, json_build_object('op', 'issue', 'serial', '${serial}'), 'client', 'spiffe://acme.test/user/u', '2099-01-01')`;

test('migrating a version-8 database to the current schema while an issuance holds a read of certificates and then inserts: both finish, no deadlock', async () => {
  const url = await server.newDatabase();
  const admin = new pg.Client({ connectionString: url });
  const issuance = new pg.Client({ connectionString: url });
  await admin.connect();
  await issuance.connect();
  try {
    // a database as version 8 left it, as `migrate` would have built it then
    await admin.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    for (let n = 1; n <= 8; n++) {
      await admin.query(MIGRATIONS[n - 1] as string);
      await admin.query('INSERT INTO schema_migrations (version) VALUES ($1)', [n]);
    }
    for (let i = 0; i < 50; i++) await admin.query(insertCertificate(`a${i}`));
    // bounded: a lock wait that lasts is a failure here, not a hang
    await issuance.query("SET statement_timeout = '20s'");

    // the issuance: BEGIN, a read of certificates (the renewal check; serialExists is another), ...
    await issuance.query('BEGIN');
    await issuance.query(RENEWAL_SQL, ['a1']);
    // ... the migration starts meanwhile and comes to wait for that read's lock ...
    const migrating = migrate(url).then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    const deadline = Date.now() + 15_000;
    for (;;) {
      const w = await admin.query("SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'certificates' AND NOT l.granted");
      if (w.rowCount) break;
      const done = await Promise.race([migrating.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 20))]);
      if (done) break; // finished without waiting for the issuance at all: nothing to deadlock with
      assert.ok(Date.now() < deadline, 'the migration neither finished nor came to wait for the issuance in 15 s');
    }
    // ... and the issuance then writes and commits
    const wrote = await issuance.query(insertCertificate('b1')).then(
      () => undefined,
      (e: Error) => e,
    );
    await issuance.query(wrote ? 'ROLLBACK' : 'COMMIT');
    const m = await migrating;
    assert.equal(wrote, undefined, `the issuance failed: ${wrote?.message}`);
    assert.ok(m.ok, `the migration failed: ${m.ok ? '' : (m.e as Error).message}`);
    assert.deepEqual(m.r, { from: 8, to: SCHEMA_VERSION, applied: Array.from({ length: SCHEMA_VERSION - 8 }, (_, i) => i + 9) });
    assert.equal((await admin.query("SELECT 1 FROM certificates WHERE serial = 'b1'")).rowCount, 1, 'the issuance is recorded');
  } finally {
    await issuance.end().catch(() => undefined);
    await admin.end();
  }
});
