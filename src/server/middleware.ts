/**
 * For servers you build yourself (Express, connect, plain node:https): the TLS options that
 * request client certificates, and a middleware that authenticates each request from its
 * connection and sets `req.auth` (the MCP SDK's AuthInfo), or answers 401 with the reason.
 *
 *   const mtls = createMtlsMiddleware({ revocation, trustDomains: ['acme.test'] });
 *   const app = express(); app.use(mtls); app.post('/mcp', ...);   // req.auth.extra.identity
 *   https.createServer(mtlsServerOptions(material), app).listen(8443);
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AuditSink } from './audit.js';
import { createAuthenticator, type Authenticator } from './authenticate.js';
import { sendAuthError, type MtlsAuthInfo, type MtlsTlsMaterial } from './mtls-server.js';
import type { RevocationState } from './revocation.js';

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

export interface MiddlewareOptions {
  readonly trustDomains?: readonly string[];
  readonly revocation?: RevocationState;
  readonly audit?: AuditSink;
  /** share one with a server to reload revocation in one place */
  readonly authenticator?: Authenticator;
}

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
