/**
 * `mcp-mtls/server`: an HTTPS server that requires client certificates and hands each request
 * its verified identity, plus the pieces to build your own (authenticator, middleware,
 * revocation, audit). No MCP SDK is loaded from here: the adapters are in
 * `mcp-mtls/server/sdk1` and `mcp-mtls/server/sdk2`.
 *
 * @packageDocumentation
 */
export { createMtlsServer, tlsFromPki, sendAuthError, type MtlsServer, type MtlsServerOptions, type MtlsTlsMaterial, type MtlsRequest, type MtlsHandler, type MtlsAuthInfo } from '../mtls/mtls-server.js';
export { createMtlsMiddleware, mtlsServerOptions, type MiddlewareOptions } from '../mtls/middleware.js';
export { FORWARDED_FORMATS, forwardedCertificateOf, type TrustedProxy, type ForwardedFormat } from '../mtls/trusted-proxies.js';
export { createAuthenticator, forwardedAuthenticator, type Authenticator, type ForwardedAuthenticator, type AuthenticatorOptions, type AuthResult, type AuthFailureReason, type IssuerInfo } from '../mtls/authenticate.js';
export { captureHandshakes } from '../mtls/handshake-certificate.js';
export { createAuditLog, memoryAudit, teeAudit, type AuditEvent, type AuditSink } from '../mtls/audit.js';
export { createDecisionsSink, type DecisionsSink, type DecisionsSinkOptions, type DecisionsSinkStats } from '../mtls/audit-postgres.js';
export { buildRevocation, crlWarnings, type RevocationState, type CrlInfo } from '../mtls/revocation.js';
export type { CrlSourceStatus, CrlSourceOrigin } from '../mtls/crl-fetch.js';
export { callerOf, type WithAuthInfo } from '../mcp/caller.js';
export { SCOPES_META_KEY, type McpServerLike } from '../mcp/surface.js';
