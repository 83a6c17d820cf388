/**
 * A verified ID token's claims as a certificate's identity, through the provider's mapping
 * alone: the principal is `user/<principal claim>` when the value fits the id rules (refused
 * otherwise, never rewritten: `Alice@Example.com` is not quietly made `alice_example.com`,
 * which could be somebody else), teams and roles are the union of what the person's mapped
 * groups give (an unmapped group gives nothing), and the email goes in only when the token
 * says the provider verified it. Nothing comes from the CSR.
 */
import { isValidPrincipalId } from '../../identity/names.js';
import { normalizeClaims } from '../../identity/encode.js';
import type { LoginProvider } from './providers.js';
import { OidcRefused } from './refused.js';

export interface MappedIdentity {
  readonly kind: 'user';
  readonly id: string;
  readonly teams: string[];
  readonly roles: string[];
  readonly email?: string;
  /** the IdP groups that gave something (for the audit line) */
  readonly mappedGroups: string[];
}

export function mapClaims(provider: LoginProvider, claims: Record<string, unknown>): MappedIdentity {
  const who = { provider: provider.name, idpSubject: String(claims.sub) };
  const value = claims[provider.principalClaim];
  if (typeof value !== 'string' || !isValidPrincipalId(value)) {
    throw new OidcRefused(
      'OIDC_PRINCIPAL',
      typeof value !== 'string'
        ? `the ID token has no ${provider.principalClaim} claim to name the principal`
        : `the ${provider.principalClaim} claim ${JSON.stringify(value.slice(0, 140))} is not a valid principal id (1-128 of A-Z a-z 0-9 . _ -, not . or ..)`,
      typeof value !== 'string'
        ? `the operator can map another claim (login.providers[].principalClaim) or have ${provider.name} include ${provider.principalClaim}`
        : 'tell the operator: choose a principalClaim whose values fit the id rules (often preferred_username or sub)',
      who,
    );
  }
  // an email the provider did not verify is whatever the person typed at sign-up: it names
  // nobody (at a provider with self-service sign-up, anyone can claim anyone's address)
  if (provider.principalClaim === 'email' && claims.email_verified !== true) {
    throw new OidcRefused('OIDC_PRINCIPAL', `the ID token's email is not verified (email_verified is ${JSON.stringify(claims.email_verified ?? null)}): it cannot name the principal`, `verify your email at ${provider.name}, or the operator maps another claim (login.providers[].principalClaim)`, who);
  }
  const raw = claims[provider.groupsClaim];
  // a provider with a single group may send a string; anything else is no groups
  const groups = Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string') : typeof raw === 'string' ? [raw] : [];
  const teams = new Set<string>();
  const roles = new Set<string>();
  const mappedGroups: string[] = [];
  for (const g of groups) {
    const grant = Object.hasOwn(provider.groups, g) ? provider.groups[g] : undefined;
    if (!grant) continue;
    mappedGroups.push(g);
    for (const t of grant.teams) teams.add(t);
    for (const r of grant.roles) roles.add(r);
  }
  if (provider.requireMappedGroup && mappedGroups.length === 0) {
    throw new OidcRefused('OIDC_NO_GROUPS', `none of your groups at ${provider.name} is mapped to a team or role here`, 'ask the operator to map one of your groups (login.providers[].groups)', who);
  }
  const email = claims.email_verified === true && typeof claims.email === 'string' && emailFits(claims.email) ? claims.email : undefined;
  return { kind: 'user', id: value, teams: [...teams].sort(), roles: [...roles].sort(), ...(email ? { email } : {}), mappedGroups };
}

/** Whether the identity profile takes `email` as a certificate's rfc822Name (the one check, in identity/encode.ts). */
function emailFits(email: string): boolean {
  try {
    normalizeClaims({ trustDomain: 'x', kind: 'user', id: 'x', teams: [], roles: [], email });
    return true;
  } catch {
    return false;
  }
}
