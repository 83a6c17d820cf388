/**
 * The committed golden certificate vectors (test/fixtures/make-vectors.ts) read by three
 * parsers that share no code: ours (decodeIdentity), OpenSSL, and the Python oracle
 * (test/oracle/identity_oracle.py, python `cryptography` plus its own DER walk).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkClientCertificate, decodeIdentity } from '../../src/identity/decode.js';
import { parseCertificate } from '../../src/x509/certificate.js';
import { OID } from '../../src/x509/oids.js';
import { isMtlsError, type ErrorCode } from '../../src/errors.js';
import { openssl, ROOT, run, tmpDir } from '../support/cli.js';

const DIR = path.join(ROOT, 'test', 'fixtures', 'vectors');
const GOLDEN_HEX =
  '3071301f06082b06010505070a0431133011300f0c08706c6174666f726d0c03737265304e06035504' +
  '4831473021a11f861d7370696666653a2f2f61636d652e746573742f726f6c652f61646d696e3022a1' +
  '20861e7370696666653a2f2f61636d652e746573742f726f6c652f6f6e63616c6c';

const GOOD = {
  'good-teams-roles': { principal: 'spiffe://acme.test/user/alice', kind: 'user', id: 'alice', teams: ['platform', 'sre'], roles: ['admin', 'oncall'], email: 'alice@acme.test' },
  'good-no-claims': { principal: 'spiffe://acme.test/service/bot', kind: 'service', id: 'bot', teams: [], roles: [] },
} as const;

const BAD: Record<string, ErrorCode> = {
  'bad-duplicate-attribute': 'IDENTITY_DUPLICATE_ATTRIBUTE',
  'bad-wrong-value-type': 'IDENTITY_BAD_VALUE_TYPE',
  'bad-foreign-role-domain': 'IDENTITY_FOREIGN_TRUST_DOMAIN',
  'bad-name': 'IDENTITY_BAD_NAME',
  'bad-two-uri-sans': 'IDENTITY_URI_SAN_COUNT',
};

const read = (name: string) => fs.readFileSync(path.join(DIR, `${name}.der`));

test('the good vector carries the golden extension bytes', () => {
  const cert = parseCertificate(read('good-teams-roles'));
  assert.equal(cert.extensions.get(OID.subjectDirectoryAttributes)?.value.toString('hex'), GOLDEN_HEX);
  assert.equal(cert.extensions.get(OID.subjectDirectoryAttributes)?.critical, false);
});

for (const [name, expected] of Object.entries(GOOD)) {
  test(`decodeIdentity accepts ${name}`, () => {
    const der = read(name);
    checkClientCertificate(parseCertificate(der));
    const id = decodeIdentity(der, { trustDomains: ['acme.test'] });
    assert.deepEqual({ principal: id.principal, kind: id.kind, id: id.id, teams: [...id.teams], roles: [...id.roles], ...(id.email ? { email: id.email } : {}) }, expected);
    assert.equal(id.trustDomain, 'acme.test');
    assert.ok(Object.isFrozen(id) && Object.isFrozen(id.teams));
  });
}

for (const [name, code] of Object.entries(BAD)) {
  test(`decodeIdentity rejects ${name} with ${code}`, () => {
    assert.throws(() => decodeIdentity(read(name), { trustDomains: ['acme.test'] }), (e) => isMtlsError(e, code));
  });
}

test('a principal from a trust domain that is not accepted is refused', () => {
  assert.throws(() => decodeIdentity(read('good-no-claims'), { trustDomains: ['other.test'] }), (e) => isMtlsError(e, 'IDENTITY_FOREIGN_TRUST_DOMAIN'));
});

test('OpenSSL parses every vector and verifies its signature', async () => {
  for (const name of [...Object.keys(GOOD), ...Object.keys(BAD)]) {
    const pem = await openssl(['x509', '-inform', 'DER', '-in', path.join(DIR, `${name}.der`)]);
    assert.equal(pem.code, 0, `${name}: ${pem.stderr}`);
    const verify = await runOpensslVerify(pem.stdout);
    assert.equal(verify.code, 0, `${name}: ${verify.stderr}${verify.stdout}`);
  }
});

async function runOpensslVerify(leafPem: string) {
  const tmp = path.join(tmpDir(), 'leaf.pem');
  fs.writeFileSync(tmp, leafPem);
  try {
    return await openssl(['verify', '-CAfile', path.join(DIR, 'ca.crt'), '-purpose', 'sslclient', tmp]);
  } finally {
    fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
  }
}

const ORACLE = path.join(ROOT, 'test', 'oracle', 'identity_oracle.py');

test('the independent Python oracle agrees on every vector', async () => {
  const names = [...Object.keys(GOOD), ...Object.keys(BAD)];
  const r = await run('python3', [ORACLE, ...names.map((n) => path.join(DIR, `${n}.der`)), '--trust-domain', 'acme.test']);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, names.length, r.stderr);
  names.forEach((name, i) => {
    const line = lines[i];
    if (name in GOOD) {
      const ours = decodeIdentity(read(name));
      assert.equal(line.ok, true, `${name}: ${JSON.stringify(line)}`);
      assert.deepEqual(
        { principal: line.principal, teams: line.teams, roles: line.roles, email: line.email, serial: line.serial, fingerprint: line.fingerprint, notAfter: line.notAfter },
        { principal: ours.principal, teams: [...ours.teams], roles: [...ours.roles], email: ours.email, serial: ours.serial, fingerprint: ours.fingerprint, notAfter: ours.notAfter.toISOString() },
      );
    } else {
      assert.equal(line.ok, false, name);
      assert.equal(line.code, BAD[name], name);
    }
  });
});
