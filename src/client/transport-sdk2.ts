/**
 * The MCP client transport for `@modelcontextprotocol/client` 2.x that carries a client
 * certificate (`mcp-mtls/client/sdk2`; the only client file that imports the 2.x client).
 *
 *   const bundle = await loadBundle('alice.yaml');
 *   const client = new Client({ name: 'agent', version: '1.0.0' });
 *   await client.connect(await createSdk2Transport(bundle));
 */
import { createMtlsFetch, isCredentialSource } from './agent.js';
import { agentFor, closing, urlOf, type TransportCredentials, type TransportOptions } from './transport-shared.js';

/** A Streamable HTTP client transport for `@modelcontextprotocol/client` 2.x. */
export async function createSdk2Transport(credentials: TransportCredentials, url?: string | URL, options: TransportOptions = {}) {
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  const target = urlOf(isCredentialSource(credentials) ? credentials.bundle : credentials, url, options);
  const { agent, owned } = agentFor(credentials, options);
  const transport = new StreamableHTTPClientTransport(target, { fetch: createMtlsFetch(agent, options) as typeof fetch });
  return closing(transport, async () => {
    owned?.stop();
    await agent.close();
  });
}
