/**
 * `ca export` (folder -> PostgreSQL) and `ca import` (PostgreSQL -> folder) carry the once-only
 * records (`useOnce`: the hashes of ID tokens traded at /login/sign and /delegate, #22): a CA
 * moved between stores while a used ID token is still within its lifetime must refuse that
 * token again, in the store it moved to. A record past its expiry blocks nothing there either.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { migrate, PostgresStore } from '../../src/ca/store/postgres-store.js';
import { bareCopy, cliOk, tmpDir } from '../support/cli.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

test('a used ID token stays used across ca export and ca import (folder -> PostgreSQL -> folder)', async () => {
  const base = tmpDir();
  const pki = path.join(base, 'pki');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  const now = new Date();
  const live = new Date(now.getTime() + 10 * 60_000);
  const folder = new FsStore(pki);
  await folder.transaction(async (tx) => {
    assert.equal(await tx.useOnce('oidc:used-live', live, now), true);
    assert.equal(await tx.useOnce('oidc:used-expired', new Date(now.getTime() + 1000), now), true);
  });
  const later = new Date(now.getTime() + 2000); // past the second record's expiry, before the first's

  const url = await server.newDatabase();
  await migrate(url);
  const db = new PostgresStore(url);
  try {
    await db.importAll(await folder.snapshot(), false);
    await db.transaction(async (tx) => {
      assert.equal(await tx.useOnce('oidc:used-live', live, later), false, 'the exported CA accepted a token the folder CA had already used');
      assert.equal(await tx.useOnce('oidc:never-used', live, later), true);
    });
    await db.transaction(async (tx) => {
      assert.equal(await tx.useOnce('oidc:used-expired', live, later), true, 'an expired record blocks nothing');
    });
    // --replace keeps the database's own records (a record only ever refuses a replay)
    await db.importAll(await folder.snapshot(), true);
    await db.transaction(async (tx) => {
      assert.equal(await tx.useOnce('oidc:never-used', live, later), false, '--replace forgot a token used on the database');
      assert.equal(await tx.useOnce('oidc:used-live', live, later), false);
    });
    await db.transaction(async (tx) => {
      assert.equal(await tx.useOnce('oidc:used-in-db', live, later), true);
    });

    const copy = bareCopy(pki, path.join(base, 'copy'));
    await new FsStore(copy).restore(await db.snapshot(), false);
    const mode = fs.statSync(path.join(copy, 'used-once.json')).mode & 0o777;
    assert.equal(mode, 0o600);
    await new FsStore(copy).transaction(async (tx) => {
      assert.equal(await tx.useOnce('oidc:used-live', live, later), false, 'the imported CA accepted a token used before the export');
      assert.equal(await tx.useOnce('oidc:used-in-db', live, later), false, 'the imported CA accepted a token used while it ran on PostgreSQL');
      assert.equal(await tx.useOnce('oidc:fresh', live, later), true);
    });
  } finally {
    await db.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
});
