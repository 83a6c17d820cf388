/**
 * The MCP client transport for `@modelcontextprotocol/sdk` 1.x that carries a client
 * certificate (`mcp-mtls/client/sdk1`; the only client file that imports the 1.x SDK).
 *
 *   const bundle = await loadBundle('alice.yaml');
 *   const client = new Client({ name: 'agent', version: '1.0.0' });
 *   await client.connect(createSdk1Transport(bundle));
 */
import { StreamableHTTPClientTransport as Sdk1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { closing, transportParts, type TransportCredentials, type TransportOptions } from './transport-shared.js';

/** A Streamable HTTP client transport for `@modelcontextprotocol/sdk` 1.x. */
export function createSdk1Transport(credentials: TransportCredentials, url?: string | URL, options: TransportOptions = {}) {
  const { target, fetch, end } = transportParts(credentials, url, options);
  return closing(new Sdk1Transport(target, { fetch }), end);
}
