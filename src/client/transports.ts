/**
 * MCP client transports that carry a client certificate, for the SDK 1.x and 2.x clients.
 * The certificate travels in the transport's `fetch` (so the GET/SSE stream uses it too),
 * never in `requestInit`, whose dispatcher the SDK does not use for that stream.
 *
 *   const bundle = await loadBundle('alice.yaml');
 *   const client = new Client({ name: 'agent', version: '1.0.0' });
 *   await client.connect(createSdk1Transport(bundle));        // or createSdk2Transport
 *
 * Credentials that renew: pass a BundleRenewer instead of the bundle (you stop it), or the
 * option `renew: { url }` (the transport makes the renewer, and stops it when it closes).
 */
import { StreamableHTTPClientTransport as Sdk1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Bundle } from '../bundle/load.js';
import { MtlsError } from '../errors.js';
import { createMtlsAgent, createMtlsFetch, isCredentialSource, type BundleCredentials, type MtlsAgentOptions } from './agent.js';
import { createBundleRenewer, type BundleRenewer, type BundleRenewerOptions } from './renewal.js';
import { serverUrl, type ServerUrlOptions } from './server-url.js';

/** A bundle (loaded or in memory), or a BundleRenewer whose renewals the transport follows. */
export type TransportCredentials = (BundleCredentials & Pick<Bundle, 'url'>) | Bundle | BundleRenewer;

/**
 * Agent options, `renew` to have the transport renew the bundle while it is open, and
 * `allowInsecureLoopbackHttp` (development only; the URL must be https: otherwise, MtlsError
 * `INSECURE_URL`).
 */
export interface TransportOptions extends MtlsAgentOptions, ServerUrlOptions {
  /** renew the bundle while the transport is open (needs a loaded Bundle as credentials) */
  readonly renew?: Omit<BundleRenewerOptions, 'bundle' | 'renewUrl'> & { readonly url?: string | URL };
}

function urlOf(bundle: Pick<Bundle, 'url'>, url: string | URL | undefined, options: ServerUrlOptions): URL {
  const u = url ?? bundle.url;
  if (!u) throw new MtlsError('USAGE', 'no server URL: pass one, or make the bundle with --url', { hint: 'mcp-mtls bundle CERT --format profile --url https://host/mcp --out FILE' });
  return serverUrl(u, options);
}

/** The agent for these credentials, and what closing the transport must also end. */
function agentFor(credentials: TransportCredentials, options: TransportOptions) {
  const { renew, allowInsecureLoopbackHttp: _, ...agentOptions } = options;
  let source: BundleCredentials | BundleRenewer = credentials;
  let owned: BundleRenewer | undefined;
  if (renew && !isCredentialSource(credentials)) {
    if (!('source' in credentials)) throw new MtlsError('USAGE', 'renew needs a bundle loaded with loadBundle()', { hint: 'or pass a BundleRenewer' });
    const { url, ...rest } = renew;
    owned = createBundleRenewer({ ...rest, bundle: credentials as Bundle, ...(url ? { renewUrl: url } : {}) });
    source = owned;
  }
  const bundle = isCredentialSource(source) ? source.bundle : (source as BundleCredentials & Pick<Bundle, 'url'>);
  const agent = createMtlsAgent(source, agentOptions);
  return { agent, bundle, owned };
}

function closing<T extends { close(): Promise<void> }>(transport: T, end: () => Promise<void>): T {
  const close = transport.close.bind(transport);
  transport.close = async () => {
    try {
      await close();
    } finally {
      await end();
    }
  };
  return transport;
}

/** A Streamable HTTP client transport for `@modelcontextprotocol/sdk` 1.x. */
export function createSdk1Transport(credentials: TransportCredentials, url?: string | URL, options: TransportOptions = {}) {
  // the URL is checked before any agent or renewer exists: nothing to clean up on a refusal
  const target = urlOf(isCredentialSource(credentials) ? credentials.bundle : credentials, url, options);
  const { agent, owned } = agentFor(credentials, options);
  const transport = new Sdk1Transport(target, { fetch: createMtlsFetch(agent, options) as typeof fetch });
  return closing(transport, async () => {
    owned?.stop();
    await agent.close();
  });
}

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
