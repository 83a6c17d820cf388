/**
 * The `req.auth` every listener sets (createMtlsServer, the middleware, the forwarded-identity
 * reader): the MCP SDK's AuthInfo shape, built in one place so the three cannot drift.
 */
import type { Identity } from '../identity/identity.js';

/** The MCP SDK's AuthInfo shape, as the adapter fills it. */
export interface MtlsAuthInfo {
  token: string;
  clientId: string;
  scopes: string[];
  extra: { identity: Identity };
}

/**
 * `req.auth` for `identity`: `clientId` = principal, `token` = certificate fingerprint, `scopes`
 * empty (the MCP adapters fill them from the policy), `extra.identity` = the Identity and, for an
 * identity a gateway forwarded, `extra.via` = that gateway.
 */
export function authInfoOf(identity: Identity): MtlsAuthInfo;
export function authInfoOf(identity: Identity, via: Identity): MtlsAuthInfo & { extra: { identity: Identity; via: Identity } };
export function authInfoOf(identity: Identity, via?: Identity): MtlsAuthInfo & { extra: { via?: Identity } } {
  return { token: identity.fingerprint, clientId: identity.principal, scopes: [], extra: via ? { identity, via } : { identity } };
}
