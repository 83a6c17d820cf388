/**
 * What the PostgreSQL store reports when the database fails it: the driver's errors become
 * `STORE_UNAVAILABLE` with a hint for the operator; the caller's own errors (MtlsError, and
 * errors thrown inside a transaction's callback) pass unchanged.
 */
import { MtlsError } from '../../errors.js';
import { redactUrl } from '../../util/postgres-url.js';

/**
 * SQLSTATEs of a refused login: 28P01 invalid_password, 28000 invalid_authorization_specification
 * (an unknown role, or no pg_hba.conf rule for it). A wrong database password, not a locked CA
 * key: it was reported as `CA_KEY_LOCKED` once, which sent operators after the key passphrase.
 */
const LOGIN_REFUSED = new Set(['28P01', '28000']);

/** A driver or connection error as the store reports it. */
export function storeError(url: string, e: unknown): MtlsError {
  if (e instanceof MtlsError) return e;
  const err = e as { code?: string; message?: string };
  const detail = err.message ?? String(e);
  if (err.code !== undefined && LOGIN_REFUSED.has(err.code)) {
    return new MtlsError('STORE_UNAVAILABLE', `cannot use the store ${redactUrl(url)}: the database refused the login: ${detail}`, {
      cause: e,
      hint: 'check the user in the URL and its password: PGPASSWORD, or ~/.pgpass (mode 0600)',
    });
  }
  return new MtlsError('STORE_UNAVAILABLE', `cannot use the store ${redactUrl(url)}: ${detail}`, {
    cause: e,
    hint: 'check that PostgreSQL runs and the URL (host, port, database) is right',
  });
}

/** An error of the database or the connection to it (not one of the caller's own). */
export function isDriverError(e: unknown): boolean {
  if (e instanceof MtlsError || !(e instanceof Error)) return false;
  const x = e as { severity?: unknown; code?: unknown };
  return x.severity !== undefined || (typeof x.code === 'string' && /^E[A-Z]+$/.test(x.code)) || /Connection terminated|timeout exceeded when trying to connect/i.test(e.message);
}

/** A unique constraint violated (23505), by name when given. */
export const isUniqueViolation = (e: unknown, constraint?: string): boolean =>
  (e as { code?: string }).code === '23505' && (constraint === undefined || (e as { constraint?: string }).constraint === constraint);
