/**
 * `mcp-mtls/client`: load a certificate bundle and connect with it (an undici Agent or a
 * fetch function that present the client certificate). No MCP SDK is loaded from here: the
 * transports are in `mcp-mtls/client/sdk1` and `mcp-mtls/client/sdk2`.
 *
 * @packageDocumentation
 */
export { loadBundle, type Bundle, type BundlePassphrase, type LoadBundleOptions } from '../bundle/load.js';
export { createMtlsAgent, createMtlsFetch, CertificateRefusedError, type MtlsAgentOptions, type FetchLike } from '../client/agent.js';
export { createDelegatingAgent, type DelegatingAgent, type DelegatingAgentOptions, type DelegationProof } from '../client/delegating-agent.js';
export { signGrant, type SignGrantOptions } from '../delegation/grant.js';
export { createBundleRenewer, loadBundleRenewer, renewalTime, systemClock, type BundleRenewer, type BundleRenewerOptions, type RenewalStatus, type RenewalState, type RenewalClock, type RenewalBackoff } from '../client/renewal.js';
export { RenewingAgent, type CredentialSource, type BundleCredentials } from '../client/agent.js';
export { RenewalHttpError } from '../client/renew-request.js';
export { type ServerUrlOptions } from '../client/server-url.js';
