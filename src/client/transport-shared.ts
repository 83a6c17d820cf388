/**
 * What the SDK 1.x and 2.x client transports share, with no SDK import: the credentials and
 * options they take, the server URL, the agent, and closing both with the transport. Each SDK's
 * transport is in its own file (transport-sdk1.ts, transport-sdk2.ts), so `mcp-mtls/client/sdk1`
 * loads and type-checks with only `@modelcontextprotocol/sdk` and `/client/sdk2` with only
 * `@modelcontextprotocol/client`.
 *
 * The certificate travels in the transport's `fetch` (so the GET/SSE stream uses it too),
 * never in `requestInit`, whose dispatcher the SDK does not use for that stream.
 *
 * Credentials that renew: pass a BundleRenewer instead of the bundle (you stop it), or the
 * option `renew: { url }` (the transport makes the renewer, and stops it when it closes).
 */
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

export function urlOf(bundle: Pick<Bundle, 'url'>, url: string | URL | undefined, options: ServerUrlOptions): URL {
  const u = url ?? bundle.url;
  if (!u) throw new MtlsError('USAGE', 'no server URL: pass one, or make the bundle with --url', { hint: 'mcp-mtls bundle CERT --format profile --url https://host/mcp --out FILE' });
  return serverUrl(u, options);
}

/** The agent for these credentials, and what closing the transport must also end. */
export function agentFor(credentials: TransportCredentials, options: TransportOptions) {
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

/**
 * What each SDK's transport is built from, the SDK class aside: the server URL, checked before
 * any agent or renewer exists (a refusal leaves nothing to clean up); the fetch that carries the
 * certificate; and what closing the transport must end, the renewer it made and then the agent.
 * Both SDKs' Streamable HTTP transports take `(url, { fetch })`, so this was written out the same
 * in transport-sdk1.ts and transport-sdk2.ts; one place keeps their order of checks and clean-up
 * the same.
 */
export function transportParts(credentials: TransportCredentials, url: string | URL | undefined, options: TransportOptions): { target: URL; fetch: typeof fetch; end: () => Promise<void> } {
  const target = urlOf(isCredentialSource(credentials) ? credentials.bundle : credentials, url, options);
  const { agent, owned } = agentFor(credentials, options);
  return {
    target,
    fetch: createMtlsFetch(agent, options) as typeof fetch,
    end: async () => {
      owned?.stop();
      await agent.close();
    },
  };
}

export function closing<T extends { close(): Promise<void> }>(transport: T, end: () => Promise<void>): T {
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
