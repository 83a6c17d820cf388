/**
 * Principal and role URIs: spiffe://<trust-domain>/<kind>/<id> and
 * spiffe://<trust-domain>/role/<role>. Parsing is by hand and exact (no URL parser): the
 * profile allows one form only, with no port, userinfo, query, fragment or percent-encoding.
 */
import { isValidPrincipalId, isValidTrustDomain, type PrincipalKind } from './names.js';

/**
 * The principal URI `spiffe://<trustDomain>/<kind>/<id>`. Does not validate its parts: check
 * them with the `isValid*` functions first.
 */
export const principalUri = (trustDomain: string, kind: PrincipalKind, id: string): string =>
  `spiffe://${trustDomain}/${kind}/${id}`;

/** The role URI `spiffe://<trustDomain>/role/<role>`, as certificates carry roles. Does not validate its parts. */
export const roleUri = (trustDomain: string, role: string): string => `spiffe://${trustDomain}/role/${role}`;

/** The parts of a principal URI, as {@link parsePrincipalUri} returns them. */
export interface ParsedPrincipal {
  readonly trustDomain: string;
  readonly kind: PrincipalKind;
  readonly id: string;
}

const SPIFFE_PATH = /^spiffe:\/\/([^/]*)\/([^/]*)\/([^/]*)$/;

/**
 * The parts of a principal URI, or undefined when it is not one: exactly
 * `spiffe://<trust-domain>/user|service/<id>` with valid names; no port, userinfo, query,
 * fragment or percent-encoding. Never throws.
 */
export function parsePrincipalUri(uri: string): ParsedPrincipal | undefined {
  const m = SPIFFE_PATH.exec(uri);
  if (!m) return undefined;
  const [, td, kind, id] = m as unknown as [string, string, string, string];
  if (!isValidTrustDomain(td) || (kind !== 'user' && kind !== 'service') || !isValidPrincipalId(id)) return undefined;
  return { trustDomain: td, kind, id };
}

/**
 * The trust domain and role name of a role URI (`spiffe://<trust-domain>/role/<role>`), or
 * undefined when it is not one. Checks the trust domain but not the role name (see
 * {@link isValidTeamOrRole}). Never throws.
 */
export function parseRoleUri(uri: string): { trustDomain: string; role: string } | undefined {
  const m = SPIFFE_PATH.exec(uri);
  if (!m) return undefined;
  const [, td, seg, role] = m as unknown as [string, string, string, string];
  if (!isValidTrustDomain(td) || seg !== 'role') return undefined;
  return { trustDomain: td, role };
}
