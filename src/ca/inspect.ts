/** `inspect`: describing one certificate ({@link inspectCertificate}). */
import crypto from 'node:crypto';
import { isMtlsError } from '../errors.js';
import { checkClientCertificate, identityFromParsed } from '../identity/decode.js';
import type { Identity } from '../identity/identity.js';
import {
  decodeBasicConstraints,
  decodeExtKeyUsage,
  decodeGeneralNames,
  decodeKeyUsage,
  formatName,
  parseCertificate,
} from '../x509/certificate.js';
import { keyTypeOf } from '../x509/keys.js';
import { OID } from '../x509/oids.js';
import { sha256Hex } from '../util/sha256.js';

/** What {@link inspectCertificate} found in a certificate. */
export interface InspectReport {
  /** the subject name for display, "CN=..., O=..." (never for authorization) */
  readonly subject: string;
  /** the issuer name for display, like `subject` */
  readonly issuer: string;
  /** lowercase hex */
  readonly serial: string;
  /** SHA-256 of the DER, lowercase hex */
  readonly fingerprint: string;
  /** ISO 8601 */
  readonly notBefore: string;
  /** ISO 8601 */
  readonly notAfter: string;
  /** at `InspectContext.now` */
  readonly validity: 'valid' | 'expired' | 'not yet valid';
  /** `ca` by basicConstraints, else by extended key usage (clientAuth before serverAuth) */
  readonly type: 'client' | 'server' | 'ca' | 'other';
  /** e.g. `ec-p256`, or `unsupported` */
  readonly keyType: string;
  /** key usage bit names, e.g. `digitalSignature` */
  readonly keyUsage: string[];
  /** `clientAuth`, `serverAuth`, or the OID of any other usage */
  readonly extKeyUsage: string[];
  readonly subjectAltNames: { uris: string[]; emails: string[]; dns: string[]; ips: string[] };
  /** the identity a server would see (client certificates), or null */
  readonly identity: Identity | null;
  /** why the certificate is not a usable identity, when it is a client certificate */
  readonly identityError?: { code: string; message: string };
  /** leaf -> intermediate -> root signatures and validity at `now`; `unknown` without the CA certificates */
  readonly chain: { status: 'verified' | 'failed' | 'unknown'; reason?: string };
}

const EKU_NAMES: Record<string, string> = { [OID.clientAuth]: 'clientAuth', [OID.serverAuth]: 'serverAuth' };

/** What {@link inspectCertificate} checks a certificate against. */
export interface InspectContext {
  /** the CA's root and intermediate (DER), when known; without both the chain is not checked */
  readonly root?: Buffer;
  readonly intermediate?: Buffer;
  /** the time validity is judged at */
  readonly now: Date;
}

/**
 * Everything a person needs to know about one certificate (DER): names, serial, validity, key,
 * usages, SANs, the identity a server would see, and the chain when `ctx` has the CA. Decoded
 * with the same strict reader the servers use, so a malformed claim is reported (in
 * `identityError`, not thrown) exactly as a server would refuse it.
 *
 * @throws MtlsError `CERT_INVALID` or `DER_MALFORMED` when `der` is not a certificate
 */
export function inspectCertificate(der: Buffer, ctx: InspectContext): InspectReport {
  const cert = parseCertificate(der);
  const ext = (oid: string) => cert.extensions.get(oid);
  const bc = ext(OID.basicConstraints);
  const isCa = bc ? decodeBasicConstraints(bc.value).ca : false;
  const eku = ext(OID.extKeyUsage) ? decodeExtKeyUsage(ext(OID.extKeyUsage)!.value) : [];
  const type = isCa ? 'ca' : eku.includes(OID.clientAuth) ? 'client' : eku.includes(OID.serverAuth) ? 'server' : 'other';
  const san = ext(OID.subjectAltName) ? decodeGeneralNames(ext(OID.subjectAltName)!.value) : { uris: [], emails: [], dns: [], ips: [] };
  let identity: Identity | null = null;
  let identityError: InspectReport['identityError'];
  if (type === 'client' || san.uris.length > 0) {
    try {
      checkClientCertificate(cert); // reader rule 1: a CA or a non-client certificate is no identity
      identity = identityFromParsed(cert);
    } catch (e) {
      if (!isMtlsError(e)) throw e;
      identityError = { code: e.code, message: e.message };
    }
  }
  const now = ctx.now.getTime();
  let keyType: string;
  try {
    keyType = keyTypeOf(crypto.createPublicKey({ key: cert.spki, format: 'der', type: 'spki' }));
  } catch {
    keyType = 'unsupported';
  }
  return {
    subject: formatName(cert.subjectName),
    issuer: formatName(cert.issuerName),
    serial: cert.serial,
    fingerprint: sha256Hex(cert.der),
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    validity: now < cert.notBefore.getTime() ? 'not yet valid' : now > cert.notAfter.getTime() ? 'expired' : 'valid',
    type,
    keyType,
    keyUsage: ext(OID.keyUsage) ? decodeKeyUsage(ext(OID.keyUsage)!.value) : [],
    extKeyUsage: eku.map((o) => EKU_NAMES[o] ?? o),
    subjectAltNames: { uris: san.uris, emails: san.emails, dns: san.dns, ips: san.ips },
    identity,
    ...(identityError ? { identityError } : {}),
    chain: verifyChain(der, ctx),
  };
}

/** Signature and validity of leaf -> intermediate -> root, with node:crypto. */
export function verifyChain(der: Buffer, ctx: InspectContext): InspectReport['chain'] {
  if (!ctx.root || !ctx.intermediate) return { status: 'unknown', reason: 'no CA to check against (pass --dir)' };
  const leaf = new crypto.X509Certificate(der);
  const inter = new crypto.X509Certificate(ctx.intermediate);
  const root = new crypto.X509Certificate(ctx.root);
  const at = ctx.now;
  const within = (c: crypto.X509Certificate) => new Date(c.validFrom) <= at && at <= new Date(c.validTo);
  if (leaf.fingerprint256 === root.fingerprint256 || leaf.fingerprint256 === inter.fingerprint256) {
    return within(leaf) ? { status: 'verified' } : { status: 'failed', reason: 'outside its validity period' };
  }
  if (!leaf.checkIssued(inter) || !leaf.verify(inter.publicKey)) return { status: 'failed', reason: 'not signed by this CA\'s intermediate' };
  if (!inter.checkIssued(root) || !inter.verify(root.publicKey)) return { status: 'failed', reason: 'the intermediate is not signed by the root' };
  if (!within(leaf)) return { status: 'failed', reason: 'the certificate is outside its validity period' };
  if (!within(inter) || !within(root)) return { status: 'failed', reason: 'a CA certificate is outside its validity period' };
  return { status: 'verified' };
}
