import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextFetchDelay, type CrlFetchTiming } from '../../src/mtls/crl-schedule.js';

const timing = (over: Partial<CrlFetchTiming>): CrlFetchTiming => ({
  failures: 0,
  intervalMs: 300_000,
  maxAgeMs: undefined,
  crls: [],
  now: 1_000_000,
  retryMs: 5_000,
  minMaxAgeMs: 30_000,
  ...over,
});

test('after a success: the interval', () => {
  assert.equal(nextFetchDelay(timing({})), 300_000);
});

test('after failures: 5 s doubling up to the interval, without jitter', () => {
  assert.deepEqual([1, 2, 3, 6, 7, 100].map((failures) => nextFetchDelay(timing({ failures }))), [5_000, 10_000, 20_000, 160_000, 300_000, 300_000]);
  // an interval shorter than the first retry: the interval
  assert.equal(nextFetchDelay(timing({ failures: 1, intervalMs: 2_000 })), 2_000);
});

test('a shorter Cache-Control max-age is honoured, not below 30 s', () => {
  assert.equal(nextFetchDelay(timing({ maxAgeMs: 60_000 })), 60_000);
  assert.equal(nextFetchDelay(timing({ maxAgeMs: 1_000 })), 30_000);
  assert.equal(nextFetchDelay(timing({ maxAgeMs: 3_600_000 })), 300_000);
});

test("a held CRL's nextUpdate before the next fetch: fetched again just after it, not sooner than the retry delay", () => {
  assert.equal(nextFetchDelay(timing({ crls: [{ nextUpdate: new Date(1_000_000 + 60_000) }] })), 61_000);
  assert.equal(nextFetchDelay(timing({ crls: [{ nextUpdate: new Date(1_000_000 + 100) }] })), 5_000);
  // already past, or without nextUpdate: the interval
  assert.equal(nextFetchDelay(timing({ crls: [{ nextUpdate: new Date(0) }, { nextUpdate: undefined }] })), 300_000);
});
