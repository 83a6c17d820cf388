/** Claims to the identity extension (identity.md): validates every name, then encodes. */
import { identityAttributesExtension, sortByCodePoint } from '../x509/identity-extension.js';
import type { ClientClaims } from './identity.js';
import { assertPrincipalId, assertTeamOrRole, assertTrustDomain, isValidToolGlob, MAX_DELEGATED_TOOLS, toolGlobsTooLarge } from './names.js';
import { principalUri, roleUri } from './principal.js';
import { MtlsError } from '../errors.js';

/** {@link ClientClaims} that passed the profile's naming rules, as {@link normalizeClaims} returns them. */
export interface NormalizedClaims extends ClientClaims {
  /** The principal URI built from the claims: `spiffe://<trustDomain>/<kind>/<id>`. */
  readonly principal: string;
  /** Profile v1.1: the delegator's principal URI, when `actingFor` is set. */
  readonly actingForPrincipal?: string;
}

const EMAIL_RE = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/**
 * Checks every claim against the profile's naming rules; teams and roles come back sorted
 * (by code point) and unique, with the principal URI added.
 *
 * @throws MtlsError `BAD_TRUST_DOMAIN` for an invalid trust domain, `BAD_NAME` for an invalid
 *   id, team, role or email address
 */
export function normalizeClaims(claims: ClientClaims): NormalizedClaims {
  assertTrustDomain(claims.trustDomain);
  assertPrincipalId(claims.id, claims.kind);
  const teams = sortByCodePoint(claims.teams.map((t) => assertTeamOrRole(t, 'team')));
  const roles = sortByCodePoint(claims.roles.map((r) => assertTeamOrRole(r, 'role')));
  if (claims.email !== undefined && (!EMAIL_RE.test(claims.email) || claims.email.length > 254)) {
    throw new MtlsError('BAD_NAME', `invalid email address "${claims.email}"`, { hint: 'use a plain ASCII address such as alice@example.com' });
  }
  const principal = principalUri(claims.trustDomain, claims.kind, claims.id);
  let delegation = {};
  if (claims.actingFor) {
    assertPrincipalId(claims.actingFor.id, claims.actingFor.kind);
    const actingForPrincipal = principalUri(claims.trustDomain, claims.actingFor.kind, claims.actingFor.id);
    if (actingForPrincipal === principal) throw new MtlsError('BAD_NAME', `${principal} cannot act for itself`, { hint: 'a delegated certificate names another principal than its holder' });
    const tools = claims.actingFor.tools === undefined ? undefined : sortByCodePoint(claims.actingFor.tools);
    if (tools) {
      if (tools.length === 0 || tools.length > MAX_DELEGATED_TOOLS) throw new MtlsError('BAD_NAME', `a delegation limited to tools names 1 to ${MAX_DELEGATED_TOOLS} tool globs (${tools.length} given)`, { hint: 'leave tools out for no limit' });
      for (const g of tools) if (!isValidToolGlob(g)) throw new MtlsError('BAD_NAME', `invalid tool glob "${g}"`, { hint: 'a tool name or a glob of the policy\'s syntax (read_*, {read,list}_repo): 1-128 printable ASCII characters' });
      const tooLarge = toolGlobsTooLarge(tools);
      if (tooLarge) throw new MtlsError('BAD_NAME', tooLarge, { hint: 'limit the delegation to fewer, shorter globs' });
    }
    delegation = { actingFor: { kind: claims.actingFor.kind, id: claims.actingFor.id, ...(tools ? { tools } : {}) }, actingForPrincipal };
  }
  return {
    trustDomain: claims.trustDomain,
    kind: claims.kind,
    id: claims.id,
    teams,
    roles,
    ...(claims.email === undefined ? {} : { email: claims.email }),
    principal,
    ...delegation,
  };
}

/** The trust domain's URI, `spiffe://<td>`: SvceAuthInfo.service of a delegated certificate (profile v1.1). */
export const trustDomainUri = (trustDomain: string): string => `spiffe://${trustDomain}`;

/** The subjectDirectoryAttributes Extension DER for the claims, or undefined if none. */
export function identityExtension(claims: NormalizedClaims): Buffer | undefined {
  return identityAttributesExtension({
    teams: claims.teams,
    roleUris: claims.roles.map((r) => roleUri(claims.trustDomain, r)),
    ...(claims.actingForPrincipal ? { accessIdentity: { service: trustDomainUri(claims.trustDomain), ident: claims.actingForPrincipal, ...(claims.actingFor?.tools ? { tools: claims.actingFor.tools } : {}) } } : {}),
  });
}
