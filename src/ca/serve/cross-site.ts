/**
 * Endpoints that act on the client certificate a browser may hold (/renew, /revoke-self) are
 * not for web pages: a browser presents the person's certificate to any site's form POST, and
 * a `text/plain` form body can carry a CSR, so a page could renew for a key it chose or revoke
 * the certificate. A request a browser marks as sent for a page (it sends Origin on every
 * cross-origin POST, and Sec-Fetch-Site) is refused; the CLI and the client library send
 * neither header.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http.js';

export function refuseCrossSite(req: IncomingMessage, endpoint: string, instead: string): void {
  const site = req.headers['sec-fetch-site'];
  if (req.headers.origin !== undefined || (site !== undefined && site !== 'none')) {
    throw new HttpError(403, 'CROSS_SITE_REFUSED', `${endpoint} is not for web pages (the request carries Origin or Sec-Fetch-Site)`, instead);
  }
}
