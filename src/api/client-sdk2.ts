/**
 * `mcp-mtls/client/sdk2`: a StreamableHTTPClientTransport of `@modelcontextprotocol/client`
 * 2.x that presents the bundle's certificate. Needs that package installed (optional peer).
 *
 * @packageDocumentation
 */
export { createSdk2Transport } from '../client/transport-sdk2.js';
