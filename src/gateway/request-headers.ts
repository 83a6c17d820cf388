/**
 * The headers a request carries to the upstream: hop-by-hop headers and every identity claim a
 * client could forge are dropped; the gateway adds the verified identity (XFCC, Envoy format),
 * the client address, and asks for an unencoded answer.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../identity/identity.js';
import { handshakeCertificateDer } from '../mtls/handshake-certificate.js';
import type { MtlsRequest } from '../mtls/mtls-server.js';
import { formatXfcc, XFCC } from '../mtls/xfcc.js';
import { forwardedCertificateOf } from '../mtls/trusted-proxies.js';

/** Request headers never forwarded: hop-by-hop, and identity claims a client could forge. */
const DROP_REQUEST = new Set([
  'host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'proxy-connection', 'te', 'trailer',
  // credentials for the gateway as a proxy, not for the upstream (found testing injected credentials: it was passed on)
  'proxy-authorization',
  XFCC, 'x-forwarded-user', 'x-remote-user', 'x-mcp-user', 'x-mcp-identity', 'x-user', 'x-auth-request-user', 'forwarded',
  // the client-certificate headers other TLS proxies set (Traefik, nginx setups, AWS ALB, Azure),
  // which an upstream written for one of them trusts (found in review, issue 16)
  'x-forwarded-tls-client-cert', 'x-forwarded-tls-client-cert-info', 'x-ssl-client-cert', 'ssl-client-cert', 'x-client-cert', 'x-client-dn',
  'x-ssl-client-dn', 'x-ssl-client-s-dn', 'x-ssl-client-verify', 'x-client-verify', 'x-amzn-mtls-clientcert', 'x-amzn-mtls-clientcert-leaf', 'x-arr-clientcert',
  // RFC 9440 (HAProxy, Cloudflare): an upstream behind such a proxy trusts them from the gateway's address
  'client-cert', 'client-cert-chain',
  // the rest of what an AWS ALB with mTLS sets (verify mode), which an upstream behind one reads as the client's
  'x-amzn-mtls-clientcert-serial-number', 'x-amzn-mtls-clientcert-issuer', 'x-amzn-mtls-clientcert-subject', 'x-amzn-mtls-clientcert-validity',
]);

/**
 * The XFCC header of a request's identity. It is the same for every request of a connection's
 * certificate, so it is built once per identity; from the certificate of the verified
 * handshake, which the identity was decoded from: a later read of the peer certificate would
 * return what a renegotiation swapped in.
 */
export function xfccHeaders(): (req: MtlsRequest, identity: Identity) => string {
  const built = new WeakMap<Identity, string>();
  return (req, identity) => {
    let xfcc = built.get(identity);
    if (!xfcc) built.set(identity, (xfcc = formatXfcc(identity, forwardedCertificateOf(req) ?? handshakeCertificateDer(req.socket) ?? Buffer.alloc(0))));
    return xfcc;
  };
}

export interface UpstreamHeaderValues {
  /** the XFCC header of the caller */
  readonly xfcc: string;
  readonly remote: string | undefined;
  /** the body to send, when it was rewritten (its length is sent) */
  readonly body?: string;
  /** the `Mcp-Name` the rewritten body needs */
  readonly mcpName?: string;
  /** a GET stream */
  readonly isStream: boolean;
  /** the `Last-Event-ID` to forward: only one the gateway checked (resume.ts); the client's own header is never passed on */
  readonly lastEventId?: string;
  /** more header names (lowercase) never passed on: those the gateway injects for the route (upstream-credentials.ts) */
  readonly drop?: ReadonlySet<string>;
  /** headers the gateway sets for the caller (its credential), after the client's are removed */
  readonly inject?: Readonly<Record<string, string>>;
}

const NAMES_NONE: ReadonlySet<string> = new Set();

/** The client's headers as the upstream gets them. */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, values: UpstreamHeaderValues): Record<string, string> {
  const headers: Record<string, string> = {};
  // the headers `Connection` names are hop-by-hop too (RFC 9110 7.6.1): never forwarded
  const connection = incoming.connection;
  // the common values name no other header: no Set to build for them
  const named = connection === undefined || connection === 'keep-alive' || connection === 'close' ? NAMES_NONE : new Set(String(Array.isArray(connection) ? connection.join(',') : connection).split(',').map((h) => h.trim().toLowerCase()).filter(Boolean));
  for (const [k, v] of Object.entries(incoming)) {
    if (v === undefined || DROP_REQUEST.has(k) || named.has(k) || values.drop?.has(k)) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  if (values.mcpName !== undefined) headers['mcp-name'] = values.mcpName;
  headers[XFCC] = values.xfcc;
  headers['x-forwarded-for'] = values.remote ?? '';
  // an encoded answer could not be read, so could not be filtered (response.ts refuses one)
  headers['accept-encoding'] = 'identity';
  if (values.body !== undefined) headers['content-length'] = String(Buffer.byteLength(values.body));
  // a replay only of a stream this caller was sent, decided as that stream (resume.ts)
  delete headers['last-event-id'];
  if (values.isStream && values.lastEventId !== undefined) headers['last-event-id'] = values.lastEventId;
  if (values.inject) Object.assign(headers, values.inject);
  return headers;
}
