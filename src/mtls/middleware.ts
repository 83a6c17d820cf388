/**
 * For servers you build yourself (Express, connect, plain node:https): the TLS options that
 * request client certificates ({@link mtlsServerOptions}), and a middleware that authenticates
 * each request ({@link createMtlsMiddleware}).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AuditSink } from './audit.js';
import { isMtlsError, MtlsError } from '../errors.js';
import type { AuthResult, Authenticator } from './authenticate.js';
import type { CrlSourceStatus } from './crl-fetch.js';
import { createTrust, listenerTrustOptions, type Trust } from './trust.js';
import { authenticateResumedAware, sessionContextOf, tlsServerOptions } from './tls-options.js';
import { handshakeCertificateDer } from './handshake-certificate.js';
import { sendAuthError, type MtlsTlsMaterial } from './mtls-server.js';
import { authInfoOf, type MtlsAuthInfo } from './auth-info.js';
import { createForwardedReader, type ForwardedOutcome, type TrustedProxy } from './trusted-proxies.js';
import { EMPTY_REVOCATION, type RevocationState } from './revocation.js';
import { stderrLog } from '../util/log.js';
import { sendJsonResponse } from '../util/json-response.js';

/**
 * The `https.createServer` TLS options for an mTLS server you build yourself: your
 * certificate and key, `material.ca` as the trusted roots, client certificates requested,
 * TLS 1.2 at least, renegotiation refused (`secureOptions: SSL_OP_NO_RENEGOTIATION`: after a
 * renegotiation Node reports the new, unverified certificate as the peer's). `material.crl` is
 * not used: give revocation to the middleware. Adding `secureOptions` of your own, or calling
 * `server.setSecureContext()`, keep `crypto.constants.SSL_OP_NO_RENEGOTIATION` in them, or the
 * middleware answers TLS 1.2 requests with HTTP 500 `TLS_RENEGOTIATION_ALLOWED`; and keep
 * `sessionIdContext` (pass this function's whole result to `setSecureContext`), or resumed
 * sessions cost a chain check of their own in the middleware.
 *
 * @param mode - `default`: the handshake completes for any client, so the middleware can
 *   answer a missing or bad certificate with a 401 saying why; every request must then go
 *   through {@link createMtlsMiddleware}. `strict`: the TLS layer refuses them.
 */
export function mtlsServerOptions(material: MtlsTlsMaterial, mode: 'default' | 'strict' = 'default') {
  return tlsServerOptions({ cert: material.cert, key: material.key, ca: material.ca, rejectUnauthorized: mode === 'strict' });
}

/**
 * Options of {@link createMtlsMiddleware}. Everything but `audit` is ignored when `authenticator`
 * is given; the CRL options mean what they mean for `createMtlsServer` (docs/server.md).
 */
export interface MiddlewareOptions {
  /**
   * The server's TLS material, the same object {@link mtlsServerOptions} gets (`key` is not
   * used): the CA certificates (`ca`, and what `cert` carries after its leaf) and the CRLs
   * (`crl`). With it, authentication and revocation are built exactly as `createMtlsServer`
   * builds them (mtls/trust.ts): an intermediate revoked on its root's CRL cuts off its
   * clients, and each CRL applies only to the CA whose key signed it. Without it the middleware
   * knows no CA certificate and applies no revocation.
   */
  readonly tls?: Pick<MtlsTlsMaterial, 'ca' | 'crl' | 'crlFiles'> & { readonly cert?: string | Buffer; readonly key?: string | Buffer };
  /** Accepted trust domains; undefined accepts any. */
  readonly trustDomains?: readonly string[];
  /** several tenants: the root (PEM) each trust domain must chain to; the intermediates must be in `tls.ca` */
  readonly trustDomainRoots?: Readonly<Record<string, string | Buffer>>;
  /** CRL URLs fetched in the background and applied live */
  readonly crlUrls?: readonly string[];
  /** also the CRL URLs named by the CA certificates and by client certificates (learned per issuing CA; fail closed until fetched) */
  readonly crlFromCertificates?: boolean;
  readonly crlFetch?: { readonly intervalMs?: number; readonly timeoutMs?: number; readonly maxBytes?: number };
  /** The clock for certificate expiry and CRL warnings; default the system clock. */
  readonly clock?: () => Date;
  /** warnings (same-named CAs, CRLs about to expire, failed fetches): default stderr */
  readonly log?: (message: string) => void;
  /** Receives an `auth.refused` event per refused request, and a `reload` event per CRL change. */
  readonly audit?: AuditSink;
  /** Share one with a server to reload revocation in one place; by default the middleware makes its own. */
  readonly authenticator?: Authenticator;
  /**
   * TLS-terminating proxies whose forwarded client certificate is accepted, as for
   * `createMtlsServer` (trusted-proxies.ts). The hop from such a proxy may be plain HTTP unless
   * the entry names the proxy's `principal`.
   */
  readonly trustedProxies?: readonly TrustedProxy[];
}

/**
 * A connect-style `(req, res, next)` middleware (Express, connect, plain node:https) that
 * authenticates each request from its TLS connection. On success it sets `req.auth` (the MCP
 * SDK's AuthInfo: `clientId` = principal, `token` = certificate fingerprint, `scopes` empty,
 * `extra.identity` = the {@link Identity}) and calls `next()`; otherwise it answers 401 with
 * a JSON body `{ error, message }` saying why, and does not call `next`.
 *
 * It trusts a connection's certificate only when the client cannot have renegotiated it away
 * from the verified one: TLS 1.3, a server made with {@link mtlsServerOptions} (renegotiation
 * refused), or a server passed to `captureHandshakes` before it listens. Any other request is
 * answered HTTP 500 `{ error: "TLS_RENEGOTIATION_ALLOWED", message, hint }` (audit event
 * `auth.refused` with that `code`), and `next` is not called.
 *
 * ```ts
 * const material = tlsFromPki('./pki', 'certs/localhost.crt', 'certs/localhost.key');
 * const mtls = createMtlsMiddleware({ tls: material, trustDomains: ['acme.test'] });
 * const app = express(); app.use(mtls); app.post('/mcp', ...);   // req.auth.extra.identity
 * https.createServer(mtlsServerOptions(material), app).listen(8443);
 * ```
 *
 * @returns the middleware, with its `authenticator`, `revocation()`, `reloadCrls(crls)` (returns
 *   0: the middleware tracks no connections; each request is re-checked), `refreshCrls()`,
 *   `crlSources()` and `close()` (stops the CRL fetches)
 * @throws MtlsError `BAD_ARGUMENT` for the former `revocation` option (give `tls`), a CRL URL or
 *   interval; `PEM_MALFORMED`, `CRL_INVALID` or `DER_MALFORMED` for the material
 */
export function createMtlsMiddleware(options: MiddlewareOptions = {}) {
  if ((options as { revocation?: unknown }).revocation !== undefined) {
    // revocation is filed per CA key: without the CA certificates it would apply to nobody
    throw new MtlsError('BAD_ARGUMENT', 'createMtlsMiddleware no longer takes `revocation`: it needs the CA certificates to tell which CA a CRL and a client belong to', { hint: 'pass `tls: material` (the object given to mtlsServerOptions, with its `crl`), or share a server\'s `authenticator`' });
  }
  const log = options.log ?? stderrLog('mcp-mtls');
  const trust: Trust | undefined = options.authenticator
    ? undefined
    : createTrust({
        ca: options.tls?.ca ?? [],
        ...listenerTrustOptions({ ...options, cert: options.tls?.cert, crl: options.tls?.crl, crlFiles: options.tls?.crlFiles }),
        log,
        onChange: (source): void => options.audit?.write({ event: 'reload', what: 'crl', ...(source ? { source } : {}), crls: trust?.revocation().crls.length ?? 0 }),
      });
  const authenticator = options.authenticator ?? (trust as Trust).authenticator;
  const forwarded = options.trustedProxies?.length ? createForwardedReader(options.trustedProxies, authenticator) : undefined;
  // a session resumed under another context than mtlsServerOptions gives these CAs (a
  // setSecureContext call without sessionIdContext) may carry another server's verdict: its
  // certificate's chain is checked here, against these CAs (tls-options.ts resumedUnderOtherContext)
  const authenticateSocket = authenticateResumedAware(authenticator, options.tls?.ca !== undefined ? sessionContextOf(options.tls.ca) : undefined, handshakeCertificateDer);
  const middleware = (req: IncomingMessage & { auth?: MtlsAuthInfo }, res: ServerResponse, next: (err?: unknown) => void) => {
    let auth: AuthResult;
    let f: ForwardedOutcome | undefined;
    try {
      f = forwarded?.read(req);
      if (f?.kind === 'refused') {
        options.audit?.write({ event: 'auth.refused', reason: f.error, status: 400, message: f.message, header: f.header, remote: req.socket.remoteAddress });
        sendJsonResponse(res, 400, { error: f.error, message: f.message }, { cacheControl: 'no-store' });
        return;
      }
      // behind a trusted proxy the hop may be plain HTTP: such a connection has no certificate of its own
      auth =
        f?.kind === 'forwarded'
          ? f.auth
          : (req.socket as TLSSocket).encrypted
            ? authenticateSocket(req.socket as TLSSocket)
            : { ok: false, reason: 'certificate_required', message: 'no client certificate was presented: this connection is not TLS; connect over mTLS, or through a trusted proxy' };
    } catch (e) {
      // the server may have let this client renegotiate to a certificate nobody verified:
      // a server misconfiguration, refused on every such request until it is fixed
      if (!isMtlsError(e, 'TLS_RENEGOTIATION_ALLOWED')) throw e;
      options.audit?.write({ event: 'auth.refused', code: e.code, message: e.message, remote: req.socket.remoteAddress });
      sendJsonResponse(res, 500, { error: e.code, message: e.message, hint: e.hint }, { cacheControl: 'no-store' });
      return;
    }
    if (!auth.ok) {
      options.audit?.write({ event: 'auth.refused', reason: auth.reason, message: auth.message, fingerprint: auth.fingerprint, remote: req.socket.remoteAddress, ...(f?.kind === 'forwarded' ? { forwarded: f.format } : {}) });
      sendAuthError(res, auth.reason, auth.message);
      return;
    }
    req.auth = f?.kind === 'forwarded' && f.via ? authInfoOf(auth.identity, f.via) : authInfoOf(auth.identity);
    next();
  };
  const shared = () => new MtlsError('BAD_ARGUMENT', 'this middleware uses a shared authenticator: its CRLs are reloaded where that authenticator was made', { hint: 'call reloadCrls on the server that owns it' });
  return Object.assign(middleware, {
    authenticator,
    revocation: (): RevocationState => trust?.revocation() ?? EMPTY_REVOCATION,
    reloadCrls: (crls: readonly (string | Buffer)[]): number => {
      if (!trust) throw shared();
      return trust.reloadCrls(crls);
    },
    refreshCrls: async (): Promise<void> => trust?.refreshCrls(),
    crlSources: (): readonly CrlSourceStatus[] => trust?.crlSources() ?? [],
    close: (): void => trust?.stop(),
  });
}
