/**
 * For servers you build yourself (Express, connect, plain node:https): the TLS options that
 * request client certificates ({@link mtlsServerOptions}), and a middleware that authenticates
 * each request ({@link createMtlsMiddleware}).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AuditSink } from './audit.js';
import { isMtlsError } from '../errors.js';
import { createAuthenticator, type AuthResult, type Authenticator } from './authenticate.js';
import { tlsServerOptions } from './tls-options.js';
import { sendAuthError, type MtlsAuthInfo, type MtlsTlsMaterial } from './mtls-server.js';
import type { RevocationState } from './revocation.js';

/**
 * The `https.createServer` TLS options for an mTLS server you build yourself: your
 * certificate and key, `material.ca` as the trusted roots, client certificates requested,
 * TLS 1.2 at least, renegotiation refused (`secureOptions: SSL_OP_NO_RENEGOTIATION`: after a
 * renegotiation Node reports the new, unverified certificate as the peer's). `material.crl` is
 * not used: give revocation to the middleware. Adding `secureOptions` of your own, or calling
 * `server.setSecureContext()`, keep `crypto.constants.SSL_OP_NO_RENEGOTIATION` in them, or the
 * middleware answers TLS 1.2 requests with HTTP 500 `TLS_RENEGOTIATION_ALLOWED`.
 *
 * @param mode - `default`: the handshake completes for any client, so the middleware can
 *   answer a missing or bad certificate with a 401 saying why; every request must then go
 *   through {@link createMtlsMiddleware}. `strict`: the TLS layer refuses them.
 */
export function mtlsServerOptions(material: MtlsTlsMaterial, mode: 'default' | 'strict' = 'default') {
  return tlsServerOptions({ cert: material.cert, key: material.key, ca: material.ca, rejectUnauthorized: mode === 'strict' });
}

/** Options of {@link createMtlsMiddleware}. */
export interface MiddlewareOptions {
  /** Accepted trust domains; undefined accepts any. Ignored when `authenticator` is given. */
  readonly trustDomains?: readonly string[];
  /** The revocation data at start. Ignored when `authenticator` is given. */
  readonly revocation?: RevocationState;
  /** Receives an `auth.refused` event per refused request. */
  readonly audit?: AuditSink;
  /** Share one with a server to reload revocation in one place; by default the middleware makes its own. */
  readonly authenticator?: Authenticator;
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
 * const mtls = createMtlsMiddleware({ revocation, trustDomains: ['acme.test'] });
 * const app = express(); app.use(mtls); app.post('/mcp', ...);   // req.auth.extra.identity
 * https.createServer(mtlsServerOptions(material), app).listen(8443);
 * ```
 *
 * @returns the middleware, with its `authenticator` (call `setRevocation` on it to reload CRLs)
 */
export function createMtlsMiddleware(options: MiddlewareOptions = {}) {
  const authenticator =
    options.authenticator ?? createAuthenticator({ ...(options.trustDomains ? { trustDomains: options.trustDomains } : {}), ...(options.revocation ? { revocation: options.revocation } : {}) });
  const middleware = (req: IncomingMessage & { auth?: MtlsAuthInfo }, res: ServerResponse, next: (err?: unknown) => void) => {
    let auth: AuthResult;
    try {
      auth = authenticator.authenticate(req.socket as TLSSocket);
    } catch (e) {
      // the server may have let this client renegotiate to a certificate nobody verified:
      // a server misconfiguration, refused on every such request until it is fixed
      if (!isMtlsError(e, 'TLS_RENEGOTIATION_ALLOWED')) throw e;
      options.audit?.write({ event: 'auth.refused', code: e.code, message: e.message, remote: req.socket.remoteAddress });
      const body = JSON.stringify({ error: e.code, message: e.message, hint: e.hint });
      res.writeHead(500, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (!auth.ok) {
      options.audit?.write({ event: 'auth.refused', reason: auth.reason, message: auth.message, fingerprint: auth.fingerprint, remote: req.socket.remoteAddress });
      sendAuthError(res, auth.reason, auth.message);
      return;
    }
    const id = auth.identity;
    req.auth = { token: id.fingerprint, clientId: id.principal, scopes: [], extra: { identity: id } };
    next();
  };
  return Object.assign(middleware, { authenticator });
}
