/**
 * For servers you build yourself (Express, connect, plain node:https): the TLS options that
 * request client certificates ({@link mtlsServerOptions}), and a middleware that authenticates
 * each request ({@link createMtlsMiddleware}).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AuditSink } from './audit.js';
import { createAuthenticator, type Authenticator } from './authenticate.js';
import { sendAuthError, type MtlsAuthInfo, type MtlsTlsMaterial } from './mtls-server.js';
import type { RevocationState } from './revocation.js';

/**
 * The `https.createServer` TLS options for an mTLS server you build yourself: your
 * certificate and key, `material.ca` as the trusted roots, client certificates requested,
 * TLS 1.2 at least. `material.crl` is not used: give revocation to the middleware.
 *
 * @param mode - `default`: the handshake completes for any client, so the middleware can
 *   answer a missing or bad certificate with a 401 saying why; every request must then go
 *   through {@link createMtlsMiddleware}. `strict`: the TLS layer refuses them.
 */
export function mtlsServerOptions(material: MtlsTlsMaterial, mode: 'default' | 'strict' = 'default') {
  return {
    cert: material.cert,
    key: material.key,
    ca: Array.isArray(material.ca) ? [...material.ca] : [material.ca as string | Buffer],
    requestCert: true,
    rejectUnauthorized: mode === 'strict',
    minVersion: 'TLSv1.2' as const,
  };
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
    const auth = authenticator.authenticate(req.socket as TLSSocket);
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
