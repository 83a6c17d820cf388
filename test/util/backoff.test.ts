import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../src/util/backoff.js';

test('the delay doubles from initialMs and stops at maxMs', () => {
  const bounds = { initialMs: 1000, maxMs: 300_000 };
  assert.deepEqual([1, 2, 3, 4, 9, 10, 100].map((n) => backoffDelay(n, bounds)), [1000, 2000, 4000, 8000, 256_000, 300_000, 300_000]);
});

test('with random, the delay is half to all of the doubled one', () => {
  const bounds = { initialMs: 1000, maxMs: 300_000 };
  assert.equal(backoffDelay(3, bounds, () => 0), 2000);
  assert.equal(backoffDelay(3, bounds, () => 0.5), 3000);
  assert.equal(backoffDelay(3, bounds, () => 0.999), 3998);
});

test('maxDoublings stops the doubling below maxMs', () => {
  const bounds = { initialMs: 5000, maxMs: 10 ** 12, maxDoublings: 20 };
  assert.equal(backoffDelay(21, bounds), 5000 * 2 ** 20);
  assert.equal(backoffDelay(50, bounds), 5000 * 2 ** 20);
  assert.equal(backoffDelay(50, { initialMs: 5000, maxMs: 10 ** 12 }), 10 ** 12);
});

test('a huge failure count stays finite', () => {
  assert.equal(backoffDelay(Number.MAX_SAFE_INTEGER, { initialMs: 1, maxMs: 7 }), 7);
});
