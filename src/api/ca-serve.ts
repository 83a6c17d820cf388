/**
 * `mcp-mtls/ca/serve`: the online CA (what `mcp-mtls ca serve` runs) as a library: an HTTPS
 * server with CRLs, POST /renew over mTLS and POST /sign with enrollment tokens, /healthz and
 * /metrics (docs/ca-serve.md).
 *
 * @packageDocumentation
 */
export { createCaServer, type CaServer, type CaServerOptions, type AuditWriter } from '../ca/serve/server.js';
export type { RateLimit } from '../ca/serve/rate-limit.js';
