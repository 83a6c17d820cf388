/**
 * The verified identity, told to the upstream inside each message it receives:
 * `params._meta["mcp-mtls/identity"]`. A value a client wrote under that key is removed first,
 * so a client never speaks for itself there.
 */
import type { Identity } from '../identity/identity.js';

/**
 * The `_meta` key under which the gateway tells the upstream who is calling: every request
 * and notification it forwards carries `params._meta["mcp-mtls/identity"] = { principal,
 * teams, roles, scopes }`, and for a delegated certificate (docs/delegation.md) `actingFor:
 * { principal, teams, roles, tools? }` (tools: profile v1.2's globs, when the delegation is
 * limited to some) and `actors` (principal is then the actor's, teams and roles
 * its own: none). A value a client wrote under this key is removed first.
 */
export const IDENTITY_META_KEY = 'mcp-mtls/identity';

/** A JSON-RPC message as far as the gateway's rewriting looks into it. */
export interface RpcMessage {
  id?: unknown;
  method?: unknown;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
}

/**
 * For a delegated caller (docs/delegation.md), whom it acts for and the actor chain, as the
 * gateway's `_meta` and its audit lines carry them; `{}` for any other caller.
 */
export function delegationFields(identity: Identity): { actingFor?: { principal: string; teams: readonly string[]; roles: readonly string[]; tools?: readonly string[] }; actors?: readonly string[] } {
  const af = identity.actingFor;
  // profile v1.2: the tool globs the delegation is limited to, when it is (the gateway enforced them already)
  return af ? { actingFor: { principal: af.principal, teams: af.teams, roles: af.roles, ...(af.tools ? { tools: af.tools } : {}) }, actors: identity.actors ?? [identity.principal] } : {};
}

/** Every message loses a client-written identity key; requests and notifications get the verified one. */
export function withIdentity(m: RpcMessage, identity: Identity, scopes: readonly string[]): RpcMessage {
  if (!m || typeof m !== 'object') return m;
  const stripped = { ...m };
  if (stripped.result && typeof stripped.result === 'object' && stripped.result._meta && typeof stripped.result._meta === 'object') {
    const meta = { ...(stripped.result._meta as Record<string, unknown>) };
    delete meta[IDENTITY_META_KEY];
    stripped.result = { ...stripped.result, _meta: meta };
  }
  if (typeof m.method !== 'string') return stripped;
  const params = m.params && typeof m.params === 'object' ? { ...m.params } : {};
  const meta = params._meta && typeof params._meta === 'object' ? { ...(params._meta as Record<string, unknown>) } : {};
  delete meta[IDENTITY_META_KEY]; // a client never speaks for itself here
  meta[IDENTITY_META_KEY] = { principal: identity.principal, teams: identity.teams, roles: identity.roles, scopes, ...delegationFields(identity) };
  return { ...stripped, params: { ...params, _meta: meta } };
}
