/**
 * Stage 3 of issuance: the certificate about to be signed is checked against the profile
 * (identity.md) as a whole, independently of how profiles.ts built it. A violation refuses
 * the issuance. Cheap (a few µs): it reads the OIDs of the extensions already encoded.
 */
import { MtlsError } from '../errors.js';
import type { CertificateFields } from '../x509/certificate.js';
import { children, contentOf, decodeOid, readWhole, TAG } from '../x509/der.js';
import { OID } from '../x509/oids.js';

const REQUIRED: Record<'client' | 'server', readonly string[]> = {
  client: [OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectKeyIdentifier, OID.authorityKeyIdentifier, OID.subjectAltName],
  server: [OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectKeyIdentifier, OID.authorityKeyIdentifier, OID.subjectAltName],
};
const ALLOWED_EXTRA: Record<'client' | 'server', readonly string[]> = {
  client: [OID.subjectDirectoryAttributes, OID.cRLDistributionPoints],
  server: [OID.cRLDistributionPoints],
};

function violation(what: string): MtlsError {
  return new MtlsError('PROFILE_VIOLATION', `refused: the certificate would break identity profile v1: ${what}`, {
    hint: 'nothing was issued; this is a bug or a bad request, check the options',
  });
}

export function enforceProfile(kind: 'client' | 'server', fields: CertificateFields, issuerNotAfter: Date): void {
  const serial = fields.serial;
  if (serial.length < 8 || serial.length > 20 || (serial[0] as number) & 0x80 || serial[0] === 0) {
    throw violation('the serial must be positive, 8 to 20 octets, without a leading zero octet');
  }
  if (!(fields.notBefore < fields.notAfter)) throw violation('notBefore is not before notAfter');
  if (fields.notAfter > issuerNotAfter) throw violation('notAfter is past the issuer\'s notAfter');
  const oids = fields.extensions.map((ext) => {
    const [oid] = children(ext, readWhole(ext, TAG.SEQUENCE));
    return decodeOid(contentOf(ext, oid!));
  });
  const seen = new Set<string>();
  for (const oid of oids) {
    if (seen.has(oid)) throw violation(`extension ${oid} appears twice`);
    seen.add(oid);
    if (!REQUIRED[kind].includes(oid) && !ALLOWED_EXTRA[kind].includes(oid)) throw violation(`extension ${oid} is not part of the ${kind} profile`);
  }
  for (const oid of REQUIRED[kind]) if (!seen.has(oid)) throw violation(`extension ${oid} is missing`);
}
