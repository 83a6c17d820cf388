/** Durations as ops type them: "90s", "15m", "24h", "90d", "2w", "10y", or sums like "1h30m". */
import { MtlsError } from '../errors.js';

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

/**
 * Parses a duration as ops type it ("90s", "15m", "24h", "90d", "2w", "10y", or sums like
 * "1h30m"; a year is 365 days) into milliseconds. Surrounding whitespace is ignored.
 *
 * @param what - names the value in error messages, e.g. `--ttl`
 * @throws MtlsError `BAD_DURATION` when malformed, zero, or over 1000y
 */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim();
  if (!/^(\d+[smhdwy])+$/.test(s)) {
    throw new MtlsError('BAD_DURATION', `invalid ${what} "${text}"`, {
      hint: 'write a number and a unit: s, m, h, d, w or y (e.g. 24h, 90d, 10y, 1h30m)',
    });
  }
  let ms = 0;
  for (const [, n, unit] of s.matchAll(/(\d+)([smhdwy])/g)) ms += Number(n) * (UNIT_MS[unit as string] as number);
  if (!Number.isSafeInteger(ms) || ms > 1000 * UNIT_MS.y!) throw new MtlsError('BAD_DURATION', `${what} "${text}" is too long`, { hint: 'durations go up to 1000y' });
  if (ms <= 0) throw new MtlsError('BAD_DURATION', `${what} "${text}" must be positive`, { hint: 'e.g. 24h' });
  return ms;
}

/** True when `parseDuration` accepts the text (for validation schemas, which report their own message). */
export function isDuration(text: string): boolean {
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}

/** A short human form: "23h 59m", "89d", "9y 364d". */
export function formatDuration(ms: number): string {
  const neg = ms < 0;
  let rest = Math.abs(ms);
  const parts: string[] = [];
  for (const [unit, size] of [['y', UNIT_MS.y], ['d', UNIT_MS.d], ['h', UNIT_MS.h], ['m', UNIT_MS.m]] as const) {
    const n = Math.floor(rest / (size as number));
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * (size as number);
    if (parts.length === 2) break;
  }
  const out = parts.length ? parts.join(' ') : `${Math.round(rest / 1000)}s`;
  return neg ? `-${out}` : out;
}

/** days in a month (1-12) of a year (years 0-99 too, which Date.UTC would take as 19xx) */
const daysIn = (year: number, month: number): number => new Date(new Date(0).setUTCFullYear(year, month, 0)).getUTCDate();

/**
 * Parses an RFC 3339 date-time with a time zone ("2026-12-01T09:00:00Z",
 * "2026-12-01T10:00:00.5+01:00"; `t`/`z` in lowercase too), as --not-before and --not-after take it.
 *
 * @param what - names the value in error messages, e.g. `--not-after`
 * @throws MtlsError `BAD_ARGUMENT` when it is not one, or names no real time (February 30th)
 */
export function parseTimestamp(text: string, what = 'time'): Date {
  const s = text.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(s);
  const d = m ? new Date(s.toUpperCase()) : undefined;
  // Date rolls over (02-30 becomes 03-02), in every zone: the day must be one its month has
  const [year, month, day] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  const real = d && !Number.isNaN(d.getTime()) && month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month);
  if (!d || !real || Number(m![4]) > 23 || Number(m![5]) > 59 || Number(m![6]) > 59) {
    throw new MtlsError('BAD_ARGUMENT', `invalid ${what} "${text}": not an RFC 3339 time`, { hint: 'write a date, a time and a time zone, e.g. 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00' });
  }
  return d;
}
