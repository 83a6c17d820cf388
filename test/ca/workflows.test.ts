/**
 * Operator workflows through the real CLI: keys that never leave the client (csr + sign),
 * batch onboarding, encrypted CA keys, an offline root key, name constraints, list and
 * inspect. OpenSSL checks what the CA writes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { cli, cliOk, openssl, snapshot, splitChain, tmpDir } from '../support/cli.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { readCertificates } from '../../src/x509/pem.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { pemEncode } from '../../src/x509/pem.js';

let base: string;
let pki: string;

before(async () => {
  base = tmpDir();
  pki = path.join(base, 'pki');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test', '--name', 'Acme MCP CA', '--org', 'Acme']);
});

const leafOf = (file: string) => readCertificates(fs.readFileSync(file))[0]!;

async function verifyClient(cert: string, caFile: string) {
  const { leaf, intermediate } = splitChain(cert);
  return openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, '-untrusted', intermediate, leaf]);
}

test('csr + sign: the key stays with the client, the CA decides every claim', async () => {
  const client = path.join(base, 'client-home');
  const made = await cliOk<{ files: { key: string; csr: string } }>(['csr', '--user', 'dave', '--out', client, '--json']);
  assert.equal(fs.statSync(made.files.key).mode & 0o777, 0o600);
  assert.equal((await openssl(['req', '-in', made.files.csr, '-noout', '-verify'])).code, 0, 'openssl accepts the CSR');
  const out = path.join(base, 'signed');
  // the CSR says CN=dave; the operator issues for erin, with the operator's claims
  const issued = await cliOk<{ serial: string; principal: string; files: { cert: string; key?: string; ca: string } }>(['sign', made.files.csr, '--dir', pki, '--user', 'erin', '--team', 'sre', '--role', 'oncall', '--out', out, '--json']);
  assert.equal(issued.principal, 'spiffe://acme.test/user/erin');
  assert.equal(issued.files.key, undefined, 'no key file: the CA never had the key');
  assert.equal(fs.existsSync(path.join(out, 'erin.key')), false);
  const id = decodeIdentity(leafOf(issued.files.cert));
  assert.deepEqual([id.principal, [...id.teams], [...id.roles]], ['spiffe://acme.test/user/erin', ['sre'], ['oncall']]);
  // the certificate holds the CSR's public key
  const certKey = await openssl(['x509', '-in', splitChain(issued.files.cert).leaf, '-noout', '-pubkey']);
  const fileKey = await openssl(['pkey', '-in', made.files.key, '-pubout']);
  assert.equal(certKey.stdout, fileKey.stdout);
  assert.equal((await verifyClient(issued.files.cert, issued.files.ca)).code, 0);
});

test('sign accepts an OpenSSL-made CSR (RSA) and ignores the extensions it asks for', async () => {
  const dir = path.join(base, 'openssl-csr');
  fs.mkdirSync(dir);
  const key = path.join(dir, 'k.pem');
  const csr = path.join(dir, 'r.csr');
  const r = await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=admin', '-addext', 'subjectAltName=URI:spiffe://acme.test/user/root', '-addext', 'basicConstraints=critical,CA:TRUE']);
  assert.equal(r.code, 0, r.stderr);
  const issued = await cliOk<{ files: { cert: string; ca: string } }>(['sign', csr, '--dir', pki, '--service', 'worker', '--out', path.join(dir, 'out'), '--json']);
  const id = decodeIdentity(leafOf(issued.files.cert));
  assert.equal(id.principal, 'spiffe://acme.test/service/worker');
  const text = (await openssl(['x509', '-in', splitChain(issued.files.cert).leaf, '-noout', '-text'])).stdout;
  assert.match(text, /CA:FALSE/);
  assert.doesNotMatch(text, /user\/root/);
});

test('batch onboarding from CSV: one certificate per row, claims as written', async () => {
  const csv = path.join(base, 'people.csv');
  fs.writeFileSync(csv, 'type,id,teams,roles,email\nuser,ann,sre;platform,admin,ann@acme.test\nuser,ben,dev,,\nservice,ci-bot,build,deployer,\n');
  const out = path.join(base, 'batch-out');
  const result = await cliOk<{ count: number; issued: { principal: string; teams: string[]; roles: string[]; files: { cert: string; key: string } }[] }>(['issue', 'client', '--dir', pki, '--batch', csv, '--out', out, '--json']);
  assert.equal(result.count, 3);
  assert.deepEqual(
    result.issued.map((i) => [i.principal, i.teams, i.roles]),
    [
      ['spiffe://acme.test/user/ann', ['platform', 'sre'], ['admin']],
      ['spiffe://acme.test/user/ben', ['dev'], []],
      ['spiffe://acme.test/service/ci-bot', ['build'], ['deployer']],
    ],
  );
  for (const i of result.issued) {
    assert.equal((await verifyClient(i.files.cert, path.join(out, 'ca.crt'))).code, 0);
    assert.equal(fs.statSync(i.files.key).mode & 0o777, 0o600);
  }
});

test('batch onboarding from YAML', async () => {
  const yaml = path.join(base, 'people.yaml');
  fs.writeFileSync(yaml, '- user: fay\n  teams: [sre]\n  roles: [oncall]\n- service: indexer\n  ttl: 1h\n');
  const result = await cliOk<{ count: number; issued: { principal: string; notBefore: string; notAfter: string }[] }>(['issue', 'client', '--dir', pki, '--batch', yaml, '--out', path.join(base, 'yaml-out'), '--json']);
  assert.equal(result.count, 2);
  const bot = result.issued[1]!;
  assert.equal(bot.principal, 'spiffe://acme.test/service/indexer');
  assert.equal(new Date(bot.notAfter).getTime() - new Date(bot.notBefore).getTime(), 61 * 60_000, '1h plus the 1 minute backdate');
});

test('a bad row refuses the whole batch with its line number, and nothing is issued', async () => {
  const csv = path.join(base, 'bad.csv');
  fs.writeFileSync(csv, 'type,id,teams\nuser,gil,sre\nuser,../etc,sre\n');
  const before = snapshot(pki);
  const r = await cli(['issue', 'client', '--dir', pki, '--batch', csv, '--out', path.join(base, 'bad-out')]);
  assert.equal(r.code, 65);
  assert.match(r.stderr, /bad\.csv:3: invalid user id "\.\.\/etc"/);
  assert.deepEqual(snapshot(pki), before);
  assert.equal(fs.existsSync(path.join(base, 'bad-out')), false);

  fs.writeFileSync(csv, 'type,id\nuser,hal\nuser,hal\n');
  const dup = await cli(['issue', 'client', '--dir', pki, '--batch', csv, '--out', path.join(base, 'bad-out')]);
  assert.equal(dup.code, 65);
  assert.match(dup.stderr, /bad\.csv:3: user\/hal appears twice \(first on line 2\)/);
});

test('encrypted CA keys: passphrase from a file or the environment, never argv', async () => {
  const enc = path.join(base, 'enc');
  const pass = path.join(base, 'pass.txt');
  fs.writeFileSync(pass, 's3cret passphrase\n', { mode: 0o600 });
  await cliOk(['ca', 'init', '--dir', enc, '--trust-domain', 'acme.test', '--encrypt-keys', '--passphrase-file', pass]);
  assert.match(fs.readFileSync(path.join(enc, 'private', 'intermediate.key'), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
  assert.equal((await openssl(['pkey', '-in', path.join(enc, 'private', 'root.key'), '-passin', 'pass:s3cret passphrase', '-noout'])).code, 0);
  await cliOk(['issue', 'client', '--dir', enc, '--user', 'ivy', '--out', path.join(base, 'enc-out'), '--passphrase-file', pass]);
  await cliOk(['issue', 'client', '--dir', enc, '--user', 'jon', '--out', path.join(base, 'enc-out')], { env: { MCP_MTLS_PASSPHRASE: 's3cret passphrase' } });
  const help = await cli(['issue', 'client', '--help']);
  assert.doesNotMatch(help.stdout, /--passphrase </, 'there is no option that takes the passphrase itself');
});

test('the root key can be moved offline: issuing needs only the intermediate', async () => {
  const offline = path.join(base, 'offline');
  await cliOk(['ca', 'init', '--dir', offline, '--trust-domain', 'acme.test']);
  fs.renameSync(path.join(offline, 'private', 'root.key'), path.join(base, 'root.key.offline'));
  const issued = await cliOk<{ files: { cert: string; ca: string } }>(['issue', 'client', '--dir', offline, '--user', 'kim', '--out', path.join(base, 'offline-out'), '--json']);
  assert.equal((await verifyClient(issued.files.cert, issued.files.ca)).code, 0);
  await cliOk(['issue', 'server', '--dir', offline, '--dns', 'mcp.acme.test', '--out', path.join(base, 'offline-out')]);
});

test('opt-in name constraints: OpenSSL enforces them on server names', async () => {
  const nc = path.join(base, 'nc');
  await cliOk(['ca', 'init', '--dir', nc, '--trust-domain', 'acme.test', '--name-constraints', '--permit-dns', 'acme.test']);
  const text = (await openssl(['x509', '-in', path.join(nc, 'intermediate.crt'), '-noout', '-text'])).stdout;
  assert.match(text, /X509v3 Name Constraints: critical\s+Permitted:\s+URI:acme\.test\s+DNS:acme\.test/);
  const out = path.join(base, 'nc-out');
  const client = await cliOk<{ files: { cert: string; ca: string } }>(['issue', 'client', '--dir', nc, '--user', 'lee', '--out', out, '--json']);
  assert.equal((await verifyClient(client.files.cert, client.files.ca)).code, 0);
  const server = await cliOk<{ files: { cert: string } }>(['issue', 'server', '--dir', nc, '--dns', 'mcp.acme.test', '--out', out, '--json']);
  const { leaf, intermediate } = splitChain(server.files.cert);
  assert.equal((await openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', path.join(out, 'ca.crt'), '-untrusted', intermediate, leaf])).code, 0);
  const refused = await cli(['issue', 'server', '--dir', nc, '--dns', 'evil.example', '--out', out]);
  assert.equal(refused.code, 65);
  assert.match(refused.stderr, /outside the CA's name constraints/);
});

test('list filters by status, user, team and role; --json gives the records', async () => {
  const out = path.join(base, 'list-out');
  await cliOk(['issue', 'client', '--dir', pki, '--user', 'mia', '--team', 'search', '--role', 'lead', '--out', out]);
  await cliOk(['issue', 'client', '--dir', pki, '--user', 'ned', '--team', 'search', '--ttl', '1s', '--out', out]);
  await new Promise((r) => setTimeout(r, 1100));
  const all = await cliOk<{ certificates: { id: string; status: string }[] }>(['list', '--dir', pki, '--team', 'search', '--json']);
  assert.deepEqual(all.certificates.map((c) => [c.id, c.status]), [['mia', 'valid'], ['ned', 'expired']]);
  const valid = await cliOk<{ certificates: { id: string }[] }>(['list', '--dir', pki, '--team', 'search', '--status', 'valid', '--json']);
  assert.deepEqual(valid.certificates.map((c) => c.id), ['mia']);
  const byRole = await cliOk<{ certificates: { id: string }[] }>(['list', '--dir', pki, '--role', 'lead', '--json']);
  assert.deepEqual(byRole.certificates.map((c) => c.id), ['mia']);
  const byUser = await cliOk<{ certificates: { id: string }[] }>(['list', '--dir', pki, '--user', 'ned', '--json']);
  assert.deepEqual(byUser.certificates.map((c) => c.id), ['ned']);
  const human = await cliOk<string>(['list', '--dir', pki, '--team', 'search']);
  assert.match(human, /SERIAL\s+TYPE\s+SUBJECT/);
  assert.match(human, /spiffe:\/\/acme\.test\/user\/mia\s+search\s+lead/);
});

test('inspect by file and by serial shows the identity, chain and fingerprint', async () => {
  const out = path.join(base, 'inspect-out');
  const issued = await cliOk<{ serial: string; fingerprint: string; files: { cert: string } }>(['issue', 'client', '--dir', pki, '--user', 'ola', '--team', 'sre', '--role', 'admin', '--email', 'ola@acme.test', '--out', out, '--json']);
  const byFile = await cliOk<{ identity: { principal: string; teams: string[]; roles: string[]; email: string }; chain: { status: string }; fingerprint: string; type: string; subject: string }>(['inspect', issued.files.cert, '--dir', pki, '--json']);
  assert.equal(byFile.identity.principal, 'spiffe://acme.test/user/ola');
  assert.deepEqual([byFile.identity.teams, byFile.identity.roles, byFile.identity.email], [['sre'], ['admin'], 'ola@acme.test']);
  assert.equal(byFile.chain.status, 'verified');
  assert.equal(byFile.fingerprint, issued.fingerprint);
  assert.equal(byFile.type, 'client');
  assert.equal(byFile.subject, 'O=Acme, CN=ola');
  const bySerial = await cliOk<{ fingerprint: string }>(['inspect', issued.serial, '--dir', pki, '--json']);
  assert.equal(bySerial.fingerprint, issued.fingerprint);
  const human = await cliOk<string>(['inspect', issued.files.cert, '--dir', pki]);
  assert.match(human, /Principal:\s+spiffe:\/\/acme\.test\/user\/ola/);
  assert.match(human, /Chain:\s+verified/);
});

test('inspect reports a malformed identity precisely and exits 65', async () => {
  const vec = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'fixtures', 'vectors', 'bad-duplicate-attribute.der');
  const r = await cli(['inspect', vec, '--json']);
  assert.equal(r.code, 65);
  const report = JSON.parse(r.stdout);
  assert.equal(report.identity, null);
  assert.equal(report.identityError.code, 'IDENTITY_DUPLICATE_ATTRIBUTE');
  const human = await cli(['inspect', vec]);
  assert.match(human.stdout, /Identity:\s+INVALID: IDENTITY_DUPLICATE_ATTRIBUTE/);
});

test('inspect of another CA\'s certificate reports the chain as failed', async () => {
  const other = path.join(base, 'other');
  await cliOk(['ca', 'init', '--dir', other, '--trust-domain', 'acme.test']);
  const issued = await cliOk<{ files: { cert: string } }>(['issue', 'client', '--dir', other, '--user', 'pat', '--out', path.join(base, 'other-out'), '--json']);
  const r = await cli(['inspect', issued.files.cert, '--dir', pki, '--json']);
  assert.equal(r.code, 65);
  assert.equal(JSON.parse(r.stdout).chain.status, 'failed');
});

test('a CSR made in code signs like one from the CLI', async () => {
  const key = generateKey('ed25519');
  const file = path.join(base, 'code.csr');
  fs.writeFileSync(file, pemEncode('CERTIFICATE REQUEST', createCsr(key, 'svc')));
  const issued = await cliOk<{ files: { cert: string; ca: string } }>(['sign', file, '--dir', pki, '--service', 'svc', '--out', path.join(base, 'code-out'), '--json']);
  assert.equal((await verifyClient(issued.files.cert, issued.files.ca)).code, 0);
});
