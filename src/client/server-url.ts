/**
 * Which server URLs a client certificate may be used with. A client of this package speaks
 * mTLS: over `http:` there would be no TLS, no client certificate and no check of the server,
 * so requests, answers and the caller's claims would cross the network in cleartext to
 * whoever answers (and the bridge would still say it relays "as" the certificate's principal).
 * Only `https:` is accepted; `http:` to this machine's loopback (127.0.0.0/8, ::1,
 * localhost) only when explicitly allowed, for development.
 */
import { MtlsError } from '../errors.js';

/** Options of {@link serverUrl} and of everything in src/client/ that takes a server URL. */
export interface ServerUrlOptions {
  /**
   * Development only: allow `http:` (no TLS, no client certificate, no server authentication)
   * to a loopback address: 127.0.0.0/8, [::1] or localhost. Default false.
   */
  readonly allowInsecureLoopbackHttp?: boolean;
}

/** True for 127.0.0.0/8, [::1] and localhost, as the WHATWG URL parser spells them. */
export function isLoopbackHost(hostname: string): boolean {
  // new URL() normalizes IPv4 (127.1 -> 127.0.0.1, 0x7f.1 -> 127.0.0.1) and lowercases names
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * The server URL, parsed, when it is one this client may use: `https:`, or `http:` to a
 * loopback address with `allowInsecureLoopbackHttp`. Throws MtlsError `BAD_ARGUMENT` for
 * something that is not an http(s) URL and `INSECURE_URL` for cleartext that is not allowed.
 */
export function serverUrl(u: string | URL, options: ServerUrlOptions = {}): URL {
  let url: URL;
  try {
    url = new URL(u);
  } catch (cause) {
    throw new MtlsError('BAD_ARGUMENT', `the server URL "${String(u)}" is not a URL`, { cause, hint: 'e.g. https://mcp.acme.test/mcp' });
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol !== 'http:') throw new MtlsError('BAD_ARGUMENT', `the server URL must be https: (${url.href})`, { hint: 'e.g. https://mcp.acme.test/mcp' });
  if (options.allowInsecureLoopbackHttp && isLoopbackHost(url.hostname)) return url;
  throw new MtlsError('INSECURE_URL', `refusing cleartext http: to ${url.href}: no TLS, so no client certificate and no check of the server`, {
    hint: isLoopbackHost(url.hostname)
      ? 'use the https: URL of the server (for development against this machine only: --allow-insecure-loopback-http, or the option allowInsecureLoopbackHttp)'
      : 'use the https: URL of the server; http: is allowed only to a loopback address, for development',
  });
}

/** Whether a request may go to this origin (used per request, so redirects are checked too). */
export function serverUrlAllowed(u: string | URL, options: ServerUrlOptions = {}): MtlsError | undefined {
  try {
    serverUrl(u, options);
    return undefined;
  } catch (e) {
    return e as MtlsError;
  }
}
