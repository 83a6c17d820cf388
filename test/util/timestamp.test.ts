/**
 * parseTimestamp (--not-before / --not-after, batch rows): RFC 3339 with a time zone, and a day
 * the calendar has, whatever the zone: `2026-02-30T09:00:00+01:00` must not roll over into March.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isMtlsError } from '../../src/errors.js';
import { parseTimestamp } from '../../src/util/duration.js';

test('parseTimestamp: offsets, lowercase z, fractions', () => {
  assert.equal(parseTimestamp('2026-12-01T09:00:00Z').toISOString(), '2026-12-01T09:00:00.000Z');
  assert.equal(parseTimestamp('2026-12-01t09:00:00z').toISOString(), '2026-12-01T09:00:00.000Z');
  assert.equal(parseTimestamp('2026-12-01T09:00:00+14:00').toISOString(), '2026-11-30T19:00:00.000Z');
  assert.equal(parseTimestamp('2026-12-01T09:00:00-12:00').toISOString(), '2026-12-01T21:00:00.000Z');
  assert.equal(parseTimestamp('2026-12-01T09:00:00.5+01:00').toISOString(), '2026-12-01T08:00:00.500Z');
  assert.equal(parseTimestamp('2028-02-29T09:00:00+01:00').toISOString(), '2028-02-29T08:00:00.000Z');
});

test('parseTimestamp: a day the calendar does not have is refused in every zone, not rolled over', () => {
  for (const s of ['2026-02-30T09:00:00Z', '2026-02-30T09:00:00+01:00', '2026-02-29T09:00:00-05:00', '2026-04-31T09:00:00+01:00', '2026-06-31t09:00:00-00:00', '2026-12-00T09:00:00+01:00', '2026-00-10T09:00:00+01:00']) {
    assert.throws(() => parseTimestamp(s, '--not-after'), (e) => isMtlsError(e, 'BAD_ARGUMENT') && e.message.includes(`invalid --not-after "${s}"`), s);
  }
  for (const s of ['2026-12-31T23:59:60Z', '2026-12-01T24:00:00+01:00', '2026-12-01T09:00:00+24:00', '2026-12-01T09:00:00+99:99', '2026-12-01 09:00:00Z', '2026-12-01T09:00:00']) {
    assert.throws(() => parseTimestamp(s), (e) => isMtlsError(e, 'BAD_ARGUMENT'), s);
  }
});
