/**
 * The CA constraints OpenSSL applies to a chain in a TLS handshake, for the chains no handshake
 * verified: client certificates a trusted proxy forwarded (authenticate.ts, `chainCheck`).
 *
 * Node has no call into OpenSSL's chain verification (X509_verify_cert) for a certificate that
 * did not arrive in a handshake: `X509Certificate#verify` checks one signature and `checkIssued`
 * one name/key-identifier/keyUsage link, nothing more. So the rest of what the handshake
 * refuses is checked here, each written after RFC 5280 and OpenSSL 3's x509_vfy.c, and each
 * compared with a real handshake in test/security/security-matrix.test.ts:
 * - every CA certificate: keyUsage, when present, includes keyCertSign (RFC 5280 4.2.1.3);
 *   extKeyUsage, when present, includes clientAuth or anyExtendedKeyUsage (OpenSSL's purpose
 *   check for sslclient applies to CAs too); no critical extension it does not understand;
 * - pathLenConstraint: no more CA certificates below a CA than it allows (self-issued ones not
 *   counted, RFC 5280 6.1.4 (l));
 * - nameConstraints on any CA: every URI, DNS, e-mail and IP name of every certificate below it
 *   within its permitted subtrees and outside its excluded ones. Kinds this code does not match
 *   (directoryName, otherName, ...) and minimum/maximum refuse the chain (fail closed, where
 *   OpenSSL would check them);
 * - signatures with MD5 or SHA-1 (below OpenSSL's security level 1, which refuses them in a
 *   handshake: a client cannot even load such a certificate) refused on every certificate but
 *   the self-signed root, whose signature nobody checks; keys below that level (RSA and DSA
 *   under 1024 bits, EC curves under 160 bits) on every certificate.
 */
import crypto from 'node:crypto';
import { decodeBasicConstraints, type ParsedCertificate } from '../x509/certificate.js';
import { children, contentOf, decodeOid, readWhole, TAG } from '../x509/der.js';
import { OID } from '../x509/oids.js';

/** Extensions understood when critical (the set authenticate.ts refuses leaves by). */
export const UNDERSTOOD_CRITICAL = new Set([OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectAltName, OID.nameConstraints, OID.subjectKeyIdentifier, OID.authorityKeyIdentifier, '2.5.29.32', '2.5.29.36', '2.5.29.54']);

/** md2, md4, md5, sha1 with RSA (and OIW's), ecdsa-with-SHA1, dsa-with-SHA1 */
const WEAK_SIGNATURES = new Set(['1.2.840.113549.1.1.2', '1.2.840.113549.1.1.3', '1.2.840.113549.1.1.4', '1.2.840.113549.1.1.5', '1.3.14.3.2.29', '1.2.840.10045.4.1', '1.2.840.10040.4.3']);

const ANY_EKU = '2.5.29.37.0';
const KEY_CERT_SIGN = 0x04; // bit 5 of the first octet

/** What a certificate is refused for, and the 401 reason a handshake gives for it. */
export interface ChainProblem {
  readonly reason: 'unknown_ca' | 'not_a_client_certificate';
  readonly detail: string;
}

const nameOf = (c: ParsedCertificate): string => `CA certificate ${c.serial}`;

/** the named curves OpenSSL knows under 160 bits */
const SMALL_CURVES = new Set(['secp112r1', 'secp112r2', 'secp128r1', 'secp128r2', 'sect113r1', 'sect113r2', 'sect131r1', 'sect131r2', 'wap-wsg-idm-ecid-wtls1', 'wap-wsg-idm-ecid-wtls4', 'wap-wsg-idm-ecid-wtls6', 'wap-wsg-idm-ecid-wtls8']);

/** A key below OpenSSL's security level 1 (80 bits: RSA/DSA under 1024 bits, EC under 160), which a handshake refuses; undefined otherwise. */
function weakKey(c: ParsedCertificate): string | undefined {
  const key = crypto.createPublicKey({ key: c.spki, format: 'der', type: 'spki' });
  const d = key.asymmetricKeyDetails ?? {};
  if ((key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss' || key.asymmetricKeyType === 'dsa') && (d.modulusLength ?? 0) < 1024) return `${key.asymmetricKeyType} ${d.modulusLength ?? 0} bits`;
  if (key.asymmetricKeyType === 'ec' && SMALL_CURVES.has(d.namedCurve ?? '')) return `curve ${d.namedCurve}`;
  return undefined;
}

function keyUsageAllowsCertSign(c: ParsedCertificate): boolean {
  const ku = c.extensions.get(OID.keyUsage);
  if (!ku) return true;
  const v = ku.value;
  const t = readWhole(v, TAG.BIT_STRING);
  const bits = contentOf(v, t);
  return bits.length >= 2 && ((bits[1] as number) & KEY_CERT_SIGN) !== 0;
}

function ekuAllowsClient(c: ParsedCertificate): boolean {
  const eku = c.extensions.get(OID.extKeyUsage);
  if (!eku) return true;
  const oids = children(eku.value, readWhole(eku.value, TAG.SEQUENCE)).map((t) => decodeOid(contentOf(eku.value, t)));
  return oids.includes(OID.clientAuth) || oids.includes(ANY_EKU);
}

const selfIssued = (c: ParsedCertificate): boolean => c.subjectName.equals(c.issuerName);

interface Subtree {
  readonly tag: number;
  readonly base: Buffer;
}

function subtrees(value: Buffer): { permitted: Subtree[]; excluded: Subtree[]; unsupported?: string } {
  const out: { permitted: Subtree[]; excluded: Subtree[]; unsupported?: string } = { permitted: [], excluded: [] };
  for (const part of children(value, readWhole(value, TAG.SEQUENCE))) {
    const list = part.tag === 0xa0 ? out.permitted : part.tag === 0xa1 ? out.excluded : undefined;
    if (!list) return { ...out, unsupported: `a nameConstraints field tagged 0x${part.tag.toString(16)}` };
    for (const st of children(value, part)) {
      const [base, ...minMax] = children(value, st);
      if (!base) return { ...out, unsupported: 'an empty GeneralSubtree' };
      if (minMax.length > 0) return { ...out, unsupported: 'a GeneralSubtree with minimum or maximum' };
      if (![0x81, 0x82, 0x86, 0x87].includes(base.tag)) return { ...out, unsupported: `a name constraint of GeneralName tag 0x${base.tag.toString(16)} (only URI, DNS, e-mail and IP constraints are checked for a forwarded certificate)` };
      list.push({ tag: base.tag, base: contentOf(value, base) });
    }
  }
  return out;
}

const lower = (s: string) => s.toLowerCase();

function dnsMatches(name: string, base: string): boolean {
  const n = lower(name);
  const b = lower(base);
  if (b === '') return true;
  if (b.startsWith('.')) return n.endsWith(b);
  return n === b || n.endsWith(`.${b}`);
}

function hostMatches(host: string, base: string): boolean {
  const h = lower(host);
  const b = lower(base);
  return b.startsWith('.') ? h.endsWith(b) : h === b;
}

function uriHost(uri: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(uri);
  return m && m[1] ? m[1] : undefined;
}

function emailMatches(email: string, base: string): boolean {
  const e = lower(email);
  const b = lower(base);
  if (b.includes('@')) return e === b;
  const at = e.lastIndexOf('@');
  const domain = at < 0 ? e : e.slice(at + 1);
  return b.startsWith('.') ? domain.endsWith(b) : domain === b;
}

function ipMatches(ip: Buffer, base: Buffer): boolean {
  if (base.length !== ip.length * 2) return false;
  for (let i = 0; i < ip.length; i++) if (((ip[i] as number) & (base[ip.length + i] as number)) !== ((base[i] as number) & (base[ip.length + i] as number))) return false;
  return true;
}

/** The names of a certificate that name constraints apply to, by GeneralName tag. */
function namesOf(c: ParsedCertificate): { tag: number; text: string; bytes: Buffer }[] {
  const san = c.extensions.get(OID.subjectAltName);
  if (!san) return [];
  const out: { tag: number; text: string; bytes: Buffer }[] = [];
  for (const gn of children(san.value, readWhole(san.value, TAG.SEQUENCE))) {
    if (![0x81, 0x82, 0x86, 0x87].includes(gn.tag)) continue;
    const bytes = contentOf(san.value, gn);
    const ip = () => (bytes.length === 4 ? [...bytes].join('.') : (bytes.toString('hex').match(/..../g) ?? []).join(':'));
    out.push({ tag: gn.tag, text: gn.tag === 0x87 ? ip() : bytes.toString('latin1'), bytes });
  }
  return out;
}

function matches(name: { tag: number; text: string; bytes: Buffer }, st: Subtree): boolean {
  const base = st.base.toString('latin1');
  switch (name.tag) {
    case 0x82:
      return dnsMatches(name.text, base);
    case 0x86: {
      const host = uriHost(name.text);
      return host !== undefined && hostMatches(host, base);
    }
    case 0x81:
      return emailMatches(name.text, base);
    default:
      return ipMatches(name.bytes, st.base);
  }
}

/**
 * The first constraint of `path` (the issuing CA first, up to the root) that `leaf` and the CAs
 * between break, or undefined when none does. Malformed extensions are a problem too.
 */
export function chainConstraintProblem(leaf: ParsedCertificate, path: readonly ParsedCertificate[]): ChainProblem | undefined {
  try {
    const all = [leaf, ...path];
    for (let i = 0; i < path.length; i++) {
      const ca = path[i] as ParsedCertificate;
      const isRoot = i === path.length - 1 && selfIssued(ca);
      for (const [oid, ext] of ca.extensions) if (ext.critical && !UNDERSTOOD_CRITICAL.has(oid)) return { reason: 'unknown_ca', detail: `its ${nameOf(ca)} has an unknown critical extension ${oid}` };
      if (!keyUsageAllowsCertSign(ca)) return { reason: 'unknown_ca', detail: `its ${nameOf(ca)} may not sign certificates (keyUsage without keyCertSign)` };
      if (!ekuAllowsClient(ca)) return { reason: 'not_a_client_certificate', detail: `its ${nameOf(ca)} is restricted by extKeyUsage to other purposes than clientAuth` };
      const bc = ca.extensions.get(OID.basicConstraints);
      const pathLen = bc ? decodeBasicConstraints(bc.value).pathLen : undefined;
      const below = path.slice(0, i).filter((c) => !selfIssued(c)).length;
      if (pathLen !== undefined && below > pathLen) return { reason: 'unknown_ca', detail: `its ${nameOf(ca)} allows ${pathLen} CA certificate(s) below it (pathLenConstraint), the chain has ${below}` };
      if (!isRoot && WEAK_SIGNATURES.has(ca.signatureAlgorithm)) return { reason: 'unknown_ca', detail: `its ${nameOf(ca)} is signed with the weak algorithm ${ca.signatureAlgorithm}` };
      const nc = ca.extensions.get(OID.nameConstraints);
      if (nc) {
        const { permitted, excluded, unsupported } = subtrees(nc.value);
        if (unsupported) return { reason: 'unknown_ca', detail: `its ${nameOf(ca)} carries ${unsupported}` };
        for (const cert of all.slice(0, i + 1).filter((c, j) => j === 0 || !selfIssued(c))) {
          if (cert === ca) continue;
          for (const name of namesOf(cert)) {
            const ofKind = permitted.filter((p) => p.tag === name.tag);
            if (ofKind.length > 0 && !ofKind.some((p) => matches(name, p))) return { reason: 'unknown_ca', detail: `${name.text} is outside the names its ${nameOf(ca)} may issue (nameConstraints)` };
            if (excluded.some((p) => p.tag === name.tag && matches(name, p))) return { reason: 'unknown_ca', detail: `${name.text} is among the names its ${nameOf(ca)} excludes (nameConstraints)` };
          }
        }
      }
    }
    if (WEAK_SIGNATURES.has(leaf.signatureAlgorithm)) return { reason: 'unknown_ca', detail: `it is signed with the weak algorithm ${leaf.signatureAlgorithm}` };
    for (const c of all) {
      const weak = weakKey(c);
      if (weak) return { reason: 'unknown_ca', detail: c === leaf ? `its key is too small (${weak})` : `its ${nameOf(c)} has a key too small (${weak})` };
    }
    return undefined;
  } catch (e) {
    return { reason: 'unknown_ca', detail: `a CA certificate on its chain has a malformed extension: ${(e as Error).message}` };
  }
}
