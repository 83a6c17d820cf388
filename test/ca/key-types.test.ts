/**
 * Every key type end to end through the real CLI: init, issue client and server, then
 * OpenSSL verifies each certificate for its purpose (and refuses the other purpose), and a
 * real node:tls server with requestCert accepts the client certificate from a real client.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { cliOk, openssl, ROOT, run, splitChain, tmpDir } from '../support/cli.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { readCertificates } from '../../src/x509/pem.js';

const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'ed25519'] as const;

interface Issued {
  files: { cert: string; key: string; ca: string };
  serial: string;
}

async function verify(cert: string, purpose: 'sslclient' | 'sslserver') {
  const { leaf, intermediate } = splitChain(cert);
  return openssl(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', path.join(path.dirname(cert), 'ca.crt'), '-untrusted', intermediate, leaf]);
}

/** A real TLS handshake with client auth; resolves with what the server saw. */
async function handshake(server: Issued, client: Issued): Promise<{ authorized: boolean; error: string | null; der: Buffer }> {
  const ca = fs.readFileSync(server.files.ca);
  const srv = tls.createServer({ cert: fs.readFileSync(server.files.cert), key: fs.readFileSync(server.files.key), ca, requestCert: true, rejectUnauthorized: false });
  const seen = new Promise<{ authorized: boolean; error: string | null; der: Buffer }>((resolve) =>
    srv.on('secureConnection', (s) => {
      s.on('error', () => undefined); // the client may hang up first
      resolve({ authorized: s.authorized, error: s.authorizationError ? String(s.authorizationError) : null, der: s.getPeerX509Certificate()?.raw ?? Buffer.alloc(0) });
      s.end('ok');
    }),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, cert: fs.readFileSync(client.files.cert), key: fs.readFileSync(client.files.key) });
    await new Promise<void>((resolve, reject) => {
      sock.on('secureConnect', () => (sock.authorized ? resolve() : reject(new Error(`client refused the server: ${sock.authorizationError}`))));
      sock.on('error', reject);
    });
    const result = await seen;
    sock.destroy();
    return result;
  } finally {
    srv.close();
  }
}

for (const keyType of KEY_TYPES) {
  test(`${keyType}: init, issue, openssl verify, real mTLS handshake`, async () => {
    const dir = tmpDir();
    const pki = path.join(dir, 'pki');
    const out = path.join(dir, 'out');
    await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test', '--key-type', keyType, '--json']);
    const client = await cliOk<Issued>(['issue', 'client', '--dir', pki, '--user', 'alice', '--team', 'sre', '--role', 'admin', '--out', out, '--json']);
    const server = await cliOk<Issued>(['issue', 'server', '--dir', pki, '--dns', 'localhost', '--ip', '127.0.0.1', '--out', out, '--json']);

    assert.equal((await verify(client.files.cert, 'sslclient')).code, 0, (await verify(client.files.cert, 'sslclient')).stderr);
    assert.equal((await verify(server.files.cert, 'sslserver')).code, 0);
    assert.notEqual((await verify(client.files.cert, 'sslserver')).code, 0, 'a client certificate must not pass as a server certificate');
    assert.notEqual((await verify(server.files.cert, 'sslclient')).code, 0, 'a server certificate must not pass as a client certificate');

    // the key type asked for is the one in the certificate, and the key file matches it
    const text = (await openssl(['x509', '-in', splitChain(client.files.cert).leaf, '-noout', '-text'])).stdout;
    const expected = { 'ec-p256': 'P-256', 'ec-p384': 'P-384', 'rsa-2048': '2048 bit', 'rsa-3072': '3072 bit', ed25519: 'ED25519' }[keyType];
    assert.match(text, new RegExp(expected));
    assert.equal(fs.statSync(client.files.key).mode & 0o777, 0o600);

    // the independent Python oracle reads the same identity and verifies the chain with
    // python cryptography's verifier (which refuses Ed25519 by policy: that refusal is expected)
    const oracle = await run('python3', [path.join(ROOT, 'test', 'oracle', 'identity_oracle.py'), client.files.cert, '--trust-domain', 'acme.test', '--root', path.join(pki, 'root.crt'), '--intermediate', path.join(pki, 'intermediate.crt')]);
    const seenByOracle = JSON.parse(oracle.stdout);
    assert.equal(seenByOracle.ok, true, oracle.stdout);
    assert.deepEqual([seenByOracle.principal, seenByOracle.teams, seenByOracle.roles, seenByOracle.serial], ['spiffe://acme.test/user/alice', ['sre'], ['admin'], client.serial]);
    if (keyType === 'ed25519') assert.match(seenByOracle.chain, /Forbidden public key algorithm/);
    else assert.equal(seenByOracle.chain, 'verified');

    const seen = await handshake(server, client);
    assert.equal(seen.authorized, true, `server refused the client: ${seen.error}`);
    const id = decodeIdentity(seen.der, { trustDomains: ['acme.test'] });
    assert.deepEqual([id.principal, [...id.teams], [...id.roles]], ['spiffe://acme.test/user/alice', ['sre'], ['admin']]);
    assert.equal(id.serial, client.serial);
    assert.ok(readCertificates(fs.readFileSync(client.files.cert)).length === 2, 'cert file holds leaf then intermediate');
    fs.rmSync(dir, { recursive: true, force: true });
  });
}
