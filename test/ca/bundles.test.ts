/**
 * Client bundles: PKCS#12 for every key type (OpenSSL reads it with the right password and
 * refuses the wrong one; curl makes an mTLS request with it), the bundle profile and the PEM
 * folder (loadBundle), and every kind of bad bundle refused with a clear error.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import { cli, cliOk, openssl, run, snapshot } from '../support/cli.js';
import { makePki } from '../support/pki.js';
import { loadBundle } from '../../src/bundle/load.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { isMtlsError } from '../../src/errors.js';
import { readPkcs12 } from '../../src/x509/pkcs12.js';

const PASS = 'bundle pass phrase';

/** An HTTPS server that requires a client certificate and answers with its identity. */
async function mtlsServer(server: { files: { cert: string; key?: string; ca: string } }): Promise<{ port: number; close: () => void }> {
  const srv = https.createServer(
    { cert: fs.readFileSync(server.files.cert), key: fs.readFileSync(server.files.key!), ca: fs.readFileSync(server.files.ca), requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const der = (req.socket as import('node:tls').TLSSocket).getPeerX509Certificate()!.raw;
      res.end(decodeIdentity(der).principal);
    },
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as { port: number }).port, close: () => srv.close() };
}

for (const keyType of ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as const) {
  test(`PKCS#12 with ${keyType}: openssl pkcs12 -info, wrong password refused, curl --cert-type P12 completes mTLS`, async () => {
    const t = await makePki(['--key-type', keyType]);
    const server = await t.issue(['issue', 'server', '--dns', 'localhost']);
    const alice = await t.issue(['issue', 'client', '--user', 'alice', '--team', 'sre']);
    const passFile = path.join(t.base, 'pass');
    fs.writeFileSync(passFile, `${PASS}\n`);
    const p12 = path.join(t.base, 'alice.p12');
    await cliOk(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'p12', '--out', p12, '--passphrase-file', passFile]);
    assert.equal(fs.statSync(p12).mode & 0o777, 0o600);

    const info = await openssl(['pkcs12', '-in', p12, '-info', '-nokeys', '-passin', `pass:${PASS}`]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stderr, /MAC: sha256/);
    assert.match(info.stderr, /PBES2, PBKDF2, AES-256-CBC/);
    const wrong = await openssl(['pkcs12', '-in', p12, '-info', '-noout', '-passin', 'pass:wrong']);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /Mac verify error/);
    const key = await openssl(['pkcs12', '-in', p12, '-nocerts', '-nodes', '-passin', `pass:${PASS}`]);
    assert.match(key.stdout, /BEGIN PRIVATE KEY/);

    const back = readPkcs12(fs.readFileSync(p12), PASS);
    assert.deepEqual(back.certificates[0], (await import('../../src/x509/pem.js')).readCertificates(fs.readFileSync(alice.files.cert))[0]);
    assert.throws(() => readPkcs12(fs.readFileSync(p12), 'wrong'), (e) => isMtlsError(e, 'BUNDLE_PASSWORD'));

    const srv = await mtlsServer(server);
    try {
      const r = await run('curl', ['-sS', '--fail', '--cacert', path.join(t.pki, 'root.crt'), '--cert-type', 'P12', '--cert', `${p12}:${PASS}`, `https://localhost:${srv.port}/`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'spiffe://acme.test/user/alice');
      const without = await run('curl', ['-sS', '--cacert', path.join(t.pki, 'root.crt'), `https://localhost:${srv.port}/`]);
      assert.notEqual(without.code, 0, 'no certificate, no answer');
    } finally {
      srv.close();
    }
  });
}

test('bundle profile and PEM folder load as a client would; check-bundle reports them', async () => {
  const t = await makePki();
  const alice = await t.issue(['issue', 'client', '--user', 'alice', '--team', 'sre', '--role', 'admin']);
  const profile = path.join(t.base, 'alice.yaml');
  await cliOk(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'profile', '--url', 'https://mcp.acme.test/mcp', '--out', profile]);
  assert.equal(fs.statSync(profile).mode & 0o777, 0o600);
  const b = await loadBundle(profile);
  assert.equal(b.identity?.principal, 'spiffe://acme.test/user/alice');
  assert.equal(b.url, 'https://mcp.acme.test/mcp');
  assert.equal(b.chain.length, 2);
  assert.deepEqual(b.warnings, [], 'a fresh 24h certificate is not worth a warning');
  const report = await cliOk<{ principal: string; teams: string[]; roles: string[]; format: string }>(['check-bundle', profile, '--json']);
  assert.deepEqual([report.principal, report.teams, report.roles, report.format], ['spiffe://acme.test/user/alice', ['sre'], ['admin'], 'profile']);

  const enc = path.join(t.base, 'alice-enc.yaml');
  await cliOk(['bundle', alice.serial, '--dir', t.pki, '--key', alice.files.key!, '--format', 'profile', '--encrypt', '--out', enc], { env: { MCP_MTLS_BUNDLE_PASSPHRASE: PASS } });
  assert.match(fs.readFileSync(enc, 'utf8'), /ENCRYPTED PRIVATE KEY/);
  assert.equal((await loadBundle(enc, { passphrase: () => PASS })).identity?.id, 'alice');
  await assert.rejects(loadBundle(enc, { passphrase: () => 'wrong' }), (e) => isMtlsError(e, 'BUNDLE_PASSWORD'));
  await assert.rejects(loadBundle(enc), (e) => isMtlsError(e, 'BUNDLE_PASSWORD'));

  const folder = path.join(t.base, 'alice-pem');
  await cliOk(['bundle', 'alice', '--dir', t.pki, '--key', alice.files.key!, '--format', 'pem', '--out', folder]);
  assert.equal(fs.statSync(folder).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(folder, 'key.pem')).mode & 0o777, 0o600);
  assert.equal((await loadBundle(folder)).identity?.principal, 'spiffe://acme.test/user/alice');
  const v = await openssl(['verify', '-x509_strict', '-CAfile', path.join(folder, 'ca.pem'), '-untrusted', path.join(folder, 'cert.pem'), path.join(folder, 'cert.pem')]);
  assert.equal(v.code, 0);
});

test('bad bundles are refused with a clear error, and nothing is overwritten', async () => {
  const t = await makePki();
  const alice = await t.issue(['issue', 'client', '--user', 'alice']);
  const bob = await t.issue(['issue', 'client', '--user', 'bob']);
  const good = path.join(t.base, 'good.yaml');
  await cliOk(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'profile', '--out', good]);
  const text = fs.readFileSync(good, 'utf8');

  const missing = path.join(t.base, 'missing.yaml');
  fs.writeFileSync(missing, text.replace(/^key: [\s\S]*?(?=^ca:)/m, ''));
  const r1 = await cli(['check-bundle', missing]);
  assert.equal(r1.code, 65);
  assert.match(r1.stderr, /missing field "key"/);

  const mismatched = path.join(t.base, 'mismatch.yaml');
  const bobKey = fs.readFileSync(bob.files.key!, 'utf8').trimEnd().split('\n').map((l) => `  ${l}`).join('\n');
  fs.writeFileSync(mismatched, text.replace(/^key: \|-?\n(?: {2}.*\n)+/m, `key: |\n${bobKey}\n`));
  const r2 = await cli(['check-bundle', mismatched]);
  assert.equal(r2.code, 65);
  assert.match(r2.stderr, /the private key does not match the certificate/);

  const passFile = path.join(t.base, 'pass');
  fs.writeFileSync(passFile, PASS);
  const p12 = path.join(t.base, 'alice.p12');
  await cliOk(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'p12', '--out', p12, '--passphrase-file', passFile]);
  const wrongPass = path.join(t.base, 'wrong');
  fs.writeFileSync(wrongPass, 'not it');
  const r3 = await cli(['check-bundle', p12, '--passphrase-file', wrongPass]);
  assert.equal(r3.code, 77);
  assert.match(r3.stderr, /wrong password for the PKCS#12 file/);
  const truncated = path.join(t.base, 'truncated.p12');
  fs.writeFileSync(truncated, fs.readFileSync(p12).subarray(0, 700));
  const r4 = await cli(['check-bundle', truncated, '--passphrase-file', passFile]);
  assert.equal(r4.code, 65);
  assert.match(r4.stderr, /not a usable PKCS#12 file/);

  const before = snapshot(t.base);
  const r5 = await cli(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'profile', '--out', good]);
  assert.equal(r5.code, 73);
  const r6 = await cli(['bundle', bob.files.cert, '--dir', t.pki, '--key', alice.files.key!, '--format', 'profile', '--out', path.join(t.base, 'x.yaml')]);
  assert.equal(r6.code, 65);
  assert.match(r6.stderr, /is not the key of/);
  const r7 = await cli(['bundle', alice.serial, '--dir', t.pki, '--format', 'profile', '--out', path.join(t.base, 'y.yaml')]);
  assert.equal(r7.code, 64);
  assert.match(r7.stderr, /the CA never keeps client keys/);
  const r8 = await cli(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'zip', '--out', path.join(t.base, 'z')]);
  assert.equal(r8.code, 64);
  const r9 = await cli(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'p12', '--out', path.join(t.base, 'n.p12')]);
  assert.equal(r9.code, 77, 'no passphrase and no terminal');
  assert.deepEqual(snapshot(t.base), before);
});

test('an expired certificate is an error before any connection', async () => {
  const t = await makePki();
  const c = await t.issue(['issue', 'client', '--user', 'old', '--ttl', '1s']);
  const file = path.join(t.base, 'old.yaml');
  await cliOk(['bundle', c.files.cert, '--dir', t.pki, '--format', 'profile', '--out', file]);
  await new Promise((r) => setTimeout(r, 1200));
  await assert.rejects(loadBundle(file), (e) => isMtlsError(e, 'CERT_EXPIRED') && /expired at/.test((e as Error).message));
  const r = await cli(['check-bundle', file]);
  assert.equal(r.code, 65);
  assert.match(r.stderr, /renew it/);
});
