/**
 * The name constraints of chain-constraints.ts (the forwarded-certificate path's stand-in for
 * OpenSSL's chain verification), case by case against `openssl verify` as the oracle: DNS, URI,
 * e-mail and IP names, permitted and excluded subtrees, a leading dot, a name kind without a
 * constraint. Each chain is real: root -> constrained intermediate -> leaf, signed here.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { chainConstraintProblem } from '../../src/mtls/chain-constraints.js';
import { parseCertificate, randomSerial, signCertificate } from '../../src/x509/certificate.js';
import { seq, tlv } from '../../src/x509/der.js';
import { authorityKeyIdentifier, basicConstraints, distinguishedName, dnsName, emailName, extension, extKeyUsage, ipBytes, keyUsage, subjectAltName, subjectKeyIdentifier, uriName } from '../../src/x509/extensions.js';
import { createSigner, generateKey, keyIdentifier } from '../../src/x509/keys.js';
import { OID } from '../../src/x509/oids.js';
import { pemEncode } from '../../src/x509/pem.js';

const key = (k: ReturnType<typeof generateKey>) => crypto.createPrivateKey({ key: k.pkcs8, format: 'der', type: 'pkcs8' });
const ipSubtree = (cidr: string) => {
  const [ip, bits] = cidr.split('/') as [string, string];
  const addr = ipBytes(ip);
  const mask = Buffer.alloc(addr.length);
  for (let i = 0; i < Number(bits); i++) mask[i >> 3]! |= 0x80 >> (i & 7);
  return tlv(0x87, Buffer.concat([addr, mask]));
};
/** nameConstraints with the given permitted and excluded GeneralNames */
const nc = (permitted: Buffer[], excluded: Buffer[] = []) =>
  extension(OID.nameConstraints, true, seq(...(permitted.length ? [tlv(0xa0, ...permitted.map((g) => seq(g)))] : []), ...(excluded.length ? [tlv(0xa1, ...excluded.map((g) => seq(g)))] : [])));

const rootKey = generateKey('ec-p256');
const rootName = distinguishedName('NC Test Root');
const now = Date.now();
const root = signCertificate({ serial: randomSerial(), issuerName: rootName, subjectName: rootName, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000), spki: rootKey.spki, extensions: [basicConstraints(true, 1), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(keyIdentifier(rootKey.spki))] }, createSigner(key(rootKey)));

function chain(constraint: Buffer, names: Buffer[]) {
  const intKey = generateKey('ec-p256');
  const intName = distinguishedName('NC Test Intermediate');
  const intermediate = signCertificate({ serial: randomSerial(), issuerName: rootName, subjectName: intName, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000), spki: intKey.spki, extensions: [basicConstraints(true, 0), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(keyIdentifier(intKey.spki)), authorityKeyIdentifier(keyIdentifier(rootKey.spki)), constraint] }, createSigner(key(rootKey)));
  const leafKey = generateKey('ec-p256');
  const leaf = signCertificate({ serial: randomSerial(), issuerName: intName, subjectName: distinguishedName('leaf'), notBefore: new Date(now - 60_000), notAfter: new Date(now + 3_600_000), spki: leafKey.spki, extensions: [basicConstraints(false), keyUsage(['digitalSignature']), extKeyUsage([OID.clientAuth]), authorityKeyIdentifier(keyIdentifier(intKey.spki)), subjectAltName(names)] }, createSigner(key(intKey)));
  return { intermediate, leaf };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-'));
fs.writeFileSync(path.join(dir, 'root.pem'), pemEncode('CERTIFICATE', root));
function opensslAccepts(c: { intermediate: Buffer; leaf: Buffer }): boolean {
  fs.writeFileSync(path.join(dir, 'int.pem'), pemEncode('CERTIFICATE', c.intermediate));
  fs.writeFileSync(path.join(dir, 'leaf.pem'), pemEncode('CERTIFICATE', c.leaf));
  try {
    execFileSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', path.join(dir, 'root.pem'), '-untrusted', path.join(dir, 'int.pem'), path.join(dir, 'leaf.pem')], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

test('name constraints: the forwarded path accepts and refuses what openssl verify does', () => {
  const cases: [string, Buffer, Buffer[]][] = [
    ['DNS permitted example.com, name a.example.com', nc([dnsName('example.com')]), [dnsName('a.example.com')]],
    ['DNS permitted example.com, name example.com', nc([dnsName('example.com')]), [dnsName('example.com')]],
    ['DNS permitted example.com, name badexample.com', nc([dnsName('example.com')]), [dnsName('badexample.com')]],
    ['DNS permitted example.com, name example.org', nc([dnsName('example.com')]), [dnsName('example.org')]],
    ['DNS permitted .example.com, name example.com', nc([dnsName('.example.com')]), [dnsName('example.com')]],
    ['DNS excluded evil.test, name x.evil.test', nc([], [dnsName('evil.test')]), [dnsName('x.evil.test')]],
    ['DNS excluded evil.test, name good.test', nc([], [dnsName('evil.test')]), [dnsName('good.test')]],
    ['URI permitted acme.test, name spiffe://acme.test/user/a', nc([uriName('acme.test')]), [uriName('spiffe://acme.test/user/a')]],
    ['URI permitted acme.test, name spiffe://sub.acme.test/user/a', nc([uriName('acme.test')]), [uriName('spiffe://sub.acme.test/user/a')]],
    ['URI permitted .acme.test, name spiffe://sub.acme.test/user/a', nc([uriName('.acme.test')]), [uriName('spiffe://sub.acme.test/user/a')]],
    ['URI permitted acme.test, name spiffe://ACME.test/user/a', nc([uriName('acme.test')]), [uriName('spiffe://ACME.test/user/a')]],
    ['URI permitted acme.test, name spiffe://other.test/user/a', nc([uriName('acme.test')]), [uriName('spiffe://other.test/user/a')]],
    ['URI excluded other.test, name spiffe://other.test/user/a', nc([], [uriName('other.test')]), [uriName('spiffe://other.test/user/a')]],
    ['e-mail permitted acme.test, name a@acme.test', nc([emailName('acme.test')]), [emailName('a@acme.test')]],
    ['e-mail permitted acme.test, name a@sub.acme.test', nc([emailName('acme.test')]), [emailName('a@sub.acme.test')]],
    ['e-mail permitted .acme.test, name a@sub.acme.test', nc([emailName('.acme.test')]), [emailName('a@sub.acme.test')]],
    ['e-mail permitted b@acme.test, name a@acme.test', nc([emailName('b@acme.test')]), [emailName('a@acme.test')]],
    ['IP permitted 10.0.0.0/8, name 10.1.2.3', nc([ipSubtree('10.0.0.0/8')]), [tlv(0x87, ipBytes('10.1.2.3'))]],
    ['IP permitted 10.0.0.0/8, name 11.0.0.1', nc([ipSubtree('10.0.0.0/8')]), [tlv(0x87, ipBytes('11.0.0.1'))]],
    ['DNS permitted only, name a URI', nc([dnsName('example.com')]), [uriName('spiffe://acme.test/user/a')]],
    ['URI and DNS permitted, both names within', nc([uriName('acme.test'), dnsName('acme.test')]), [uriName('spiffe://acme.test/user/a'), dnsName('x.acme.test')]],
    ['URI and DNS permitted, DNS name outside', nc([uriName('acme.test'), dnsName('acme.test')]), [uriName('spiffe://acme.test/user/a'), dnsName('x.other.test')]],
  ];
  const table: string[] = [];
  const differ: string[] = [];
  for (const [name, constraint, names] of cases) {
    const c = chain(constraint, names);
    const ours = chainConstraintProblem(parseCertificate(c.leaf), [parseCertificate(c.intermediate), parseCertificate(root)]);
    const theirs = opensslAccepts(c);
    table.push(`${name.padEnd(62)} openssl ${theirs ? 'accepts' : 'refuses'}, forwarded path ${ours ? `refuses (${ours.detail})` : 'accepts'}`);
    if (theirs !== (ours === undefined)) differ.push(name);
  }
  console.log(`# ${table.join('\n# ')}`);
  assert.deepEqual(differ, []);
});

test('a name constraint of a kind the forwarded path does not match (directoryName) refuses the chain: fail closed', () => {
  const c = chain(nc([tlv(0xa4, distinguishedName('leaf'))]), [uriName('spiffe://acme.test/user/a')]);
  assert.match(chainConstraintProblem(parseCertificate(c.leaf), [parseCertificate(c.intermediate), parseCertificate(root)])?.detail ?? 'accepted', /GeneralName tag 0xa4/);
});
