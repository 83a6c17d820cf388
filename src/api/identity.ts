/**
 * `mcp-mtls/identity`: the identity profile (identity.md) in code: names, principal and role
 * URIs, and the strict decoder that turns a client certificate into an {@link Identity}.
 * Pure: no I/O, no clock.
 *
 * @packageDocumentation
 */
export type { Identity, ClientClaims } from '../identity/identity.js';
export { normalizeClaims, type NormalizedClaims } from '../identity/encode.js';
export { decodeIdentity, type DecodeOptions } from '../identity/decode.js';
export { principalUri, roleUri, parsePrincipalUri, parseRoleUri, type ParsedPrincipal } from '../identity/principal.js';
export { isValidTrustDomain, isValidPrincipalId, isValidTeamOrRole, isValidDnsName, PRINCIPAL_KINDS, type PrincipalKind } from '../identity/names.js';
