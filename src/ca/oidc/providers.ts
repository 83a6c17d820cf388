/**
 * The identity providers of a CA's `login:` config, ready to verify ID tokens: defaults
 * applied, caFile read, the mapping checked against the issuance limits, and each provider's
 * keys ({@link ProviderKeys}). Built once when `ca serve` starts: a bad config stops the start
 * with a message naming the field.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MtlsError } from '../../errors.js';
import { parseDuration } from '../../util/duration.js';
import type { CaConfig } from '../config.js';
import { DEFAULT_LOGIN_CERT_TTL, DEFAULT_SCOPES, type LoginConfig, type LoginProviderConfig } from './config-schema.js';
import { ProviderKeys, type ProviderKeysOptions } from './provider-keys.js';

/** One provider, with its defaults applied. */
export interface LoginProvider {
  readonly name: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly audiences: readonly string[];
  readonly principalClaim: LoginProviderConfig['principalClaim'];
  /** with principalClaim email: the one domain whose addresses name a principal (lowercase) */
  readonly emailDomain?: string;
  readonly groupsClaim: string;
  readonly groups: Readonly<Record<string, { readonly teams: readonly string[]; readonly roles: readonly string[] }>>;
  readonly requireMappedGroup: boolean;
  readonly certTtl: { readonly text: string; readonly ms: number };
  readonly scopes: readonly string[];
  readonly keys: ProviderKeys;
}

/** Every configured provider, by issuer (an ID token names its issuer in `iss`). */
export interface LoginProviders {
  readonly list: readonly LoginProvider[];
  byIssuer(iss: string): LoginProvider | undefined;
}

const invalid = (field: string, message: string, hint: string) => new MtlsError('CA_CONFIG_INVALID', `config.yaml: ${field}: ${message}`, { hint });

/**
 * The providers of `login` (config.yaml), or undefined when there is none. `caDir` resolves
 * relative caFile paths.
 *
 * @throws MtlsError `CA_CONFIG_INVALID` naming the field: a caFile that cannot be read or holds
 *   no certificate, a team or role the limits' allow-lists refuse, a certTtl of zero
 */
export function loginProviders(config: CaConfig & { login?: LoginConfig }, caDir: string, options: ProviderKeysOptions = {}): LoginProviders | undefined {
  const login = config.login;
  if (!login) return undefined;
  const allowedTeams = config.limits?.client?.teams;
  const allowedRoles = config.limits?.client?.roles;
  const list = login.providers.map((p, i): LoginProvider => {
    const at = `login.providers[${i}]`;
    let ca: Buffer | undefined;
    if (p.caFile) {
      const file = path.resolve(caDir, p.caFile);
      try {
        ca = fs.readFileSync(file);
      } catch (e) {
        throw invalid(`${at}.caFile`, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'point caFile at a PEM file of the CA that issued the provider\'s TLS certificate');
      }
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw invalid(`${at}.caFile`, `${file} holds no PEM certificate`, 'use a PEM file (-----BEGIN CERTIFICATE-----)');
    }
    const groups: Record<string, { teams: string[]; roles: string[] }> = {};
    for (const [group, grant] of Object.entries(p.groups ?? {})) {
      const teams = grant.teams ?? [];
      const roles = grant.roles ?? [];
      const team = allowedTeams && teams.find((t) => !allowedTeams.includes(t));
      if (team) throw invalid(`${at}.groups.${group}`, `maps to team "${team}", which limits.client.teams does not allow`, 'add the team to limits.client.teams or remove it from the mapping');
      const role = allowedRoles && roles.find((r) => !allowedRoles.includes(r));
      if (role) throw invalid(`${at}.groups.${group}`, `maps to role "${role}", which limits.client.roles does not allow`, 'add the role to limits.client.roles or remove it from the mapping');
      groups[group] = { teams, roles };
    }
    const ttlText = p.certTtl ?? DEFAULT_LOGIN_CERT_TTL;
    const ms = parseDuration(ttlText, `${at}.certTtl`);
    if (!(ms > 0)) throw invalid(`${at}.certTtl`, 'must be positive', 'e.g. certTtl: 12h');
    return {
      name: p.name,
      issuer: p.issuer,
      clientId: p.clientId,
      audiences: p.audiences ?? [p.clientId],
      principalClaim: p.principalClaim,
      ...(p.emailDomain !== undefined ? { emailDomain: p.emailDomain } : {}),
      groupsClaim: p.groupsClaim ?? 'groups',
      groups,
      requireMappedGroup: p.requireMappedGroup ?? false,
      certTtl: { text: ttlText, ms },
      scopes: p.scopes ?? DEFAULT_SCOPES,
      keys: new ProviderKeys(p, ca, options),
    };
  });
  const byIssuer = new Map(list.map((p) => [p.issuer, p]));
  return { list, byIssuer: (iss) => byIssuer.get(iss) };
}
