import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeOid, decodeTime, integerHex, oidDer, readTlv, readWhole, smallIntDer, tlv, timeDer, uintDer, setOf, TAG } from '../../src/x509/der.js';
import { isMtlsError } from '../../src/errors.js';

test('lengths use the minimal DER form at each boundary', () => {
  for (const n of [0, 1, 127, 128, 255, 256, 65535, 65536]) {
    const der = tlv(0x04, Buffer.alloc(n));
    const t = readWhole(der, 0x04);
    assert.equal(t.end - t.contentStart, n);
    assert.equal(der.length, n + (n < 128 ? 2 : n < 256 ? 3 : n < 65536 ? 4 : 5));
  }
});

test('the reader refuses indefinite, non-minimal and overlong lengths and trailing bytes', () => {
  const bad = ['3080', '048100', '04820005' + '00'.repeat(5), '0405000000', '040100ff', '1f0100'];
  for (const hex of bad) {
    assert.throws(() => readWhole(Buffer.from(hex, 'hex')), (e) => isMtlsError(e, 'DER_MALFORMED'), hex);
  }
  assert.throws(() => readTlv(Buffer.from('30', 'hex'), 0), (e) => isMtlsError(e, 'DER_MALFORMED'));
});

test('OIDs round-trip, including large arcs', () => {
  for (const oid of ['2.5.29.9', '1.3.6.1.5.5.7.10.4', '1.2.840.113549.1.1.11', '2.999.1234567890123', '1.3.101.112']) {
    const der = oidDer(oid);
    assert.equal(decodeOid(der.subarray(2)), oid);
  }
  assert.equal(oidDer('2.5.4.72').toString('hex'), '0603550448');
});

test('integers are positive and minimal', () => {
  assert.equal(uintDer(Buffer.from([0x80])).toString('hex'), '02020080');
  assert.equal(uintDer(Buffer.from([0, 0, 5])).toString('hex'), '020105');
  assert.equal(smallIntDer(0).toString('hex'), '020100');
  assert.equal(integerHex(Buffer.from([0x00, 0x80])), '80');
  assert.equal(integerHex(Buffer.from([0x05])), '05');
  assert.throws(() => integerHex(Buffer.from([0x00, 0x05])), (e) => isMtlsError(e, 'DER_MALFORMED'));
});

test('times switch from UTCTime to GeneralizedTime in 2050 (RFC 5280 4.1.2.5)', () => {
  const a = timeDer(new Date('2049-12-31T23:59:59Z'));
  const b = timeDer(new Date('2050-01-01T00:00:00Z'));
  assert.equal(a[0], TAG.UTC_TIME);
  assert.equal(a.subarray(2).toString(), '491231235959Z');
  assert.equal(b[0], TAG.GENERALIZED_TIME);
  assert.equal(b.subarray(2).toString(), '20500101000000Z');
  assert.equal(decodeTime(a[0]!, a.subarray(2)).toISOString(), '2049-12-31T23:59:59.000Z');
  assert.equal(decodeTime(b[0]!, b.subarray(2)).toISOString(), '2050-01-01T00:00:00.000Z');
});

test('SET OF sorts by encoding, shorter padded with zeros', () => {
  const x = Buffer.from('0401ff', 'hex');
  const y = Buffer.from('040100', 'hex');
  const z = Buffer.from('04020000', 'hex');
  assert.equal(setOf([x, z, y]).toString('hex'), '31' + '0a' + '040100' + '0401ff' + '04020000');
});
