/**
 * PostgreSQL URLs (the CA store's, a decisions sink's): checked before anything connects, and
 * shown without password. A URL never carries the password: it would sit in argv, process lists
 * and config files. In util/ because both ca/store/ and mtls/ (which does not import ca/) check them.
 */
import { MtlsError } from '../errors.js';

// the driver takes these query parameters as secrets too (pg-connection-string: ?password= is the password)
const SECRET_PARAMS = ['password', 'sslpassword'];

/** A connection URL without password, for messages (`postgres://user@host:port/db`). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    for (const k of SECRET_PARAMS) u.searchParams.delete(k);
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** What differs between the URLs checked here: how messages name it and what its hints suggest. */
export interface PostgresUrlUse {
  /** how messages name the URL: "the store URL", "the URL" */
  name: string;
  /** a well-formed example, for an unparsable URL */
  example: string;
  /** the hint for a URL that is not postgres:// */
  otherScheme: string;
}

/** The CA store's `--store` / `store:` URL. */
export const STORE_URL: PostgresUrlUse = {
  name: 'the store URL',
  example: 'e.g. postgres://ca@db.internal:5432/mcp_ca',
  otherScheme: 'use postgres://USER@HOST:PORT/DATABASE, or "folder" (the default) for the CA folder',
};

/** Refuses a URL that is not postgres:// or carries a password: it would sit in argv, process lists and config files. */
export function assertNoPassword(url: string, where: string, use: PostgresUrlUse = STORE_URL): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MtlsError('USAGE', `${where}: "${redactUrl(url)}" is not a PostgreSQL URL`, { hint: use.example });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new MtlsError('USAGE', `${where}: "${u.protocol}" is not a PostgreSQL URL`, { hint: use.otherScheme });
  }
  if (u.password || SECRET_PARAMS.some((k) => u.searchParams.has(k))) {
    throw new MtlsError('USAGE', `${where}: ${use.name} holds a password; secrets never go on the command line, into config files or code`, {
      hint: 'remove it from the URL and set PGPASSWORD, or put it in ~/.pgpass (mode 0600)',
    });
  }
}
