/**
 * Issue 18 (a new user's first hour), through the real CLI: `expiring` as its own help
 * example uses it, user errors that used to end as "internal error ... this is a bug", and
 * hints that are run as written.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { cli, cliOk, tmpDir } from '../support/cli.js';
import { makePki } from '../support/pki.js';

type Expiring = { items: { what: string; name: string; serial?: string }[] };

test('expiring --type selects client, server, ca, crl (repeatable or a comma list); unknown types are a usage error', async () => {
  const t = await makePki();
  const alice = await t.issue(['issue', 'client', '--user', 'alice']); // 24h default
  const srv = await t.issue(['issue', 'server', '--dns', 'soon.acme.test', '--ttl', '2d']);
  const all = await cliOk<Expiring>(['expiring', '--within', '8d', '--dir', t.pki, '--json']);
  assert.deepEqual(all.items.map((i) => i.what).sort(), ['client', 'crl', 'server']);
  const week = await cliOk<Expiring>(['expiring', '--within', '8d', '--type', 'server,ca', '--type', 'crl', '--dir', t.pki, '--json']);
  assert.deepEqual(week.items.map((i) => i.what).sort(), ['crl', 'server']);
  assert.ok(!week.items.some((i) => i.serial === alice.serial));
  const clients = await cliOk<Expiring>(['expiring', '--within', '8d', '--type', 'client', '--dir', t.pki, '--json']);
  assert.deepEqual(clients.items.map((i) => i.serial), [alice.serial]);
  // within a day only the 24h client certificate ends: --fail without --type exits 1, the monitoring form does not
  assert.equal((await cli(['expiring', '--within', '1d', '--dir', t.pki, '--fail'])).code, 1);
  const monitoring = await cli(['expiring', '--within', '1d', '--type', 'server,ca,crl', '--dir', t.pki, '--fail']);
  assert.equal(monitoring.code, 0, monitoring.stdout + monitoring.stderr);
  assert.match(monitoring.stdout, /Nothing expires within 1d/);
  const soonServer = await cliOk<Expiring>(['expiring', '--within', '3d', '--type', 'server', '--dir', t.pki, '--json']);
  assert.deepEqual(soonServer.items.map((i) => i.serial), [srv.serial]);
  const bad = await cli(['expiring', '--within', '7d', '--type', 'clients', '--dir', t.pki]);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /unknown --type "clients"/);
  assert.match(bad.stderr, /client, server, ca, crl/);
});

test('expiring leaves out certificates that a later certificate renewed, and revoked ones', async () => {
  const t = await makePki();
  const old = await t.issue(['issue', 'server', '--dns', 'api.acme.test', '--ttl', '2d']);
  const gone = await t.issue(['issue', 'server', '--dns', 'old.acme.test', '--ttl', '2d']);
  const renewed = await cliOk<{ serial: string }>(['renew', old.serial, '--dir', t.pki, '--out', t.out, '--force', '--ttl', '2d', '--json']);
  await cliOk(['revoke', gone.serial, '--dir', t.pki, '--reason', 'cessationOfOperation']);
  const r = await cliOk<Expiring>(['expiring', '--within', '3d', '--dir', t.pki, '--json']);
  assert.deepEqual(r.items.map((i) => i.serial), [renewed.serial], 'only the renewal: the renewed and the revoked certificates need nothing more');
});

test('ca init --dir on a file, or under one: a coded error naming the path (exit 73), not an internal error', async () => {
  const base = tmpDir();
  const file = path.join(base, 'pki');
  fs.writeFileSync(file, 'not a folder\n');
  for (const [dir, message] of [[file, /cannot create the CA folder .*pki: it is a file, not a folder/], [path.join(file, 'sub'), /pki is a file, not a folder/]] as const) {
    const r = await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'acme.test']);
    assert.equal(r.code, 73, r.stderr);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /hint: choose another --dir/);
    assert.doesNotMatch(r.stderr, /internal error|this is a bug|\n\s+at /);
  }
  assert.equal(fs.readFileSync(file, 'utf8'), 'not a folder\n');
});

test('gateway on a port in use: a coded error naming the address, with a hint (exit 74), not an internal error', async () => {
  const t = await makePki();
  const gw = await t.issue(['issue', 'server', '--dns', 'localhost']);
  const policy = path.join(t.base, 'policy.yaml');
  fs.writeFileSync(policy, 'version: 1\nrules: []\n');
  const held = net.createServer();
  await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
  const listen = `127.0.0.1:${(held.address() as net.AddressInfo).port}`;
  try {
    const r = await cli(['gateway', '--listen', listen, '--upstream', 'http://127.0.0.1:9/mcp', '--policy', policy, '--cert', gw.files.cert, '--key', gw.files.key!, '--pki', t.pki]);
    assert.equal(r.code, 74, r.stderr);
    assert.match(r.stderr, new RegExp(`error: cannot listen on ${listen}: the address is in use`));
    assert.match(r.stderr, /hint: choose another --listen port/);
    assert.doesNotMatch(r.stderr, /internal error|this is a bug|\n\s+at /);
  } finally {
    held.close();
  }
});

/** The command line in a hint's backquotes, split into arguments (without "mcp-mtls"). */
function hintedCommand(stderr: string): string[] {
  const m = /hint: .*?`mcp-mtls ([^`]+)`/.exec(stderr);
  assert.ok(m, `a hint with a command line: ${stderr}`);
  return m[1]!.split(' ');
}

test('the expired-bundle hint: its renew command line works as written where the CA is', async () => {
  const t = await makePki();
  const alice = await t.issue(['issue', 'client', '--user', 'alice', '--ttl', '2s']);
  const bundle = path.join(t.base, 'alice-bundle');
  await cliOk(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'pem', '--out', bundle]);
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(alice.notAfter) - Date.now()) + 1500));
  const expired = await cli(['check-bundle', bundle]);
  assert.equal(expired.code, 65, expired.stderr);
  const args = hintedCommand(expired.stderr);
  assert.equal(args[0], 'renew');
  const renewed = await cli(args, { cwd: t.base }); // makePki's CA folder is ./pki there
  assert.equal(renewed.code, 0, `mcp-mtls ${args.join(' ')}: ${renewed.stderr}`);
  assert.match(renewed.stdout, new RegExp(`renews ${alice.serial}`));
});

test('renew onto existing files: the hint says --force, and the same command with --force works', async () => {
  const t = await makePki();
  const alice = await t.issue(['issue', 'client', '--user', 'alice']);
  const args = ['renew', alice.files.cert, '--dir', t.pki, '--out', t.out];
  const exists = await cli(args);
  assert.equal(exists.code, 73, exists.stderr);
  assert.match(exists.stderr, /exists already/);
  assert.match(exists.stderr, /hint: .*--force/);
  const forced = await cli([...args, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
});
