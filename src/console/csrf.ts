/**
 * CSRF protection for the console. The browser sends the operator's client certificate with
 * every request to this origin, whichever page made it, so a certificate alone must never be
 * enough to change anything. Every POST needs all of:
 *
 * - `X-Console-Csrf`: an HMAC of the operator certificate's fingerprint under a key every
 *   replica shares (console.ts derives it from the CA key with HKDF: the `ca serve` replicas
 *   behind one load balancer all hold that key, nobody else does, so a page loaded from one
 *   replica posts to another); the page reads it from GET /console/api/session, which another
 *   origin cannot read (no CORS headers) and which is worthless to another certificate;
 * - `Content-Type: application/json` (an HTML form cannot send it; a cross-origin fetch with it
 *   and a custom header needs a preflight the console never answers);
 * - `Sec-Fetch-Site: same-origin` when the browser sends it, and an `Origin` that is this
 *   server's own when sent.
 */
import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../ca/serve/http.js';

export const CSRF_HEADER = 'x-console-csrf';

export interface CsrfGuard {
  /** the token for this certificate (base64url) */
  tokenFor(fingerprint: string): Promise<string>;
  /** throws 403 CSRF_REFUSED unless the request carries everything a state change needs */
  check(req: IncomingMessage, fingerprint: string): Promise<void>;
}

/** `key`: the HMAC key, or how to get it (asked once); default a random one (this process only). */
export function createCsrfGuard(key: Buffer | (() => Promise<Buffer>) = crypto.randomBytes(32)): CsrfGuard {
  let keyOnce: Promise<Buffer> | undefined;
  const getKey = (): Promise<Buffer> => {
    if (Buffer.isBuffer(key)) return Promise.resolve(key);
    keyOnce ??= key();
    keyOnce.catch(() => (keyOnce = undefined));
    return keyOnce;
  };
  const tokenFor = async (fingerprint: string) => crypto.createHmac('sha256', await getKey()).update(`console-csrf:${fingerprint}`).digest('base64url');
  const refuse = (why: string) => new HttpError(403, 'CSRF_REFUSED', `refused: ${why}`, 'use the console page itself; scripts send the X-Console-Csrf header from GET /console/api/session');
  return {
    tokenFor,
    async check(req, fingerprint) {
      const given = req.headers[CSRF_HEADER];
      const want = Buffer.from(await tokenFor(fingerprint));
      if (typeof given !== 'string' || given.length !== want.length || !crypto.timingSafeEqual(Buffer.from(given), want)) throw refuse('the request has no valid X-Console-Csrf header');
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') throw refuse('a console action is sent as application/json');
      const site = req.headers['sec-fetch-site'];
      if (site !== undefined && site !== 'same-origin') throw refuse(`the request came from another site (Sec-Fetch-Site: ${String(site).slice(0, 40)})`);
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `https://${req.headers.host ?? ''}`) throw refuse('the request came from another origin');
    },
  };
}
