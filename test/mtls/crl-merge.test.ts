import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isMtlsError } from '../../src/errors.js';
import { mergeFetchedCrls } from '../../src/mtls/crl-merge.js';
import type { VerifiedCrl } from '../../src/mtls/revocation.js';

const crl = (caKey: string, number: number): VerifiedCrl => ({
  der: Buffer.alloc(0),
  caKey,
  issuerNameHex: '',
  issuer: `CN=${caKey}`,
  number: BigInt(number),
  thisUpdate: new Date(number * 1000),
  nextUpdate: undefined,
  serials: new Set(),
});

test('a newer CRL than the applied one replaces what the URL held for its CA', () => {
  const r = mergeFetchedCrls([crl('a', 1)], [crl('a', 2)], [crl('a', 1)]);
  assert.equal(r.newer, true);
  assert.deepEqual(r.crls.map((c) => c.number), [2n]);
});

test('the same CRL again is not newer', () => {
  const r = mergeFetchedCrls([crl('a', 2)], [crl('a', 2)], [crl('a', 2)]);
  assert.equal(r.newer, false);
  assert.equal(r.crls.length, 1);
});

test("an answer without a CA's CRL keeps the one the URL gave for it before", () => {
  const r = mergeFetchedCrls([crl('a', 3), crl('b', 1)], [crl('b', 2)], [crl('a', 3), crl('b', 1)]);
  assert.deepEqual(r.crls.map((c) => [c.caKey, c.number]), [['a', 3n], ['b', 2n]]);
});

test('a CRL older than the applied one (from a file, or an earlier fetch) is refused as a replay', () => {
  assert.throws(() => mergeFetchedCrls([], [crl('a', 1)], [crl('a', 1), crl('a', 5)]), (e) => isMtlsError(e, 'CRL_INVALID') && /#1 of CN=a is older than the #5 applied/.test(e.message));
});

test("a first CRL for a CA nothing is applied for is newer", () => {
  assert.equal(mergeFetchedCrls([], [crl('c', 1)], [crl('a', 9)]).newer, true);
});
