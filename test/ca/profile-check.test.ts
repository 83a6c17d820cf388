import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enforceProfile } from '../../src/ca/profile-check.js';
import { clientFields } from '../../src/ca/profiles.js';
import { normalizeClaims } from '../../src/identity/encode.js';
import { extension, extKeyUsage } from '../../src/x509/extensions.js';
import { generateKey } from '../../src/x509/keys.js';
import { randomSerial } from '../../src/x509/certificate.js';
import { isMtlsError } from '../../src/errors.js';
import { OID } from '../../src/x509/oids.js';

const issuer = { subjectName: Buffer.from('3000', 'hex'), keyId: Buffer.alloc(20, 1), notAfter: new Date('2030-01-01Z') };
const key = generateKey('ec-p256');
const good = clientFields(issuer, {
  serial: randomSerial(),
  notBefore: new Date('2026-01-01Z'),
  notAfter: new Date('2026-01-02Z'),
  spki: key.spki,
  keyType: 'ec-p256',
  claims: normalizeClaims({ trustDomain: 'acme.test', kind: 'user', id: 'alice', teams: ['sre'], roles: [] }),
});
const refused = (e: unknown) => isMtlsError(e, 'PROFILE_VIOLATION');

test('a certificate built from the client profile passes', () => {
  enforceProfile('client', good, issuer.notAfter);
});

test('each violation refuses the issuance with its reason', () => {
  assert.throws(() => enforceProfile('client', { ...good, notAfter: new Date('2031-01-01Z') }, issuer.notAfter), (e) => refused(e) && /past the issuer/.test((e as Error).message));
  assert.throws(() => enforceProfile('client', { ...good, notBefore: good.notAfter }, issuer.notAfter), refused);
  assert.throws(() => enforceProfile('client', { ...good, serial: Buffer.from([1, 2, 3]) }, issuer.notAfter), refused);
  assert.throws(() => enforceProfile('client', { ...good, serial: Buffer.alloc(16, 0x80) }, issuer.notAfter), refused);
  assert.throws(() => enforceProfile('client', { ...good, extensions: [...good.extensions, extKeyUsage([OID.serverAuth])] }, issuer.notAfter), (e) => refused(e) && /appears twice/.test((e as Error).message));
  assert.throws(() => enforceProfile('client', { ...good, extensions: good.extensions.slice(1) }, issuer.notAfter), (e) => refused(e) && /missing/.test((e as Error).message));
  assert.throws(() => enforceProfile('client', { ...good, extensions: [...good.extensions, extension('1.2.3.4', true, Buffer.from('0500', 'hex'))] }, issuer.notAfter), (e) => refused(e) && /not part of the client profile/.test((e as Error).message));
  assert.throws(() => enforceProfile('server', good, issuer.notAfter), refused, 'the identity extension is not part of the server profile');
});
