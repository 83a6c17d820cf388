/** Renewal through the real CLI: same claims byte for byte, new serial, key kept or replaced. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cli, cliOk, openssl } from '../support/cli.js';
import { makePki } from '../support/pki.js';
import { parseCertificate } from '../../src/x509/certificate.js';
import { OID } from '../../src/x509/oids.js';
import { readCertificates } from '../../src/x509/pem.js';

const leaf = (file: string) => parseCertificate(readCertificates(fs.readFileSync(file))[0]!);

async function verify(cert: string, ca: string, purpose = 'sslclient') {
  return openssl(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', ca, '-untrusted', cert, cert]);
}

test('renew keeps principal, teams, roles and email byte for byte, with a new serial and the same key', async () => {
  const t = await makePki();
  const old = await t.issue(['issue', 'client', '--user', 'alice', '--team', 'sre', '--team', 'platform', '--role', 'admin', '--email', 'alice@acme.test']);
  const oldCert = leaf(old.files.cert);
  const out = path.join(t.base, 'renewed');
  const renewed = await cliOk<{ serial: string; renewedFrom: string; files: { cert: string; key?: string; ca: string } }>(['renew', old.serial, '--dir', t.pki, '--out', out, '--json']);
  const newCert = leaf(renewed.files.cert);
  assert.notEqual(renewed.serial, old.serial);
  assert.equal(renewed.renewedFrom, old.serial);
  for (const oid of [OID.subjectAltName, OID.subjectDirectoryAttributes]) {
    assert.deepEqual(newCert.extensions.get(oid)?.value, oldCert.extensions.get(oid)?.value, `extension ${oid} is byte-identical`);
  }
  assert.deepEqual(newCert.subjectName, oldCert.subjectName);
  assert.deepEqual(newCert.spki, oldCert.spki, 'without --rekey the public key is kept');
  assert.equal(renewed.files.key, undefined, 'no key file: the key did not change');
  assert.equal((await verify(renewed.files.cert, renewed.files.ca)).code, 0);
  const list = await cliOk<{ certificates: { serial: string; status: string; keySource: string; renewedFrom?: string }[] }>(['list', '--dir', t.pki, '--user', 'alice', '--json']);
  assert.deepEqual(list.certificates.map((c) => [c.serial, c.status, c.keySource, c.renewedFrom]), [
    [old.serial, 'valid', 'generated', undefined],
    [renewed.serial, 'valid', 'reused', old.serial],
  ]);
});

test('renew --rekey makes a new key; --revoke-old revokes the old certificate as superseded; --force replaces files in place', async () => {
  const t = await makePki();
  const old = await t.issue(['issue', 'client', '--service', 'agent', '--team', 'ops']);
  const oldKey = fs.readFileSync(old.files.key!);
  const refused = await cli(['renew', old.files.cert, '--dir', t.pki, '--rekey', '--out', t.out]);
  assert.equal(refused.code, 73, 'files exist: not replaced without --force');
  const r = await cliOk<{ serial: string; files: { cert: string; key: string; ca: string }; oldRevoked: boolean }>(['renew', old.files.cert, '--dir', t.pki, '--rekey', '--key-type', 'ec-p384', '--revoke-old', '--force', '--out', t.out, '--json']);
  assert.equal(r.files.key, old.files.key, 'same file names, replaced');
  assert.notDeepEqual(fs.readFileSync(r.files.key), oldKey);
  assert.equal(fs.statSync(r.files.key).mode & 0o777, 0o600);
  assert.notDeepEqual(leaf(r.files.cert).spki, leaf(path.join(t.pki, 'issued', `${old.serial}.crt`)).spki);
  assert.match((await openssl(['x509', '-in', r.files.cert, '-noout', '-text'])).stdout, /P-384/);
  assert.equal(r.oldRevoked, true);
  const revoked = await cliOk<{ certificates: { serial: string; revocationReason: string }[] }>(['list', '--dir', t.pki, '--status', 'revoked', '--json']);
  assert.deepEqual(revoked.certificates.map((c) => [c.serial, c.revocationReason]), [[old.serial, 'superseded']]);
  const again = await cli(['renew', old.serial, '--dir', t.pki, '--out', path.join(t.base, 'x')]);
  assert.equal(again.code, 65);
  assert.match(again.stderr, /was revoked \(superseded\); a revoked certificate is not renewed/);
});

test('a server certificate renews with the same names', async () => {
  const t = await makePki();
  const old = await t.issue(['issue', 'server', '--dns', 'mcp.acme.test', '--ip', '127.0.0.1']);
  const r = await cliOk<{ dns: string[]; ips: string[]; files: { cert: string; ca: string } }>(['renew', old.serial, '--dir', t.pki, '--ttl', '30d', '--out', path.join(t.base, 'srv'), '--json']);
  assert.deepEqual([r.dns, r.ips], [['mcp.acme.test'], ['127.0.0.1']]);
  assert.deepEqual(leaf(r.files.cert).extensions.get(OID.subjectAltName), leaf(old.files.cert).extensions.get(OID.subjectAltName));
  assert.equal((await verify(r.files.cert, r.files.ca, 'sslserver')).code, 0);
});
