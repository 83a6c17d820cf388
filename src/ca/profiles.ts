/**
 * Certificate profiles (identity.md): which fields and extensions each kind of certificate
 * gets. Each function reads top to bottom like the profile's table. Pure: the caller passes
 * the serial, times and keys.
 */
import type { NormalizedClaims } from '../identity/encode.js';
import { identityExtension } from '../identity/encode.js';
import type { CertificateFields } from '../x509/certificate.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  crlDistributionPoints,
  distinguishedName,
  dnsName,
  emailName,
  extKeyUsage,
  ipName,
  keyUsage,
  nameConstraints,
  subjectAltName,
  subjectKeyIdentifier,
  uriName,
} from '../x509/extensions.js';
import { isRsa, keyIdentifier, type KeyType } from '../x509/keys.js';
import { OID } from '../x509/oids.js';

/**
 * The subject CN is display only (the SAN carries the identity); RFC 5280 caps it at 64
 * characters (ub-common-name) while ids may have 128 and DNS names 253, so it is cut.
 */
export function displayCn(name: string): string {
  return name.length <= 64 ? name : `${name.slice(0, 63)}~`;
}

/** What an issuing CA contributes to every certificate it signs. */
export interface IssuerInfo {
  readonly subjectName: Uint8Array;
  readonly keyId: Uint8Array;
  readonly notAfter: Date;
}

interface Common {
  readonly serial: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Uint8Array;
}

export function rootFields(p: Common & { name: string; organization?: string }): CertificateFields {
  const subjectName = distinguishedName(p.name, p.organization);
  return {
    ...p,
    issuerName: subjectName, // self-signed
    subjectName,
    extensions: [
      basicConstraints(true, 1), // critical, cA TRUE, pathLen 1: root > intermediate > leaf
      keyUsage(['keyCertSign', 'cRLSign']), // critical
      subjectKeyIdentifier(keyIdentifier(p.spki)),
    ],
  };
}

export function intermediateFields(
  issuer: IssuerInfo,
  p: Common & { name: string; organization?: string; permitted?: { trustDomain: string; dns: readonly string[] } },
): CertificateFields {
  return {
    ...p,
    issuerName: issuer.subjectName,
    subjectName: distinguishedName(p.name, p.organization),
    extensions: [
      basicConstraints(true, 0), // critical, cA TRUE, pathLen 0: issues leaves only
      keyUsage(['keyCertSign', 'cRLSign']),
      subjectKeyIdentifier(keyIdentifier(p.spki)),
      authorityKeyIdentifier(issuer.keyId),
      // opt-in: a URI constraint names the host (RFC 5280 4.2.1.10), i.e. the trust domain
      ...(p.permitted ? [nameConstraints([uriName(p.permitted.trustDomain), ...p.permitted.dns.map(dnsName)])] : []),
    ],
  };
}

export function clientFields(
  issuer: IssuerInfo,
  p: Common & { claims: NormalizedClaims; keyType: KeyType; organization?: string; crlUrl?: string },
): CertificateFields {
  const identity = identityExtension(p.claims);
  return {
    ...p,
    issuerName: issuer.subjectName,
    subjectName: distinguishedName(displayCn(p.claims.id), p.organization), // display only
    extensions: [
      basicConstraints(false),
      keyUsage(isRsa(p.keyType) ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature']),
      extKeyUsage([OID.clientAuth]),
      subjectKeyIdentifier(keyIdentifier(p.spki)),
      authorityKeyIdentifier(issuer.keyId),
      subjectAltName([uriName(p.claims.principal), ...(p.claims.email ? [emailName(p.claims.email)] : [])]),
      ...(identity ? [identity] : []),
      ...(p.crlUrl ? [crlDistributionPoints(p.crlUrl)] : []),
    ],
  };
}

export function serverFields(
  issuer: IssuerInfo,
  p: Common & { dns: readonly string[]; ips: readonly string[]; keyType: KeyType; organization?: string; crlUrl?: string },
): CertificateFields {
  return {
    ...p,
    issuerName: issuer.subjectName,
    subjectName: distinguishedName(displayCn((p.dns[0] ?? p.ips[0]) as string), p.organization),
    extensions: [
      basicConstraints(false),
      // the profile says digitalSignature only: (EC)DHE key exchange, which Node negotiates
      keyUsage(['digitalSignature']),
      extKeyUsage([OID.serverAuth]),
      subjectKeyIdentifier(keyIdentifier(p.spki)),
      authorityKeyIdentifier(issuer.keyId),
      subjectAltName([...p.dns.map(dnsName), ...p.ips.map(ipName)]),
      ...(p.crlUrl ? [crlDistributionPoints(p.crlUrl)] : []),
    ],
  };
}
