/**
 * DNS rebinding protection for the MCP endpoint (the adapters and the gateway): a browser made
 * to resolve an attacker's name to this server sends that name in `Host` (and the attacker's
 * page in `Origin`), so a request whose `Host` names another server, or whose `Origin` is a
 * foreign web page, is answered 403 before anything else. The gateway must check this itself:
 * it sets `Host` towards its upstream, whose own check then never sees the client's.
 *
 * Accepted by default: the names of the server certificate the connection was made with (its
 * DNS and IP subjectAltNames, one-label wildcards included) and loopback (`localhost`,
 * `127.0.0.1`, `::1`); plus whatever {@link HostCheckOptions} adds. A request without `Origin`
 * (any non-browser client) is checked on `Host` alone. On a connection without TLS (behind a
 * TLS-terminating proxy) the certificate's names are unknown: there only the given names are
 * checked, and nothing when none are given (the proxy in front answers for its `Host`).
 */
import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { sendJson } from './http-body.js';

/** Which `Host` and `Origin` values the MCP endpoint answers. */
export interface HostCheckOptions {
  /**
   * Host names and IP addresses a request's `Host` may name, in addition to the server
   * certificate's names and loopback (e.g. a load balancer's name); `"*"` turns the Host and
   * Origin checks off.
   */
  readonly allowedHosts?: readonly string[];
  /**
   * Browser origins accepted in `Origin` (`https://app.acme.test`, scheme, host and port), in
   * addition to http(s) origins whose host is an accepted host.
   */
  readonly allowedOrigins?: readonly string[];
}

const LOOPBACK = ['localhost', '127.0.0.1', '::1'];

/** A host name or address in one comparable form: lowercase, no brackets, no trailing dot. */
function normalHost(h: string): string {
  let v = h.trim().toLowerCase();
  if (v.startsWith('[') && v.endsWith(']')) v = v.slice(1, -1);
  if (v.endsWith('.')) v = v.slice(0, -1);
  if (isIP(v) === 6) {
    try {
      v = new URL(`http://[${v}]/`).hostname.slice(1, -1);
    } catch {
      /* kept as written */
    }
  }
  return v;
}

/** The host of a `Host` header value (`name`, `name:port`, `[v6]:port`), or undefined when it is not one. */
function hostOfHeader(value: string): string | undefined {
  // only what a Host can hold (RFC 9110 7.2: uri-host [":" port]): `localhost#.evil.example` or
  // `localhost?x` parsed as localhost with a fragment or query (found in review), and what
  // another parser makes of them is not ours to guess
  if (!/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::\d*)?$/.test(value.trim())) return undefined;
  try {
    const u = new URL(`http://${value.trim()}/`);
    if (u.username || u.password || u.pathname !== '/' || `${u.host}` === '') return undefined;
    return normalHost(u.hostname);
  } catch {
    return undefined;
  }
}

/** The DNS and IP names of a certificate's subjectAltName, as Node prints it (`DNS:a, IP Address:1.2.3.4`). */
function certificateNames(san: string | undefined): string[] {
  if (!san) return [];
  const names: string[] = [];
  for (const part of san.split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    if (m) names.push(normalHost(m[2] as string));
  }
  return names;
}

function matches(host: string, names: Iterable<string>): boolean {
  for (const n of names) {
    if (n === host) return true;
    // a one-label wildcard, as TLS name checks use them
    if (n.startsWith('*.') && host.endsWith(n.slice(1)) && !host.slice(0, -(n.length - 1)).includes('.') && host.length > n.length - 1) return true;
  }
  return false;
}

/**
 * A function telling, per request, why its `Host` or `Origin` is refused, or undefined when it
 * is accepted. The certificate's names are read once per connection.
 */
export function hostCheck(options: HostCheckOptions = {}): (req: IncomingMessage) => string | undefined {
  const extra = (options.allowedHosts ?? []).map(normalHost);
  if (extra.includes('*')) return () => undefined;
  const origins = new Set((options.allowedOrigins ?? []).map((o) => o.trim().toLowerCase().replace(/\/$/, '')));
  // per connection: the names it answers to, and the last Host header value accepted on it (the
  // same value on the same connection is the same answer: keep-alive requests skip the parse)
  const perSocket = new WeakMap<object, { names: readonly string[] | null; host: string | undefined }>();
  const stateOf = (req: IncomingMessage) => {
    const socket = req.socket as Partial<TLSSocket>;
    let state = perSocket.get(socket);
    if (state === undefined) {
      const tlsSocket = typeof socket.getX509Certificate === 'function';
      const cert = tlsSocket ? (socket.getX509Certificate as () => { subjectAltName?: string } | undefined)() : undefined;
      const names = tlsSocket ? [...LOOPBACK, ...certificateNames(cert?.subjectAltName), ...extra] : extra.length > 0 || origins.size > 0 ? [...LOOPBACK, ...extra] : null;
      state = { names, host: undefined };
      perSocket.set(socket, state);
    }
    return state;
  };
  return (req) => {
    const state = stateOf(req);
    const names = state.names;
    if (names === null) return undefined;
    const hostHeader = req.headers.host;
    if (hostHeader === undefined || hostHeader !== state.host) {
      const host = hostHeader === undefined ? undefined : hostOfHeader(hostHeader);
      if (host === undefined || !matches(host, names)) return `the Host header ${JSON.stringify(String(hostHeader ?? '(none)').slice(0, 200))} names a server this one is not`;
      state.host = hostHeader;
    }
    const origin = req.headers.origin;
    if (origin === undefined) return undefined;
    const o = origin.trim().toLowerCase().replace(/\/$/, '');
    if (origins.has(o)) return undefined;
    let url: URL | undefined;
    try {
      url = new URL(o);
    } catch {
      url = undefined;
    }
    if (url && (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === o && matches(normalHost(url.hostname), names)) return undefined;
    return `the Origin ${JSON.stringify(origin.slice(0, 200))} is not one this server answers`;
  };
}

/** The 403 answer to a refused Host or Origin (a JSON-RPC error, as the SDK's own check answers). */
export function refuseHost(res: ServerResponse, reason: string): void {
  sendJson(res, 403, { jsonrpc: '2.0', id: null, error: { code: -32000, message: `Forbidden: ${reason} (DNS rebinding protection: allowedHosts / allowedOrigins)` } });
}
