/**
 * The MCP client transport for `@modelcontextprotocol/client` 2.x that carries a client
 * certificate (`mcp-mtls/client/sdk2`; the only client file that imports the 2.x client).
 *
 *   const bundle = await loadBundle('alice.yaml');
 *   const client = new Client({ name: 'agent', version: '1.0.0' });
 *   await client.connect(await createSdk2Transport(bundle));
 */
import { closing, transportParts, type TransportCredentials, type TransportOptions } from './transport-shared.js';

/** A Streamable HTTP client transport for `@modelcontextprotocol/client` 2.x. */
export async function createSdk2Transport(credentials: TransportCredentials, url?: string | URL, options: TransportOptions = {}) {
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  const { target, fetch, end } = transportParts(credentials, url, options);
  return closing(new StreamableHTTPClientTransport(target, { fetch }), end);
}
