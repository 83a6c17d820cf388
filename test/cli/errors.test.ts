/**
 * Bad input through the real CLI: a clear message that names the problem and the next
 * step, the documented sysexits code, and nothing written (no certificate, no index line,
 * no output file). Refusals that reach the CA are recorded in the audit log only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { cli, cliOk, snapshot, tmpDir } from '../support/cli.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { pemEncode } from '../../src/x509/pem.js';

let base: string;
let pki: string;
let encPki: string;
const PASS = 'correct horse battery staple';

before(async () => {
  base = tmpDir();
  pki = path.join(base, 'pki');
  encPki = path.join(base, 'enc');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  // limits raised in this CA, so that a TTL past the intermediate reaches that check (encPki keeps the default limits)
  const config = path.join(pki, 'config.yaml');
  fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace('maxTtl: 30d', 'maxTtl: 30y'));
  fs.writeFileSync(path.join(base, 'pass'), `${PASS}\n`);
  await cliOk(['ca', 'init', '--dir', encPki, '--trust-domain', 'acme.test', '--encrypt-keys', '--passphrase-file', path.join(base, 'pass')]);
});

const withoutAudit = (s: Record<string, string>) => Object.fromEntries(Object.entries(s).filter(([k]) => path.basename(k) !== 'audit.log'));

interface Case {
  name: string;
  args: () => string[];
  env?: () => Record<string, string>;
  exit: number;
  message: RegExp;
  hint?: RegExp;
}

const out = () => path.join(base, 'out-should-not-exist');
const cases: Case[] = [
  { name: 'unknown key type', args: () => ['issue', 'client', '--dir', pki, '--user', 'alice', '--key-type', 'dsa-1024', '--out', out()], exit: 64, message: /unknown key type "dsa-1024"/, hint: /ec-p256/ },
  { name: 'a path as user id', args: () => ['issue', 'client', '--dir', pki, '--user', '../x', '--out', out()], exit: 65, message: /invalid user id "\.\.\/x"/, hint: /1-128 characters/ },
  { name: 'an empty id', args: () => ['issue', 'client', '--dir', pki, '--service', '', '--out', out()], exit: 65, message: /invalid service id ""/ },
  { name: '".." as id', args: () => ['issue', 'client', '--dir', pki, '--user', '..', '--out', out()], exit: 65, message: /invalid user id/ },
  { name: 'a bad team name', args: () => ['issue', 'client', '--dir', pki, '--user', 'alice', '--team', 'sre ops', '--out', out()], exit: 65, message: /invalid team name "sre ops"/ },
  { name: 'a bad role name', args: () => ['issue', 'client', '--dir', pki, '--user', 'alice', '--role', '-admin', '--out', out()], exit: 65, message: /invalid role name "-admin"/ },
  { name: 'a bad email', args: () => ['issue', 'client', '--dir', pki, '--user', 'alice', '--email', 'not an email', '--out', out()], exit: 65, message: /invalid email/ },
  { name: 'a TTL past the intermediate', args: () => ['issue', 'client', '--dir', pki, '--user', 'alice', '--ttl', '20y', '--out', out()], exit: 65, message: /after the intermediate CA/, hint: /shorter --ttl/ },
  { name: 'a TTL over the limit', args: () => ['issue', 'client', '--dir', encPki, '--user', 'alice', '--ttl', '4y', '--out', out()], exit: 65, message: /client certificate lifetime 4y exceeds the limit of 30d \(limits\.client\.maxTtl in config\.yaml\)/, hint: /ask for 30d or less/ },
  { name: 'a malformed TTL', args: () => ['issue', 'client', '--dir', pki, '--user', 'alice', '--ttl', 'soon', '--out', out()], exit: 64, message: /invalid --ttl "soon"/ },
  { name: 'both --user and --service', args: () => ['issue', 'client', '--dir', pki, '--user', 'a', '--service', 'b', '--out', out()], exit: 64, message: /exactly one of --user ID or --service ID/ },
  { name: 'a missing --out', args: () => ['issue', 'client', '--dir', pki, '--user', 'alice'], exit: 64, message: /--out/ },
  { name: 'a missing CA folder', args: () => ['issue', 'client', '--dir', path.join(base, 'nope'), '--user', 'alice', '--out', out()], exit: 66, message: /does not exist/, hint: /ca init/ },
  { name: 'an uninitialised CA folder', args: () => { fs.mkdirSync(path.join(base, 'empty'), { recursive: true }); return ['issue', 'client', '--dir', path.join(base, 'empty'), '--user', 'alice', '--out', out()]; }, exit: 66, message: /not a CA folder/, hint: /ca init/ },
  { name: 'a wrong passphrase', args: () => ['issue', 'client', '--dir', encPki, '--user', 'alice', '--out', out()], env: () => ({ MCP_MTLS_PASSPHRASE: 'hunter2-not-it' }), exit: 77, message: /wrong passphrase for the intermediate CA key/ },
  { name: 'no passphrase and no terminal', args: () => ['issue', 'client', '--dir', encPki, '--user', 'alice', '--out', out()], exit: 77, message: /no terminal to ask/, hint: /--passphrase-file|MCP_MTLS_PASSPHRASE/ },
  { name: 'a garbage CSR', args: () => { fs.writeFileSync(path.join(base, 'garbage.csr'), 'this is not a CSR'); return ['sign', path.join(base, 'garbage.csr'), '--dir', pki, '--user', 'alice', '--out', out()]; }, exit: 65, message: /not a valid certificate signing request/ },
  { name: 'a CSR with a bad signature', args: () => ['sign', tamperedCsr(), '--dir', pki, '--user', 'alice', '--out', out()], exit: 65, message: /CSR signature does not verify/ },
  { name: 'a missing CSR file', args: () => ['sign', path.join(base, 'none.csr'), '--dir', pki, '--user', 'alice', '--out', out()], exit: 66, message: /cannot read CSR/ },
  { name: 'a server cert without names', args: () => ['issue', 'server', '--dir', pki, '--out', out()], exit: 64, message: /at least one --dns or --ip/ },
  { name: 'a bad DNS name', args: () => ['issue', 'server', '--dir', pki, '--dns', 'bad_name!', '--out', out()], exit: 65, message: /invalid DNS name/ },
  { name: 'an unknown status filter', args: () => ['list', '--dir', pki, '--status', 'lost'], exit: 64, message: /unknown status "lost"/ },
];

function tamperedCsr(): string {
  const key = generateKey('ec-p256');
  const der = createCsr(key, 'alice');
  der.writeUInt8(der.readUInt8(der.length - 5) ^ 0x01, der.length - 5); // flip a bit in the signature
  const file = path.join(base, 'tampered.csr');
  fs.writeFileSync(file, pemEncode('CERTIFICATE REQUEST', der));
  return file;
}

for (const c of cases) {
  test(`refuses ${c.name}: exit ${c.exit}, clear message, nothing written`, async () => {
    const args = c.args();
    const before = withoutAudit(snapshot(base));
    const r = await cli(args, c.env ? { env: c.env() } : {});
    assert.equal(r.code, c.exit, `exit code; stderr: ${r.stderr}`);
    assert.match(r.stderr, c.message);
    if (c.hint) assert.match(r.stderr, c.hint);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace for a user error');
    assert.equal(r.stdout, '');
    assert.deepEqual(withoutAudit(snapshot(base)), before, 'nothing but the audit log may change');
    assert.equal(fs.existsSync(out()), false);
  });
}

test('--json errors are one JSON object on stderr with code, message and hint', async () => {
  const r = await cli(['issue', 'client', '--dir', pki, '--user', '../x', '--out', out(), '--json']);
  assert.equal(r.code, 65);
  const err = JSON.parse(r.stderr).error;
  assert.equal(err.code, 'BAD_NAME');
  assert.match(err.message, /invalid user id/);
  assert.ok(err.hint);
});

test('refused issuance is audited with its reason; no key or passphrase in the log', async () => {
  await cli(['issue', 'client', '--dir', pki, '--user', 'alice', '--team', 'bad team', '--out', out()]);
  const audit = fs.readFileSync(path.join(pki, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const refusal = audit.findLast((e) => e.event === 'cert.refuse');
  assert.equal(refusal.code, 'BAD_NAME');
  assert.match(refusal.reason, /bad team/);
  const all = fs.readFileSync(path.join(encPki, 'audit.log'), 'utf8') + fs.readFileSync(path.join(pki, 'audit.log'), 'utf8');
  assert.doesNotMatch(all, /PRIVATE KEY|correct horse|hunter2/);
  assert.match(fs.readFileSync(path.join(encPki, 'audit.log'), 'utf8'), /"event":"cert.refuse".*"code":"CA_KEY_LOCKED"/, 'a wrong passphrase is audited');
  assert.match(fs.readFileSync(path.join(pki, 'audit.log'), 'utf8'), /"code":"CSR_BAD_SIGNATURE"/, 'a bad CSR is audited');
});

test('ca init refuses an existing CA and leaves it untouched', async () => {
  const before = snapshot(pki);
  const r = await cli(['ca', 'init', '--dir', pki, '--trust-domain', 'other.test']);
  assert.equal(r.code, 73);
  assert.match(r.stderr, /already holds a CA/);
  assert.deepEqual(snapshot(pki), before);
});

test('ca init refuses a bad trust domain and writes nothing', async () => {
  const dir = path.join(base, 'td');
  for (const td of ['Acme.Test', 'acme test', '', 'acme/test']) {
    const r = await cli(['ca', 'init', '--dir', dir, '--trust-domain', td]);
    assert.equal(r.code, 65, td);
    assert.match(r.stderr, /invalid trust domain/);
  }
  assert.equal(fs.existsSync(dir), false);
});

test('an existing output file is never overwritten', async () => {
  const dest = path.join(base, 'dest');
  await cliOk(['issue', 'client', '--dir', pki, '--user', 'carol', '--out', dest]);
  const before = snapshot(dest);
  const r = await cli(['issue', 'client', '--dir', pki, '--user', 'carol', '--out', dest]);
  assert.equal(r.code, 73);
  assert.match(r.stderr, /carol\.(crt|key) exists already/);
  assert.deepEqual(snapshot(dest), before);
});
