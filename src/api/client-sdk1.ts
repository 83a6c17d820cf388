/**
 * `mcp-mtls/client/sdk1`: a StreamableHTTPClientTransport of `@modelcontextprotocol/sdk` 1.x
 * that presents the bundle's certificate. Needs that package installed (optional peer).
 *
 * @packageDocumentation
 */
export { createSdk1Transport } from '../client/transport-sdk1.js';
