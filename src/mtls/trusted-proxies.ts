/**
 * Trusted proxies: TLS-terminating load balancers and ingresses (ingress-nginx, Envoy, AWS ALB,
 * Traefik, HAProxy) that verify the client certificate themselves and forward it in a header.
 *
 * - A request is from a trusted proxy when its connection's remote address is in one of an
 *   entry's ranges (normalised: `::ffff:10.0.0.5` is 10.0.0.5, util/cidr.ts) and, for an entry
 *   with `principal`, the connection itself authenticated with a client certificate of that
 *   principal (the hop from proxy to server is mTLS).
 * - From a trusted proxy, only its format's headers are read; the certificate in them goes
 *   through the authenticator exactly as a handshake certificate would, with the same 401
 *   reasons (`ForwardedAuthenticator.verifyForwarded`). A value that is truncated, doubled or
 *   malformed, or a header of another format (a client's, passed through), is refused 400.
 * - Per request, a value seen before is a cache lookup by its exact header lines, the answer
 *   re-checked against revocation data and the clock (forwarded-cache.ts): no decoding, no hashing.
 * - From anyone else, a request that carries any forwarded-certificate header is refused 400:
 *   the headers are never read from anyone else.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MtlsError } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import { cidrContains, ipBytes16, parseCidr, type CidrRange } from '../util/cidr.js';
import { IdleMap } from '../util/idle-map.js';
import { compositeKey, createForwardedCache } from './forwarded-cache.js';
import { forwardedAuthenticator, type AuthResult, type Authenticator } from './authenticate.js';
import type { ForwardedRead, HeaderLines } from './forwarded-common.js';
import { ALB_HEADERS, readAlb } from './forwarded-alb.js';
import { NGINX_DEFAULT_HEADER, readNginx } from './forwarded-nginx.js';
import { readRfc9440, RFC9440_HEADERS } from './forwarded-rfc9440.js';
import { readTraefik, TRAEFIK_HEADER } from './forwarded-traefik.js';
import { readXfcc, XFCC } from './xfcc.js';

/** The header formats a trusted proxy may use. */
export const FORWARDED_FORMATS = ['rfc9440', 'xfcc', 'nginx', 'alb', 'traefik'] as const;
/** One of {@link FORWARDED_FORMATS}: the header format a trusted proxy forwards the client certificate in (see {@link TrustedProxy.format}). */
export type ForwardedFormat = (typeof FORWARDED_FORMATS)[number];

/**
 * One trusted proxy (or group of proxies): where its requests come from, how it forwards the
 * client certificate, and optionally its own client certificate's principal.
 */
export interface TrustedProxy {
  /** The proxy's addresses or CIDR ranges, IPv4 or IPv6 (`10.0.0.0/8`, `fd00::/8`, `127.0.0.2`). */
  readonly from: string | readonly string[];
  /**
   * `rfc9440`: `Client-Cert` (+ `Client-Cert-Chain`), RFC 9440 (HAProxy, Cloudflare, ...);
   * `xfcc`: Envoy's `x-forwarded-client-cert` with `Cert=` (and `Hash=`, checked);
   * `nginx`: `$ssl_client_escaped_cert` in `header` (default `ssl-client-cert`, ingress-nginx's);
   * `alb`: AWS ALB's `X-Amzn-Mtls-Clientcert-Leaf` (verify mode) or `X-Amzn-Mtls-Clientcert` (passthrough);
   * `traefik`: `X-Forwarded-Tls-Client-Cert` (PassTLSClientCert `pem: true`).
   */
  readonly format: ForwardedFormat;
  /** `nginx` only: the header nginx sets to `$ssl_client_escaped_cert`; default `ssl-client-cert`. */
  readonly header?: string;
  /**
   * When the hop from the proxy is itself mTLS: the principal of the proxy's own client
   * certificate. Requests from the ranges whose connection did not authenticate as it are not
   * from this proxy.
   */
  readonly principal?: string;
}

/** What {@link ForwardedReader.read} decided for a request. */
export type ForwardedOutcome =
  /** not from a trusted proxy and no forwarded header: authenticate the connection as always */
  | { readonly kind: 'direct' }
  /** refused before authentication: HTTP 400 with `error` and `message` */
  | { readonly kind: 'refused'; readonly error: 'forwarded_header_untrusted' | 'forwarded_certificate_malformed' | 'forwarded_header_unexpected'; readonly message: string; readonly header: string }
  /** from a trusted proxy: the forwarded certificate's authentication (401 reasons when not ok) */
  | { readonly kind: 'forwarded'; readonly auth: AuthResult; readonly format: ForwardedFormat; readonly via?: Identity };

/** Made by {@link createForwardedReader}. */
export interface ForwardedReader {
  read(req: IncomingMessage): ForwardedOutcome;
}

interface Entry {
  readonly ranges: readonly CidrRange[];
  readonly format: ForwardedFormat;
  readonly headers: readonly string[];
  readonly principal?: string;
  readonly read: (h: HeaderLines) => ForwardedRead;
  /** `{ entry }`, made once: what proxyOf returns for an entry without principal */
  readonly plain: { readonly entry: Entry };
}

const DIRECT: ForwardedOutcome = { kind: 'direct' };

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * the forwarded certificate (DER) each identity read from a forwarded header was made from, for
 * the gateway's XFCC: set once per verified value (the kept answer holds the same Identity object
 * for every request that repeats it), not once per request (a WeakMap entry per request is an
 * ephemeron the GC traces: a profile of bench/server's forwarded case had 1154 ms of GC against
 * 1022 ms for no authentication)
 */
const forwardedDer = new WeakMap<Identity, Buffer>();

/** The client certificate (DER) a trusted proxy forwarded for this request, or undefined for a direct one. */
export function forwardedCertificateOf(req: IncomingMessage): Buffer | undefined {
  // req.auth as createMtlsServer and the middleware set it (identities of handshake certificates are never in the map)
  const identity = (req as IncomingMessage & { auth?: { extra?: { identity?: Identity } } }).auth?.extra?.identity;
  return identity ? forwardedDer.get(identity) : undefined;
}

/**
 * Checks the entries and prepares them.
 *
 * @throws MtlsError `BAD_ARGUMENT` for an unknown format, an unusable range, a `header` on a
 *   format other than `nginx` or a header name that is not an HTTP token, an entry without ranges
 */
export function createForwardedReader(proxies: readonly TrustedProxy[], given: Authenticator): ForwardedReader {
  // a hand-written (v1) authenticator is asked on every request: nothing of its answers is kept
  const authenticator = forwardedAuthenticator(given);
  const entries: Entry[] = proxies.map((p, i) => {
    const where = `trustedProxies[${i}]`;
    if (!FORWARDED_FORMATS.includes(p.format)) throw new MtlsError('BAD_ARGUMENT', `${where}: unknown format "${String(p.format)}"`, { hint: `use one of ${FORWARDED_FORMATS.join(', ')}` });
    if (p.header !== undefined && p.format !== 'nginx') throw new MtlsError('BAD_ARGUMENT', `${where}: a header name is set for format ${p.format}, whose headers are fixed`, { hint: 'a header name goes with format nginx only' });
    const header = (p.header ?? NGINX_DEFAULT_HEADER).toLowerCase();
    if (!TOKEN.test(header)) throw new MtlsError('BAD_ARGUMENT', `${where}: "${p.header}" is not an HTTP header name`, { hint: 'use the name given to proxy_set_header, e.g. ssl-client-cert' });
    const from = typeof p.from === 'string' ? [p.from] : [...(p.from ?? [])];
    if (from.length === 0) throw new MtlsError('BAD_ARGUMENT', `${where}: no address or range in "from"`, { hint: 'list the proxy\'s addresses, e.g. from: ["10.0.0.0/8"]' });
    const ranges = from.map((c) => parseCidr(c));
    const formats: Record<ForwardedFormat, { headers: readonly string[]; read: (h: HeaderLines) => ForwardedRead }> = {
      rfc9440: { headers: RFC9440_HEADERS, read: readRfc9440 },
      xfcc: { headers: [XFCC], read: readXfcc },
      nginx: { headers: [header], read: (h) => readNginx(h, header) },
      alb: { headers: ALB_HEADERS, read: readAlb },
      traefik: { headers: [TRAEFIK_HEADER], read: readTraefik },
    };
    const entry: { -readonly [K in keyof Entry]: Entry[K] } = { ranges, format: p.format, ...formats[p.format], ...(p.principal ? { principal: p.principal } : {}), plain: undefined as never };
    entry.plain = { entry };
    return entry;
  });
  // every header any format uses: a request carrying one is either from a trusted proxy or refused
  const all = [...new Set([...RFC9440_HEADERS, XFCC, NGINX_DEFAULT_HEADER, ...ALB_HEADERS, TRAEFIK_HEADER, ...entries.flatMap((e) => e.headers)])];
  // by length, so that the scan of a request's headers lowercases only names that may be one
  const allByLength = new Map<number, string[]>();
  for (const h of all) allByLength.set(h.length, [...(allByLength.get(h.length) ?? []), h]);
  // the forwarded-certificate header lines of the request being read, names (lowercase) and
  // values in order: read() runs to its end without yielding, so one pair of arrays serves all
  const names: string[] = [];
  const values: string[] = [];
  const scan = (raw: readonly string[]): number => {
    let n = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const same = allByLength.get(name.length);
      if (!same) continue;
      const lower = name.toLowerCase();
      if (!same.includes(lower)) continue;
      names[n] = lower;
      values[n] = raw[i + 1] as string;
      n++;
    }
    return n;
  };
  /** the distinct names among the first n scanned that pass `keep`, in the order of `all` (as messages name them) */
  const presentOf = (n: number, keep: (h: string) => boolean = () => true): string[] => all.filter((h) => keep(h) && names.slice(0, n).includes(h));
  const linesOfScanned = (n: number): HeaderLines => {
    const out: Record<string, string[]> = {};
    for (let i = 0; i < n; i++) (out[names[i] as string] ??= []).push(values[i] as string);
    return out;
  };

  const cache = createForwardedCache<Entry, ForwardedOutcome>(authenticator, (entry, auth) => ({ kind: 'forwarded', format: entry.format, auth }));

  // a connection's address does not change: the entries whose ranges hold it, once per connection
  // (and once per address for the connections to come, bounded)
  const inRange = new WeakMap<object, readonly Entry[]>();
  const byAddress = new IdleMap<string, readonly Entry[]>({ idleMs: 3_600_000, max: 10_000 });
  const candidates = (req: IncomingMessage): readonly Entry[] => {
    let found = inRange.get(req.socket);
    if (!found) {
      const remote = req.socket.remoteAddress;
      if (!remote) return [];
      found = byAddress.get(remote);
      if (!found) {
        const address = ipBytes16(remote);
        found = address ? entries.filter((e) => e.ranges.some((r) => cidrContains(r, address))) : [];
        byAddress.set(remote, found);
      }
      inRange.set(req.socket, found);
    }
    return found;
  };

  const proxyOf = (req: IncomingMessage): { entry: Entry; via?: Identity } | undefined => {
    for (const entry of candidates(req)) {
      if (!entry.principal) return entry.plain;
      if (!(req.socket as TLSSocket).encrypted) continue;
      const own = authenticator.authenticate(req.socket as TLSSocket);
      if (own.ok && own.identity.principal === entry.principal) return { entry, via: own.identity };
    }
    return undefined;
  };

  return {
    read(req) {
      const n = scan(req.rawHeaders);
      const proxy = proxyOf(req);
      if (!proxy) {
        if (n === 0) return DIRECT;
        const present = presentOf(n);
        return { kind: 'refused', error: 'forwarded_header_untrusted', header: present[0] as string, message: `the request carries ${present.join(', ')}, but it does not come from a trusted proxy (${req.socket.remoteAddress ?? 'unknown address'}): forwarded client certificates are read only from the proxies listed in trustedProxies` };
      }
      const { entry, via } = proxy as { entry: Entry; via?: Identity };
      for (let i = 0; i < n; i++) {
        if (entry.headers.includes(names[i] as string)) continue;
        const foreign = presentOf(n, (h) => !entry.headers.includes(h));
        return { kind: 'refused', error: 'forwarded_header_unexpected', header: foreign[0] as string, message: `the request carries ${foreign.join(', ')}, which a proxy forwarding in the ${entry.format} format does not send: a client's header was passed through; remove it at the proxy` };
      }
      // the same header lines are the same certificate and chain: answered from the cache by
      // their exact bytes (forwarded-cache.ts says why no two inputs share a key)
      let lines: HeaderLines | undefined;
      let shape = -1;
      let key = '';
      if (n === 1) {
        shape = entry.headers.indexOf(names[0] as string);
        key = values[0] as string;
      } else if (n > 1) key = compositeKey(entry.headers, (lines = linesOfScanned(n)));
      let kept = n === 0 ? undefined : cache.lookup(entry, shape, key);
      if (!kept) {
        const read = entry.read(lines ?? linesOfScanned(n));
        if (read.kind === 'malformed') return { kind: 'refused', error: 'forwarded_certificate_malformed', header: entry.headers[0] as string, message: `the forwarded client certificate is not usable: ${read.problem}` };
        if (read.kind === 'absent') {
          return { kind: 'forwarded', format: entry.format, ...(via ? { via } : {}), auth: { ok: false, reason: 'certificate_required', message: `no client certificate was presented to the proxy (its ${entry.headers[0]} header is missing); connect with your mcp-mtls certificate bundle` } };
        }
        kept = cache.add(entry, shape, key, read.certs.leaf, authenticator.verifyForwarded(read.certs.leaf, read.certs.chain));
        if (kept.verified.ok) forwardedDer.set(kept.verified.identity, kept.leaf);
      }
      return via ? { ...kept.outcome, via } : kept.outcome;
    },
  };
}
