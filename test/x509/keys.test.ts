/**
 * importSpki (src/x509/keys.ts): the public key of a SubjectPublicKeyInfo exactly as
 * crypto.createPublicKey reads it from DER, by a cheaper road for the one encoding of an
 * uncompressed P-256 or P-384 key (verifyCsr's, #24).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { verifyCsr, createCsr } from '../../src/x509/csr.js';
import { generateKey, importSpki, KEY_TYPES } from '../../src/x509/keys.js';
import { isMtlsError } from '../../src/errors.js';

const der = (spki: Uint8Array) => crypto.createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
const outcome = (f: () => crypto.KeyObject): string => {
  try {
    return `key ${f().export({ format: 'der', type: 'spki' }).toString('hex')}`;
  } catch {
    return 'refused';
  }
};

test('importSpki: the same key as the DER decoder, for every key type', () => {
  for (const type of KEY_TYPES) {
    for (let i = 0; i < 5; i++) {
      const k = generateKey(type);
      const key = importSpki(k.spki);
      assert.ok(key.equals(der(k.spki)), `${type}: the same key`);
      assert.ok(key.export({ format: 'der', type: 'spki' }).equals(Buffer.from(k.spki)), `${type}: exports to the same SPKI`);
    }
  }
});

test('importSpki: whatever the DER decoder refuses it refuses: a point off its curve, a changed header, a compressed point, trailing bytes', () => {
  for (const type of ['ec-p256', 'ec-p384'] as const) {
    const spki = Buffer.from(generateKey(type).spki);
    const size = type === 'ec-p256' ? 32 : 48;
    const offCurve = Buffer.from(spki);
    offCurve[offCurve.length - 1]! ^= 1; // y changed: (x, y) is no longer on the curve
    const xTooBig = Buffer.concat([spki.subarray(0, spki.length - 2 * size), Buffer.alloc(size, 0xff), spki.subarray(spki.length - size)]);
    const zeros = Buffer.concat([spki.subarray(0, spki.length - 2 * size), Buffer.alloc(2 * size)]);
    const hybrid = Buffer.from(spki);
    hybrid[spki.length - 2 * size - 1] = 6; // 0x06: not the uncompressed form
    const trailing = Buffer.concat([spki, Buffer.from([0])]);
    const otherCurve = Buffer.from(spki);
    otherCurve[type === 'ec-p256' ? 22 : 19]! ^= 1; // a byte of the named curve's OID
    for (const [what, bytes] of Object.entries({ offCurve, xTooBig, zeros, hybrid, trailing, otherCurve })) {
      assert.equal(outcome(() => importSpki(bytes)), outcome(() => der(bytes)), `${type} ${what}`);
    }
    assert.equal(outcome(() => importSpki(offCurve)), 'refused', `${type}: a point off the curve is refused`);
  }
});

test('verifyCsr: a CSR whose P-256 key is off the curve is refused (CSR_INVALID), a good one verifies', () => {
  const k = generateKey('ec-p256');
  const csr = createCsr(k, 'c');
  assert.ok(Buffer.from(verifyCsr(csr).spki).equals(Buffer.from(k.spki)));
  const at = csr.indexOf(Buffer.from(k.spki));
  const bad = Buffer.from(csr);
  bad[at + k.spki.length - 1]! ^= 1;
  assert.throws(() => verifyCsr(bad), (e) => isMtlsError(e, 'CSR_INVALID'));
});
