/**
 * MCP client transports that carry a client certificate, for the SDK 1.x and 2.x clients.
 * The certificate travels in the transport's `fetch` (so the GET/SSE stream uses it too),
 * never in `requestInit`, whose dispatcher the SDK does not use for that stream.
 *
 *   const bundle = await loadBundle('alice.yaml');
 *   const client = new Client({ name: 'agent', version: '1.0.0' });
 *   await client.connect(createSdk1Transport(bundle));        // or createSdk2Transport
 */
import { StreamableHTTPClientTransport as Sdk1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Bundle } from '../bundle/load.js';
import { MtlsError } from '../errors.js';
import { createMtlsAgent, createMtlsFetch, type MtlsAgentOptions } from './agent.js';

function urlOf(bundle: Pick<Bundle, 'url'>, url?: string | URL): URL {
  const u = url ?? bundle.url;
  if (!u) throw new MtlsError('USAGE', 'no server URL: pass one, or make the bundle with --url', { hint: 'mcp-mtls bundle CERT --format profile --url https://host/mcp --out FILE' });
  return new URL(u);
}

/** A Streamable HTTP client transport for `@modelcontextprotocol/sdk` 1.x. */
export function createSdk1Transport(bundle: Pick<Bundle, 'chain' | 'key' | 'ca' | 'url'>, url?: string | URL, options: MtlsAgentOptions = {}) {
  const agent = createMtlsAgent(bundle, options);
  const transport = new Sdk1Transport(urlOf(bundle, url), { fetch: createMtlsFetch(agent) as typeof fetch });
  const close = transport.close.bind(transport);
  transport.close = async () => {
    await close();
    await agent.close();
  };
  return transport;
}

/** A Streamable HTTP client transport for `@modelcontextprotocol/client` 2.x. */
export async function createSdk2Transport(bundle: Pick<Bundle, 'chain' | 'key' | 'ca' | 'url'>, url?: string | URL, options: MtlsAgentOptions = {}) {
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  const agent = createMtlsAgent(bundle, options);
  const transport = new StreamableHTTPClientTransport(urlOf(bundle, url), { fetch: createMtlsFetch(agent) as typeof fetch });
  const close = transport.close.bind(transport);
  transport.close = async () => {
    await close();
    await agent.close();
  };
  return transport;
}
