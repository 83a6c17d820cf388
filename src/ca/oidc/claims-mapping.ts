/**
 * A verified ID token's claims as a certificate's identity, through the provider's mapping
 * alone: the principal is `user/<principal claim>` when the value fits the id rules (refused
 * otherwise, never rewritten: `Alice@Example.com` is not quietly made `alice_example.com`,
 * which could be somebody else); for `email`, `user/<local part>` of a verified address at the
 * configured `emailDomain` and no other (see emailPrincipal), teams and roles are the union of what the person's mapped
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
  const value = provider.principalClaim === 'email' ? emailPrincipal(provider, claims, who) : claims[provider.principalClaim];
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

/**
 * `principalClaim: email`: the principal id of a verified address at the provider's
 * `emailDomain`, `bob@acme.example` -> `bob`, or a refusal. One mapping that can never give two
 * addresses one principal: exactly one `@`; the domain, ASCII only, equal to emailDomain without
 * case (DNS has none; a subdomain or a longer name ending the same is another domain); the local
 * part unchanged (its case kept, nothing stripped: `bob+x` is refused, not made `bob`), so it must
 * itself fit the id rules (ASCII: no look-alike letters). The returned value is checked against
 * the id rules by the caller; undefined when the token has no email.
 */
function emailPrincipal(provider: LoginProvider, claims: Record<string, unknown>, who: { provider: string; idpSubject: string }): string | undefined {
  const email = claims.email;
  if (typeof email !== 'string') return undefined;
  // an email the provider did not verify is whatever the person typed at sign-up: it names
  // nobody (at a provider with self-service sign-up, anyone can claim anyone's address)
  if (claims.email_verified !== true) {
    throw new OidcRefused('OIDC_PRINCIPAL', `the ID token's email is not verified (email_verified is ${JSON.stringify(claims.email_verified ?? null)}): it cannot name the principal`, `verify your email at ${provider.name}, or the operator maps another claim (login.providers[].principalClaim)`, who);
  }
  const domain = provider.emailDomain;
  // config-schema.ts requires emailDomain with principalClaim email; a provider object built without it names nobody
  if (domain === undefined) throw new OidcRefused('OIDC_PRINCIPAL', 'principalClaim is email but no emailDomain is configured', 'the operator sets login.providers[].emailDomain', who);
  const shown = JSON.stringify(email.slice(0, 140));
  const at = email.indexOf('@');
  if (at < 0 || at !== email.lastIndexOf('@')) throw new OidcRefused('OIDC_PRINCIPAL', `the email claim ${shown} is not an email address of the form local@domain (one @)`, `sign in with your ${domain} account, or the operator maps another claim (login.providers[].principalClaim)`, who);
  const local = email.slice(0, at);
  const host = email.slice(at + 1);
  // ASCII first: toLowerCase folds some non-ASCII letters into ASCII ones (the Kelvin sign into k)
  if (!/^[A-Za-z0-9.-]+$/.test(host) || host.toLowerCase() !== domain) {
    throw new OidcRefused('OIDC_PRINCIPAL', `the email ${shown} is not at the domain ${domain}: only addresses at ${domain} name a principal here`, `sign in with your ${domain} account, or ask the operator (login.providers[].emailDomain)`, who);
  }
  if (!isValidPrincipalId(local)) {
    throw new OidcRefused('OIDC_PRINCIPAL', `the local part ${JSON.stringify(local.slice(0, 140))} of the email is not a valid principal id (1-128 of A-Z a-z 0-9 . _ -, not . or ..; it is used as it is: no + suffix is stripped, no letter outside ASCII)`, 'tell the operator: this address cannot name a principal; map preferred_username or sub instead (login.providers[].principalClaim)', who);
  }
  return local;
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
