/**
 * PostgreSQL store URLs: checked before anything connects, and shown without password. A URL
 * never carries the password: it would sit in argv, process lists and config files.
 */
import { MtlsError } from '../../errors.js';

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

/** Refuses a URL that carries a password: it would sit in argv, process lists and config files. */
export function assertNoPassword(url: string, where: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MtlsError('USAGE', `${where}: "${redactUrl(url)}" is not a PostgreSQL URL`, { hint: 'e.g. postgres://ca@db.internal:5432/mcp_ca' });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new MtlsError('USAGE', `${where}: "${u.protocol}" is not a store URL`, { hint: 'use postgres://USER@HOST:PORT/DATABASE, or "folder" (the default) for the CA folder' });
  }
  if (u.password || SECRET_PARAMS.some((k) => u.searchParams.has(k))) {
    throw new MtlsError('USAGE', `${where}: the store URL holds a password; secrets never go on the command line or into config files`, {
      hint: 'remove it from the URL and set PGPASSWORD, or put it in ~/.pgpass (mode 0600)',
    });
  }
}
