import assert from 'node:assert/strict';
import { test } from 'node:test';
import { afterFailure, nextRenewalAt, renewalTime, type FailureInput } from '../../src/client/renewal-schedule.js';

const HOUR = 3_600_000;
const notBefore = new Date(0);
const notAfter = new Date(3 * HOUR);

test('renewalTime: at the fraction of the lifetime, earlier by up to jitter of it', () => {
  assert.equal(renewalTime(notBefore, notAfter).getTime(), 2 * HOUR);
  assert.equal(renewalTime(notBefore, notAfter, 0.5).getTime(), 1.5 * HOUR);
  assert.equal(renewalTime(notBefore, notAfter, 2 / 3, 0.1, () => 0.5).getTime(), 2 * HOUR - 0.05 * 3 * HOUR);
});

test('nextRenewalAt: a certificate not yet due is renewed at renewalTime', () => {
  const at = nextRenewalAt({ notBefore, notAfter, now: HOUR, fraction: 2 / 3, jitter: 0.05, random: () => 0, afterRenewal: false });
  assert.equal(at.getTime(), 2 * HOUR);
});

test('nextRenewalAt: already due at start, the renewals of a fleet are spread over up to 30 s', () => {
  const draws = [0, 0.5];
  const at = nextRenewalAt({ notBefore, notAfter, now: 2.5 * HOUR, fraction: 2 / 3, jitter: 0.05, random: () => draws.shift()!, afterRenewal: false });
  assert.equal(at.getTime(), 2.5 * HOUR + 15_000);
  // a short lifetime spreads over its jitter only
  const short = nextRenewalAt({ notBefore, notAfter: new Date(100_000), now: 90_000, fraction: 2 / 3, jitter: 0.05, random: () => 0.5, afterRenewal: false });
  assert.equal(short.getTime(), 90_000 + 0.5 * 5000);
});

test('nextRenewalAt: a renewed certificate already due is not renewed again within a second', () => {
  const at = nextRenewalAt({ notBefore, notAfter, now: 2.5 * HOUR, fraction: 2 / 3, jitter: 0.05, random: () => 0, afterRenewal: true });
  assert.equal(at.getTime(), 2.5 * HOUR + 1000);
});

const failure = (over: Partial<FailureInput>): FailureInput => ({
  failures: 1,
  now: HOUR,
  notAfter,
  lifetimeMs: 3 * HOUR,
  permanent: false,
  retryAfterMs: undefined,
  backoff: undefined,
  random: () => 0.5,
  ...over,
});

test('afterFailure: a refusal is final', () => {
  assert.deepEqual(afterFailure(failure({ permanent: true })), { next: 'refused' });
});

test('afterFailure: within a second of the end, the certificate is given up as expired', () => {
  assert.deepEqual(afterFailure(failure({ now: notAfter.getTime() - 1000 })), { next: 'expired', leftMs: 1000 });
  assert.deepEqual(afterFailure(failure({ now: notAfter.getTime() + 5 })), { next: 'expired', leftMs: -5 });
});

test('afterFailure: jittered exponential backoff from 1 s up to 5 min', () => {
  const delays = [1, 2, 3, 20].map((failures) => (afterFailure(failure({ failures })) as { at: Date }).at.getTime() - HOUR);
  assert.deepEqual(delays, [750, 1500, 3000, 225_000]);
});

test('afterFailure: the backoff bound is a tenth of the lifetime when shorter, but at least a second', () => {
  const tenth = afterFailure(failure({ failures: 30, lifetimeMs: 600_000, random: () => 0 })) as { at: Date };
  assert.equal(tenth.at.getTime() - HOUR, 30_000);
  const floor = afterFailure(failure({ failures: 30, lifetimeMs: 1000, random: () => 0 })) as { at: Date };
  assert.equal(floor.at.getTime() - HOUR, 500);
  const custom = afterFailure(failure({ failures: 2, backoff: { initialMs: 10_000, maxMs: 15_000 }, random: () => 0 })) as { at: Date };
  assert.equal(custom.at.getTime() - HOUR, 7500);
});

test('afterFailure: Retry-After is honoured, not below a second, and never past one last try before the end', () => {
  assert.equal((afterFailure(failure({ retryAfterMs: 60_000 })) as { at: Date }).at.getTime() - HOUR, 60_000);
  assert.equal((afterFailure(failure({ retryAfterMs: 0 })) as { at: Date }).at.getTime() - HOUR, 1000);
  const late = afterFailure(failure({ retryAfterMs: 10 * HOUR })) as { at: Date };
  assert.equal(late.at.getTime(), notAfter.getTime() - 1000);
});

test('afterFailure: random is drawn only for a backoff, not for Retry-After', () => {
  let draws = 0;
  afterFailure(failure({ retryAfterMs: 5000, random: () => (draws++, 0) }));
  assert.equal(draws, 0);
  afterFailure(failure({ random: () => (draws++, 0) }));
  assert.equal(draws, 1);
});
