/**
 * Revocation and CRLs through the real CLI, checked by OpenSSL (`verify -crl_check_all`,
 * `crl -verify`) and by a real node:tls server loaded with both CRLs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { cli, cliOk, openssl } from '../support/cli.js';
import { makePki, type IssuedFiles } from '../support/pki.js';
import { parseCrl } from '../../src/x509/crl.js';
import { pemDecodeAll } from '../../src/x509/pem.js';

const crlFile = (pki: string, which: 'root' | 'intermediate') => path.join(pki, 'crl', `${which}.crl`);
const readCrl = (file: string) => parseCrl(pemDecodeAll(fs.readFileSync(file, 'utf8'))[0]!.der);

async function verifyWithCrls(pki: string, cert: string) {
  const both = path.join(path.dirname(cert), 'crls.pem');
  fs.writeFileSync(both, fs.readFileSync(crlFile(pki, 'intermediate'), 'utf8') + fs.readFileSync(crlFile(pki, 'root'), 'utf8'));
  return openssl(['verify', '-crl_check_all', '-CAfile', path.join(pki, 'root.crt'), '-untrusted', path.join(pki, 'intermediate.crt'), '-CRLfile', both, cert]);
}

/** A TLS server with the CRLs in its secure context; resolves with whether the client got in. */
async function handshakeWithCrl(pki: string, server: IssuedFiles, client: IssuedFiles): Promise<{ ok: boolean; error?: string }> {
  const srv = tls.createServer({
    cert: fs.readFileSync(server.files.cert),
    key: fs.readFileSync(server.files.key!),
    ca: fs.readFileSync(path.join(pki, 'root.crt')),
    crl: [fs.readFileSync(crlFile(pki, 'intermediate')), fs.readFileSync(crlFile(pki, 'root'))],
    requestCert: true,
    rejectUnauthorized: true,
  });
  srv.on('secureConnection', (s) => s.end('hello'));
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise((resolve) => {
      const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: fs.readFileSync(client.files.ca), cert: fs.readFileSync(client.files.cert), key: fs.readFileSync(client.files.key!) });
      let data = '';
      sock.on('data', (d) => (data += d));
      sock.on('end', () => resolve(data === 'hello' ? { ok: true } : { ok: false, error: 'no data' }));
      sock.on('error', (e) => resolve({ ok: false, error: e.message }));
    });
  } finally {
    srv.close();
  }
}

test('revoke: OpenSSL and a node:tls server with both CRLs refuse the revoked certificate and accept the others', async () => {
  const t = await makePki();
  const server = await t.issue(['issue', 'server', '--dns', 'localhost']);
  const alice = await t.issue(['issue', 'client', '--user', 'alice', '--team', 'sre']);
  const bob = await t.issue(['issue', 'client', '--user', 'bob']);
  // fresh CA: both CRLs exist, verify, and let everyone in
  assert.equal((await verifyWithCrls(t.pki, bob.files.cert)).code, 0);
  assert.equal((await handshakeWithCrl(t.pki, server, bob)).ok, true);

  const r = await cliOk<{ serial: string; crlNumber: string; reason: string }>(['revoke', bob.files.cert, '--dir', t.pki, '--reason', 'keyCompromise', '--json']);
  assert.equal(r.serial, bob.serial);
  assert.equal(r.crlNumber, '2');

  const revoked = await verifyWithCrls(t.pki, bob.files.cert);
  assert.notEqual(revoked.code, 0);
  assert.match(revoked.stdout + revoked.stderr, /certificate revoked/);
  assert.equal((await verifyWithCrls(t.pki, alice.files.cert)).code, 0);
  for (const which of ['intermediate', 'root'] as const) {
    const ca = path.join(t.pki, which === 'root' ? 'root.crt' : 'intermediate.crt');
    const v = await openssl(['crl', '-in', crlFile(t.pki, which), '-CAfile', ca, '-noout', '-verify']);
    assert.equal(v.code, 0, `${which} CRL signature: ${v.stderr}`);
    assert.match(v.stderr + v.stdout, /verify OK/);
  }
  const text = (await openssl(['crl', '-in', crlFile(t.pki, 'intermediate'), '-noout', '-text'])).stdout;
  assert.match(text, /Version 2/);
  assert.match(text, /X509v3 CRL Number:\s+2/);
  assert.match(text, /X509v3 Authority Key Identifier/);
  assert.match(text, new RegExp(`Serial Number: ${bob.serial.toUpperCase()}[\\s\\S]*Key Compromise`));

  const refused = await handshakeWithCrl(t.pki, server, bob);
  assert.equal(refused.ok, false);
  assert.equal((await handshakeWithCrl(t.pki, server, alice)).ok, true);

  const list = await cliOk<{ certificates: { serial: string; status: string; revocationReason?: string }[]; crls: { intermediate: { number: string } } }>(['list', '--dir', t.pki, '--json']);
  assert.deepEqual(list.certificates.filter((c) => c.status === 'revoked').map((c) => [c.serial, c.revocationReason]), [[bob.serial, 'keyCompromise']]);
  assert.equal(list.crls.intermediate.number, '2');
  const audit = fs.readFileSync(path.join(t.pki, 'audit.log'), 'utf8');
  assert.match(audit, new RegExp(`"event":"cert.revoke".*"serial":"${bob.serial}".*"reason":"keyCompromise"`));
});

test('revoking an unknown or an already revoked certificate is a clear error that changes nothing', async () => {
  const t = await makePki();
  const bob = await t.issue(['issue', 'client', '--user', 'bob']);
  const unknown = await cli(['revoke', 'abcdef0123', '--dir', t.pki, '--reason', 'superseded']);
  assert.equal(unknown.code, 66);
  assert.match(unknown.stderr, /no certificate with serial abcdef0123 was issued/);
  await cliOk(['revoke', bob.serial, '--dir', t.pki, '--reason', 'superseded']);
  const before = fs.readFileSync(crlFile(t.pki, 'intermediate'));
  const again = await cli(['revoke', bob.serial, '--dir', t.pki, '--reason', 'superseded']);
  assert.equal(again.code, 65);
  assert.match(again.stderr, /already revoked at .* \(superseded\)/);
  assert.deepEqual(fs.readFileSync(crlFile(t.pki, 'intermediate')), before);
  const badReason = await cli(['revoke', bob.serial, '--dir', t.pki, '--reason', 'because']);
  assert.equal(badReason.code, 64);
  assert.match(badReason.stderr, /unknown revocation reason "because"/);
});

test('ten concurrent revokes: ten CRL entries, cRLNumber strictly increasing, nothing lost', async () => {
  const t = await makePki();
  const csv = path.join(t.base, 'ten.csv');
  fs.writeFileSync(csv, `type,id\n${Array.from({ length: 10 }, (_, i) => `user,u${i}`).join('\n')}\n`);
  const batch = await cliOk<{ issued: { serial: string }[] }>(['issue', 'client', '--dir', t.pki, '--batch', csv, '--out', t.out, '--json']);
  const runs = await Promise.all(batch.issued.map((c) => cli(['revoke', c.serial, '--dir', t.pki, '--reason', 'affiliationChanged', '--json'])));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const numbers = runs.map((r) => Number(JSON.parse(r.stdout).crlNumber)).sort((a, b) => a - b);
  assert.deepEqual(numbers, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 'each revocation signed its own CRL number');
  const crl = readCrl(crlFile(t.pki, 'intermediate'));
  assert.equal(crl.number, 11n);
  assert.deepEqual(new Set(crl.entries.map((e) => e.serial)), new Set(batch.issued.map((c) => c.serial)));
  assert.ok(crl.entries.every((e) => e.reason === 'affiliationChanged'));
});

test('crl --if-due re-signs only once two thirds of the validity passed; --der exports DER', async () => {
  const t = await makePki();
  // 12 s, due after 8: room for a CLI start on a loaded machine between the two first runs (with
  // 3 s, due after 2, a slow start made the "not due yet" run come after the CRL was due)
  const first = await cliOk<{ intermediate: { signed: boolean; number: string } }>(['crl', '--dir', t.pki, '--ttl', '12s', '--json']);
  const signedBy = Date.now(); // thisUpdate is at most this, so the CRL is due at most 8 s later
  assert.equal(first.intermediate.signed, true);
  const notDue = await cliOk<{ intermediate: { signed: boolean; number: string; due: boolean } }>(['crl', '--dir', t.pki, '--if-due', '--json']);
  assert.ok(Date.now() - signedBy < 8000, 'the not-due run finished before the CRL was due');
  assert.equal(notDue.intermediate.signed, false);
  assert.equal(notDue.intermediate.number, first.intermediate.number);
  await new Promise((r) => setTimeout(r, Math.max(0, signedBy + 8300 - Date.now())));
  const due = await cliOk<{ intermediate: { signed: boolean; number: string; nextUpdate: string } }>(['crl', '--dir', t.pki, '--if-due', '--json']);
  assert.equal(due.intermediate.signed, true);
  assert.equal(BigInt(due.intermediate.number), BigInt(first.intermediate.number) + 1n);
  const exported = await cliOk<{ exported: string[] }>(['crl', '--dir', t.pki, '--out', `${path.join(t.base, 'export')}/`, '--der', '--json']);
  for (const f of exported.exported) assert.equal((await openssl(['crl', '-inform', 'DER', '-in', f, '-noout'])).code, 0, f);
  const oneFile = path.join(t.base, 'both.pem');
  await cliOk(['crl', '--dir', t.pki, '--out', oneFile]);
  assert.equal(pemDecodeAll(fs.readFileSync(oneFile, 'utf8')).filter((b) => b.label === 'X509 CRL').length, 2);
  const derToFile = await cli(['crl', '--dir', t.pki, '--out', path.join(t.base, 'x.crl'), '--der']);
  assert.equal(derToFile.code, 64);
});

test('entries leave the CRL once the revoked certificate has expired', async () => {
  const t = await makePki();
  const short = await t.issue(['issue', 'client', '--user', 'temp', '--ttl', '2s']);
  await cliOk(['revoke', short.serial, '--dir', t.pki, '--reason', 'cessationOfOperation']);
  assert.equal(readCrl(crlFile(t.pki, 'intermediate')).entries.length, 1);
  await new Promise((r) => setTimeout(r, 2200));
  await cliOk(['crl', '--dir', t.pki]);
  assert.equal(readCrl(crlFile(t.pki, 'intermediate')).entries.length, 0);
});

test('with the root key offline, crl keeps the long-lived root CRL from init and re-signs the intermediate one', async () => {
  const t = await makePki();
  const root = readCrl(crlFile(t.pki, 'root'));
  const inter = fs.readFileSync(path.join(t.pki, 'intermediate.crt'), 'utf8');
  assert.equal(root.number, 1n);
  assert.equal(root.entries.length, 0);
  const interNotAfter = new Date((await openssl(['x509', '-noout', '-enddate'], inter)).stdout.replace('notAfter=', '').trim());
  assert.equal(root.nextUpdate?.getTime(), interNotAfter.getTime(), 'the root CRL lasts as long as the intermediate');
  fs.renameSync(path.join(t.pki, 'private', 'root.key'), path.join(t.base, 'root.key.offline'));
  const r = await cliOk<{ intermediate: { signed: boolean }; root: { signed: boolean; number: string } }>(['crl', '--dir', t.pki, '--json']);
  assert.equal(r.intermediate.signed, true);
  assert.equal(r.root.signed, false);
  assert.equal(r.root.number, '1');
  const status = await cliOk<{ root: { keyOnline: boolean } }>(['ca', 'status', '--dir', t.pki, '--json']);
  assert.equal(status.root.keyOnline, false);
});

test('a CRL URL from the CA config is written into issued certificates', async () => {
  const t = await makePki(['--crl-url', 'http://crl.acme.test/intermediate.crl']);
  const c = await t.issue(['issue', 'client', '--user', 'alice']);
  const text = (await openssl(['x509', '-in', c.files.cert, '-noout', '-text'])).stdout;
  assert.match(text, /X509v3 CRL Distribution Points:\s+Full Name:\s+URI:http:\/\/crl\.acme\.test\/intermediate\.crl/);
});

test('expiring lists what ends within the window (certificates and CRLs); --fail exits 1', async () => {
  const t = await makePki();
  await t.issue(['issue', 'client', '--user', 'soon', '--ttl', '1h']);
  await t.issue(['issue', 'client', '--user', 'later', '--ttl', '30d']);
  const r = await cliOk<{ items: { what: string; name: string }[] }>(['expiring', '--within', '2h', '--dir', t.pki, '--json']);
  assert.deepEqual(r.items.map((i) => i.name), ['spiffe://acme.test/user/soon']);
  const week = await cliOk<{ items: { what: string; name: string }[] }>(['expiring', '--within', '8d', '--dir', t.pki, '--json']);
  assert.deepEqual(week.items.map((i) => i.what).sort(), ['client', 'crl'], 'the 7-day intermediate CRL is within 8 days');
  const fail = await cli(['expiring', '--within', '2h', '--dir', t.pki, '--fail']);
  assert.equal(fail.code, 1);
  assert.match(fail.stdout, /spiffe:\/\/acme\.test\/user\/soon/);
  const none = await cli(['expiring', '--within', '1m', '--dir', t.pki, '--fail']);
  assert.equal(none.code, 0);
  assert.match(none.stdout, /Nothing expires within 1m/);
});
