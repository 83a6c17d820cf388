/**
 * The PostgreSQL store from the command line: `ca migrate`, `ca export` and `ca import`
 * (a lossless round trip), CA commands against the database (--store, MCP_MTLS_STORE,
 * config.yaml `store:`), and the refusals: a password in the URL, an unmigrated database,
 * a non-empty export target. Plus the ~/.pgpass reader.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { SCHEMA_VERSION } from '../../src/ca/store/postgres-migrations.js';
import { databasePassword } from '../../src/cli/io.js';
import { bareCopy, cli, cliOk, tmpDir } from '../support/cli.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

/** The folder's state: its files, and its tokens as the store reads them (a use is a file of its own, tokens-used/, until an import writes it into tokens.json) */
async function stateFiles(pki: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of ['index.jsonl', 'audit.log', 'crl/root.crl', 'crl/intermediate.crl']) out[f] = fs.readFileSync(path.join(pki, f), 'utf8');
  out.tokens = JSON.stringify(await new FsStore(pki).readTokens(), null, 1);
  for (const f of fs.readdirSync(path.join(pki, 'issued')).sort()) out[`issued/${f}`] = fs.readFileSync(path.join(pki, 'issued', f), 'utf8');
  return out;
}

test('export to PostgreSQL then import back: index, audit, issued, CRLs and tokens are identical', async () => {
  const base = tmpDir();
  const pki = path.join(base, 'pki');
  const out = path.join(base, 'out');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  fs.writeFileSync(path.join(base, 'batch.csv'), 'type,id,teams\nuser,alice,sre\nuser,bob,dev;sre\nservice,ci,\n');
  await cliOk(['issue', 'client', '--dir', pki, '--batch', path.join(base, 'batch.csv'), '--out', out]);
  const server1 = await cliOk<{ serial: string }>(['issue', 'server', '--dir', pki, '--dns', 'mcp.acme.test', '--out', out, '--json']);
  await cliOk(['revoke', server1.serial, '--dir', pki, '--reason', 'superseded']);
  await cliOk(['crl', '--dir', pki]);
  const now = Date.now();
  await new FsStore(pki).transaction(async (tx) => {
    for (const i of [1, 2]) {
      await tx.putToken({ id: crypto.randomBytes(8).toString('hex'), hash: crypto.randomBytes(32).toString('hex'), claims: { id: `t${i}`, kind: 'user', teams: [], roles: [] }, createdAt: new Date(now).toISOString(), expiresAt: new Date(now + 3600_000).toISOString(), createdBy: 'test' });
    }
    const [first] = await new FsStore(pki).readTokens();
    await tx.consumeToken(first!.hash, new Date(now + 1000));
  });
  const before = await stateFiles(pki);

  const url = await server.newDatabase();
  const exported = await cliOk<{ certificates: number; revocations: number; tokens: number; crls: Record<string, string>; schemaVersion: number }>(['ca', 'export', '--dir', pki, '--to', url, '--json']);
  assert.deepEqual([exported.certificates, exported.revocations, exported.tokens, exported.schemaVersion], [4, 1, 2, SCHEMA_VERSION]);
  assert.deepEqual(exported.crls, { root: '2', intermediate: '3' });
  const again = await cli(['ca', 'export', '--dir', pki, '--to', url]);
  assert.equal(again.code, 73, again.stderr);
  assert.match(again.stderr, /already holds a CA state[\s\S]*hint: .*--replace/);
  await cliOk(['ca', 'export', '--dir', pki, '--to', url, '--replace']);

  const copy = bareCopy(pki, path.join(base, 'copy'));
  const imported = await cliOk<{ certificates: number }>(['ca', 'import', '--from', url, '--dir', copy, '--json']);
  assert.equal(imported.certificates, 4);
  assert.deepEqual(await stateFiles(copy), before, 'the round trip is lossless, byte for byte');
  assert.equal(fs.statSync(path.join(copy, 'tokens.json')).mode & 0o777, 0o600);
  const refused = await cli(['ca', 'import', '--from', url, '--dir', copy]);
  assert.equal(refused.code, 73);
  assert.match(refused.stderr, /already holds certificates or tokens/);

  // the database store serves the CA commands: the next CRL number continues past the imported ones
  const listed = await cliOk<{ certificates: { serial: string; status: string }[] }>(['list', '--dir', pki, '--store', url, '--json']);
  assert.equal(listed.certificates.length, 4);
  assert.equal(listed.certificates.find((c) => c.serial === server1.serial)?.status, 'revoked');
  const crl = await cliOk<{ intermediate: { number: string; store: string } }>(['crl', '--dir', pki, '--json'], { env: { MCP_MTLS_STORE: url } });
  assert.equal(crl.intermediate.number, '4');
  assert.equal(crl.intermediate.store, url);
  // config.yaml `store:` moves the whole CA to the database
  fs.appendFileSync(path.join(pki, 'config.yaml'), `store: ${url}\n`);
  const dave = await cliOk<{ serial: string }>(['issue', 'client', '--dir', pki, '--user', 'dave', '--out', out, '--json']);
  const status = await cliOk<{ certificates: { valid: number; revoked: number } }>(['ca', 'status', '--dir', pki, '--json']);
  assert.deepEqual(status.certificates, { valid: 4, expired: 0, revoked: 1 });
  assert.equal(fs.existsSync(path.join(pki, 'issued', `${dave.serial}.crt`)), false, 'the folder store was not written');
  const inFolder = await cliOk<{ certificates: { serial: string }[] }>(['list', '--dir', pki, '--store', 'folder', '--json']);
  assert.equal(inFolder.certificates.length, 4, '--store folder overrides config.yaml');
  assert.ok(!inFolder.certificates.some((c) => c.serial === dave.serial));
  const inspected = await cli(['inspect', dave.serial, '--dir', pki, '--json']);
  assert.equal(JSON.parse(inspected.stdout).serial, dave.serial, inspected.stderr);
  fs.rmSync(base, { recursive: true, force: true });
});

test('refusals: a password in the URL, an unmigrated database (hint: ca migrate), a bad URL; migrate --json', async () => {
  const base = tmpDir();
  const pki = path.join(base, 'pki');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  const secret = await cli(['list', '--dir', pki, '--store', 'postgres://ca:hunter2@127.0.0.1/x']);
  assert.equal(secret.code, 64);
  assert.doesNotMatch(secret.stderr, /hunter2/);
  assert.match(secret.stderr, /error: --store: the store URL holds a password[\s\S]*hint: .*PGPASSWORD.*\.pgpass/);
  const envSecret = await cli(['ca', 'status', '--dir', pki, '--json'], { env: { MCP_MTLS_STORE: 'postgres://ca:hunter2@127.0.0.1/x' } });
  assert.equal(envSecret.code, 64);
  assert.equal(JSON.parse(envSecret.stderr).error.code, 'USAGE');
  assert.doesNotMatch(envSecret.stderr, /hunter2/);
  const exportSecret = await cli(['ca', 'export', '--dir', pki, '--to', 'postgresql://ca:hunter2@db/x']);
  assert.equal(exportSecret.code, 64);
  assert.doesNotMatch(exportSecret.stderr, /hunter2/);

  const url = await server.newDatabase();
  const unmigrated = await cli(['list', '--dir', pki, '--store', url]);
  assert.equal(unmigrated.code, 78, unmigrated.stderr);
  assert.match(unmigrated.stderr, /has no mcp-mtls schema\nhint: run `mcp-mtls ca migrate --store postgres:/);
  const m = await cliOk<{ version: number; applied: number[] }>(['ca', 'migrate', '--store', url, '--json']);
  assert.deepEqual([m.version, m.applied], [SCHEMA_VERSION, Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1)]);
  assert.match(await cliOk<string>(['ca', 'migrate'], { env: { MCP_MTLS_STORE: url } }), new RegExp(`is at version ${SCHEMA_VERSION} \\(current\\)`));
  assert.equal((await cliOk<{ certificates: unknown[] }>(['list', '--dir', pki, '--store', url, '--json'])).certificates.length, 0);
  const bad = await cli(['list', '--dir', pki, '--store', 'mysql://db/x']);
  assert.equal(bad.code, 64);
  const noUrl = await cli(['ca', 'migrate']);
  assert.equal(noUrl.code, 64);
  assert.match(noUrl.stderr, /hint: pass --store or set MCP_MTLS_STORE/);
  const down = await cli(['list', '--dir', pki, '--store', 'postgres://nobody@127.0.0.1:1/none']);
  assert.equal(down.code, 74);
  assert.match(down.stderr, /cannot use the store postgres:\/\/nobody@127\.0\.0\.1:1\/none/);
  fs.rmSync(base, { recursive: true, force: true });
});

test('ca init --store: the CA state lives in the database from the start; a database in use is refused before anything is written', async () => {
  const base = tmpDir();
  const pki = path.join(base, 'pki');
  const url = await server.newDatabase();
  const init = await cliOk<{ store: string }>(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test', '--store', url, '--json']);
  assert.equal(init.store, url);
  assert.match(fs.readFileSync(path.join(pki, 'config.yaml'), 'utf8'), new RegExp(`store: ${url}`));
  assert.equal(fs.existsSync(path.join(pki, 'crl')), false, 'no folder CRL to go stale');
  assert.equal(fs.existsSync(path.join(pki, 'audit.log')), false);
  const alice = await cliOk<{ serial: string }>(['issue', 'client', '--dir', pki, '--user', 'alice', '--out', path.join(base, 'out'), '--json']);
  await cliOk(['revoke', alice.serial, '--dir', pki, '--reason', 'keyCompromise']);
  const crl = await cliOk<{ intermediate: { number: string; entries: number }; root: { number: string } }>(['crl', '--dir', pki, '--out', path.join(base, 'crl') + '/', '--json']);
  assert.deepEqual([crl.intermediate.number, crl.intermediate.entries, crl.root.number], ['3', 1, '2']);
  assert.ok(fs.existsSync(path.join(base, 'crl', 'intermediate.crl')));
  const status = await cliOk<{ store: string; certificates: { revoked: number } }>(['ca', 'status', '--dir', pki, '--json']);
  assert.equal(status.store, url);
  assert.equal(status.certificates.revoked, 1);
  const second = await cli(['ca', 'init', '--dir', path.join(base, 'other'), '--trust-domain', 'acme.test', '--store', url]);
  assert.equal(second.code, 73, second.stderr);
  assert.match(second.stderr, /already holds a CA state/);
  assert.equal(fs.existsSync(path.join(base, 'other')), false, 'nothing written');
  fs.rmSync(base, { recursive: true, force: true });
});

test('the database password: PGPASSWORD, else the matching ~/.pgpass line (only when the file is private)', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'pgpass');
  fs.writeFileSync(file, '# comment\nother:5432:*:ca:wrong\ndb.internal:5432:mcp_ca:ca:right\\:one\n*:*:*:*:fallback\n', { mode: 0o600 });
  const env = { PGPASSFILE: file };
  assert.equal(databasePassword('postgres://ca@db.internal/mcp_ca', env), 'right:one');
  assert.equal(databasePassword('postgres://ca@db.internal:5432/mcp_ca', env), 'right:one');
  assert.equal(databasePassword('postgres://ca@elsewhere:6432/x', env), 'fallback');
  assert.equal(databasePassword('postgres://ca@db.internal/mcp_ca', { ...env, PGPASSWORD: 'from-env' }), 'from-env');
  fs.chmodSync(file, 0o644);
  assert.equal(databasePassword('postgres://ca@db.internal/mcp_ca', env), undefined, 'a world-readable .pgpass is ignored, as libpq does');
  fs.rmSync(dir, { recursive: true, force: true });
});
