/**
 * Certificate to Identity, strictly (identity.md reader rules 3 to 5). Chain, validity and
 * revocation (rules 1 and 2) are the TLS layer's and the caller's; `checkClientCertificate`
 * covers the parts of rule 1 that OpenSSL does not (a CA certificate used as a leaf).
 * Pure: no I/O, the clock is not read.
 */
import { MtlsError } from '../errors.js';
import {
  decodeBasicConstraints,
  decodeExtKeyUsage,
  decodeGeneralNames,
  parseCertificate,
  type ParsedCertificate,
} from '../x509/certificate.js';
import { decodeIdentityAttributes } from '../x509/identity-extension.js';
import { OID } from '../x509/oids.js';
import { sha256Hex } from '../util/sha256.js';
import type { Identity } from './identity.js';
import { isValidTeamOrRole, isValidToolGlob, MAX_DELEGATED_TOOLS } from './names.js';
import { parsePrincipalUri, parseRoleUri } from './principal.js';

/** Options of {@link decodeIdentity}. */
export interface DecodeOptions {
  /**
   * The trust domains accepted; a certificate from any other is refused with
   * `IDENTITY_FOREIGN_TRUST_DOMAIN`. Undefined (the default) accepts any trust domain, as
   * `inspect` does; a server should always set it.
   */
  readonly trustDomains?: readonly string[];
  /**
   * Whether a delegated certificate (profile v1.1: an accessIdentity attribute) is read as
   * such: `Identity.actingFor` and `actors` set (default true). false reads it as a v1 reader
   * would use it: the holder (the actor) alone, with none of the delegated teams or roles
   * (they are qualified by the delegator, not the holder's). A malformed delegation is refused
   * either way.
   */
  readonly delegation?: boolean;
}

function reject(code: ConstructorParameters<typeof MtlsError>[0], message: string): MtlsError {
  return new MtlsError(code, message, { hint: 'issue the client a new certificate from the mcp-mtls CA' });
}

/**
 * Reads the {@link Identity} out of a client certificate, strictly (identity.md reader rules
 * 3 to 5). It checks neither the chain, nor validity dates, nor revocation: call it on a
 * certificate the TLS layer has verified.
 *
 * @param der - the certificate, DER-encoded
 * @returns the identity, frozen; teams and roles sorted
 * @throws MtlsError `IDENTITY_*` when the certificate breaks the profile (see identity.md),
 *   `DER_MALFORMED` or `CERT_INVALID` when it is not a well-formed certificate
 */
export function decodeIdentity(der: Uint8Array, options: DecodeOptions = {}): Identity {
  return identityFromParsed(parseCertificate(der), options);
}

export function identityFromParsed(cert: ParsedCertificate, options: DecodeOptions = {}): Identity {
  const sanExt = cert.extensions.get(OID.subjectAltName);
  const san = sanExt ? decodeGeneralNames(sanExt.value) : undefined;
  const uris = san?.uris ?? [];
  if (uris.length !== 1) {
    throw reject('IDENTITY_URI_SAN_COUNT', `the certificate has ${uris.length} URI SANs; profile v1 requires exactly one principal URI`);
  }
  const uri = uris[0] as string;
  const principal = parsePrincipalUri(uri);
  if (!principal) {
    throw reject('IDENTITY_BAD_PRINCIPAL', `URI SAN "${uri}" is not a principal URI (spiffe://<trust-domain>/user|service/<id>)`);
  }
  if (options.trustDomains && !options.trustDomains.includes(principal.trustDomain)) {
    throw reject('IDENTITY_FOREIGN_TRUST_DOMAIN', `trust domain "${principal.trustDomain}" is not accepted here`);
  }
  let teams: readonly string[] = [];
  let roles: readonly string[] = [];
  let delegation: Pick<Identity, 'actingFor' | 'actors'> = {};
  const sda = cert.extensions.get(OID.subjectDirectoryAttributes);
  if (sda) {
    const attrs = decodeIdentityAttributes(sda.value);
    for (const t of attrs.teams) {
      if (!isValidTeamOrRole(t)) throw reject('IDENTITY_BAD_NAME', `invalid team name "${t}"`);
    }
    if (new Set(attrs.teams).size !== attrs.teams.length) throw reject('IDENTITY_MALFORMED', 'a team appears twice');
    teams = [...attrs.teams].sort();
    roles = attrs.roleUris
      .map((r) => {
        const parsed = parseRoleUri(r);
        if (!parsed) throw reject('IDENTITY_BAD_NAME', `role "${r}" is not a role URI (spiffe://<trust-domain>/role/<name>)`);
        if (parsed.trustDomain !== principal.trustDomain) {
          throw reject('IDENTITY_FOREIGN_TRUST_DOMAIN', `role "${r}" belongs to trust domain "${parsed.trustDomain}", not "${principal.trustDomain}"`);
        }
        if (!isValidTeamOrRole(parsed.role)) throw reject('IDENTITY_BAD_NAME', `invalid role name "${parsed.role}"`);
        return parsed.role;
      })
      .sort();
    if (new Set(roles).size !== roles.length) throw reject('IDENTITY_MALFORMED', 'a role appears twice');
    if (attrs.accessIdentity) {
      const delegator = delegatorOf(attrs.accessIdentity, principal.trustDomain, uri);
      // the teams and roles a delegated certificate carries are the delegator's (qualified by it): never the holder's
      if (options.delegation !== false) {
        delegation = { actingFor: Object.freeze({ ...delegator, teams: Object.freeze(teams), roles: Object.freeze(roles), ...(attrs.accessIdentity.tools ? { tools: Object.freeze([...attrs.accessIdentity.tools]) } : {}) }), actors: Object.freeze([uri]) };
      }
      teams = [];
      roles = [];
    }
  }
  const email = san?.emails[0];
  const identity: Identity = {
    principal: uri,
    trustDomain: principal.trustDomain,
    kind: principal.kind,
    id: principal.id,
    teams: Object.freeze(teams),
    roles: Object.freeze(roles),
    ...(email === undefined ? {} : { email }),
    serial: cert.serial,
    fingerprint: sha256Hex(cert.der),
    notAfter: cert.notAfter,
    ...delegation,
  };
  return Object.freeze(identity);
}

/** Profile v1.1: the accessIdentity's delegator, checked: this trust domain's service URI, a principal of it, not the holder. */
function delegatorOf(ai: { service: string; ident: string; tools?: readonly string[] }, trustDomain: string, holder: string): { principal: string; trustDomain: string; kind: 'user' | 'service'; id: string } {
  if (ai.service !== `spiffe://${trustDomain}`) {
    throw reject('IDENTITY_FOREIGN_TRUST_DOMAIN', `accessIdentity service "${ai.service}" is not this certificate's trust domain (spiffe://${trustDomain})`);
  }
  const p = parsePrincipalUri(ai.ident);
  if (!p) throw reject('IDENTITY_BAD_PRINCIPAL', `accessIdentity ident "${ai.ident}" is not a principal URI (spiffe://<trust-domain>/user|service/<id>)`);
  if (p.trustDomain !== trustDomain) throw reject('IDENTITY_FOREIGN_TRUST_DOMAIN', `the delegator ${ai.ident} is not of trust domain "${trustDomain}"`);
  if (ai.ident === holder) throw reject('IDENTITY_BAD_PRINCIPAL', `${holder} cannot act for itself`);
  // profile v1.2: the tool globs the delegation is limited to, in the policy's glob syntax
  if (ai.tools && ai.tools.length > MAX_DELEGATED_TOOLS) throw reject('IDENTITY_BAD_NAME', `a delegation names ${ai.tools.length} tool globs; profile v1.2 allows ${MAX_DELEGATED_TOOLS}`);
  for (const g of ai.tools ?? []) if (!isValidToolGlob(g)) throw reject('IDENTITY_BAD_NAME', `invalid tool glob "${g}" in the delegation (1-128 printable ASCII characters, the policy's glob syntax)`);
  return { principal: ai.ident, ...p };
}

/**
 * Reader rule 1's own checks: extKeyUsage includes clientAuth and the certificate is not a
 * CA (OpenSSL, so Node, accepts a cA TRUE certificate with clientAuth as a client cert).
 */
export function checkClientCertificate(cert: ParsedCertificate): void {
  const bc = cert.extensions.get(OID.basicConstraints);
  if (bc && decodeBasicConstraints(bc.value).ca) {
    throw new MtlsError('CERT_INVALID', 'a CA certificate cannot be used as a client certificate');
  }
  const eku = cert.extensions.get(OID.extKeyUsage);
  if (!eku || !decodeExtKeyUsage(eku.value).includes(OID.clientAuth)) {
    throw new MtlsError('CERT_INVALID', 'the certificate is not for client authentication (no extKeyUsage clientAuth)');
  }
}
