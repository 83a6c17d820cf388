/**
 * The caller of a tool, typed: both SDK adapters put the verified identity into the request's
 * `authInfo.extra.identity` (SDK 1.x: `extra.authInfo`; 2.x: `ctx.http.authInfo`). Reading it
 * through this function instead of a cast fails loudly when a handler runs without the
 * adapter in front (a misconfiguration that must not look like an anonymous caller).
 */
import { MtlsError } from '../errors.js';
import type { Identity } from '../identity/identity.js';

/** What both SDK generations hand a tool handler: an object with the request's `authInfo`. */
export interface WithAuthInfo {
  readonly authInfo?: { readonly extra?: Record<string, unknown> } | undefined;
}

/**
 * The verified identity of the client calling a tool, from the TLS session (never from
 * arguments the model wrote).
 *
 * @param extra - the second argument of an SDK 1.x tool handler, or `ctx.http` of a 2.x one
 * @throws MtlsError `NOT_AUTHENTICATED` when the request did not come through an mcp-mtls adapter
 */
export function callerOf(extra: WithAuthInfo | undefined): Identity {
  const identity = extra?.authInfo?.extra?.identity as Identity | undefined;
  if (!identity || typeof identity.principal !== 'string') {
    throw new MtlsError('NOT_AUTHENTICATED', 'this request carries no verified client identity', { hint: 'serve the MCP server through createMcpSdk1Handler / createMcpSdk2Handler (or the gateway with trustForwardedIdentity)' });
  }
  return identity;
}
