import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeIdentityAttributes, encodeIdentityAttributes } from '../../src/x509/identity-extension.js';
import { isMtlsError, type ErrorCode } from '../../src/errors.js';
import { oidDer, seq, setOf, tlv, utf8Der, octetDer } from '../../src/x509/der.js';
import { uriName } from '../../src/x509/extensions.js';
import { OID } from '../../src/x509/oids.js';

// identity.md "Golden vector": teams sre, platform; roles oncall, admin; trust domain acme.test
const GOLDEN =
  '3071301f06082b06010505070a0431133011300f0c08706c6174666f726d0c03737265304e06035504' +
  '4831473021a11f861d7370696666653a2f2f61636d652e746573742f726f6c652f61646d696e3022a1' +
  '20861e7370696666653a2f2f61636d652e746573742f726f6c652f6f6e63616c6c';

test('encoding the golden claims gives the golden vector byte for byte', () => {
  const der = encodeIdentityAttributes({ teams: ['sre', 'platform'], roleUris: ['spiffe://acme.test/role/oncall', 'spiffe://acme.test/role/admin'] });
  assert.equal(der?.toString('hex'), GOLDEN);
});

test('input order and duplicates do not change the encoding', () => {
  const der = encodeIdentityAttributes({ teams: ['platform', 'sre', 'sre'], roleUris: ['spiffe://acme.test/role/admin', 'spiffe://acme.test/role/oncall', 'spiffe://acme.test/role/admin'] });
  assert.equal(der?.toString('hex'), GOLDEN);
});

test('no teams and no roles means no extension; one of them writes only that attribute', () => {
  assert.equal(encodeIdentityAttributes({ teams: [], roleUris: [] }), undefined);
  const teamsOnly = encodeIdentityAttributes({ teams: ['sre'], roleUris: [] })!;
  assert.deepEqual(decodeIdentityAttributes(teamsOnly), { teams: ['sre'], roleUris: [] });
  const rolesOnly = encodeIdentityAttributes({ teams: [], roleUris: ['spiffe://acme.test/role/admin'] })!;
  assert.deepEqual(decodeIdentityAttributes(rolesOnly), { teams: [], roleUris: ['spiffe://acme.test/role/admin'] });
});

test('the golden vector decodes to the golden claims', () => {
  assert.deepEqual(decodeIdentityAttributes(Buffer.from(GOLDEN, 'hex')), {
    teams: ['platform', 'sre'],
    roleUris: ['spiffe://acme.test/role/admin', 'spiffe://acme.test/role/oncall'],
  });
});

const teamsAttr = (...values: Buffer[]) => seq(oidDer(OID.group), setOf([seq(seq(...values))]));
const roleAttr = (...roleSyntax: Buffer[]) => seq(oidDer(OID.role), setOf(roleSyntax));
const role = (uri: string) => seq(tlv(0xa1, uriName(uri)));

const MALFORMED: [string, Buffer, ErrorCode][] = [
  ['duplicate teams attribute', seq(teamsAttr(utf8Der('a')), teamsAttr(utf8Der('b'))), 'IDENTITY_DUPLICATE_ATTRIBUTE'],
  ['duplicate roles attribute', seq(roleAttr(role('spiffe://t/role/a')), roleAttr(role('spiffe://t/role/b'))), 'IDENTITY_DUPLICATE_ATTRIBUTE'],
  ['team as OCTET STRING', seq(teamsAttr(octetDer(Buffer.from('sre')))), 'IDENTITY_BAD_VALUE_TYPE'],
  ['team as OID', seq(teamsAttr(oidDer('1.2.3'))), 'IDENTITY_BAD_VALUE_TYPE'],
  ['IetfAttrSyntax with policyAuthority', seq(seq(oidDer(OID.group), setOf([seq(tlv(0xa0, uriName('x:y')), seq(utf8Der('a')))]))), 'IDENTITY_BAD_VALUE_TYPE'],
  ['values wrapped in a SEQUENCE (the asn1-x509-attr bug)', seq(seq(oidDer(OID.group), setOf([seq(seq(seq(utf8Der('a'))))]))), 'IDENTITY_BAD_VALUE_TYPE'],
  ['empty roleName (the asn1-x509-attr bug)', seq(roleAttr(seq(tlv(0xa1)))), 'IDENTITY_BAD_VALUE_TYPE'],
  ['role with roleAuthority', seq(roleAttr(seq(tlv(0xa0, uriName('x:y')), tlv(0xa1, uriName('spiffe://t/role/a'))))), 'IDENTITY_BAD_VALUE_TYPE'],
  ['roleName as dNSName', seq(roleAttr(seq(tlv(0xa1, tlv(0x82, Buffer.from('admin')))))), 'IDENTITY_BAD_VALUE_TYPE'],
  ['empty attribute list', seq(), 'IDENTITY_MALFORMED'],
  ['attribute without values', seq(seq(oidDer(OID.group), tlv(0x31))), 'IDENTITY_MALFORMED'],
  ['truncated', Buffer.from(GOLDEN, 'hex').subarray(0, 40), 'IDENTITY_MALFORMED'],
  ['trailing garbage', Buffer.concat([Buffer.from(GOLDEN, 'hex'), Buffer.from([0])]), 'IDENTITY_MALFORMED'],
];

for (const [name, der, code] of MALFORMED) {
  test(`decode rejects ${name} with ${code}`, () => {
    assert.throws(() => decodeIdentityAttributes(der), (e) => isMtlsError(e, code));
  });
}

test('unknown attribute types are ignored', () => {
  const der = seq(seq(oidDer('2.5.4.10'), setOf([utf8Der('x')])), teamsAttr(utf8Der('sre')));
  assert.deepEqual(decodeIdentityAttributes(der), { teams: ['sre'], roleUris: [] });
});

test('strictness the Python oracle asked for: invalid UTF-8, unsorted SET, broken unknown attribute', () => {
  const badUtf8 = seq(teamsAttr(tlv(0x0c, Buffer.from([0xc3, 0x28]))));
  assert.throws(() => decodeIdentityAttributes(badUtf8), (e) => isMtlsError(e, 'IDENTITY_MALFORMED'));
  const unsorted = seq(seq(oidDer(OID.role), tlv(0x31, role('spiffe://t/role/oncall'), role('spiffe://t/role/admin'))));
  assert.throws(() => decodeIdentityAttributes(unsorted), (e) => isMtlsError(e, 'IDENTITY_MALFORMED'));
  const brokenUnknown = seq(seq(oidDer('2.5.4.10'), setOf([Buffer.from('3003300100', 'hex')])));
  assert.throws(() => decodeIdentityAttributes(brokenUnknown), (e) => isMtlsError(e, 'IDENTITY_MALFORMED'));
});
