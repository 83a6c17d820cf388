/**
 * Encoders for the X.509 v3 extensions the CA writes (RFC 5280 4.2), one small function
 * each, returning a complete `Extension` DER.
 */
import net from 'node:net';
import {
  bitStringDer,
  booleanDer,
  implicitPrimitiveDer,
  octetDer,
  oidDer,
  seq,
  smallIntDer,
  tlv,
  utf8Der,
} from './der.js';
import { OID } from './oids.js';

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
export function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? seq(oidDer(oid), booleanDer(true), octetDer(value)) : seq(oidDer(oid), octetDer(value));
}

export function basicConstraints(ca: boolean, pathLen?: number): Buffer {
  const value = ca ? seq(booleanDer(true), ...(pathLen === undefined ? [] : [smallIntDer(pathLen)])) : seq();
  return extension(OID.basicConstraints, true, value);
}

export const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KeyUsageName = keyof typeof KEY_USAGE_BITS;

/** KeyUsage as a DER named-bit BIT STRING: trailing zero bits removed (X.690 11.2.2). */
export function keyUsage(usages: readonly KeyUsageName[]): Buffer {
  let bits = 0;
  for (const u of usages) bits |= 0x80 >> KEY_USAGE_BITS[u];
  let unused = 0;
  while (unused < 7 && !(bits & (1 << unused))) unused++;
  return extension(OID.keyUsage, true, bitStringDer(Buffer.from([bits]), unused));
}

export function extKeyUsage(oids: readonly string[]): Buffer {
  return extension(OID.extKeyUsage, false, seq(...oids.map(oidDer)));
}

export function subjectKeyIdentifier(keyId: Uint8Array): Buffer {
  return extension(OID.subjectKeyIdentifier, false, octetDer(keyId));
}

export function authorityKeyIdentifier(keyId: Uint8Array): Buffer {
  return extension(OID.authorityKeyIdentifier, false, seq(implicitPrimitiveDer(0, keyId)));
}

/** IA5String content: refuses anything outside printable ASCII instead of mangling it. */
function ia5(value: string, what: string): Buffer {
  if (!/^[\x21-\x7e]+$/.test(value)) throw new RangeError(`${what} "${value}" must be printable ASCII without spaces`);
  return Buffer.from(value, 'latin1');
}

// GeneralName CHOICE members (implicitly tagged IA5String / OCTET STRING)
export const uriName = (uri: string): Buffer => tlv(0x86, ia5(uri, 'URI'));
export const dnsName = (name: string): Buffer => tlv(0x82, ia5(name, 'DNS name'));
export const emailName = (email: string): Buffer => tlv(0x81, ia5(email, 'email'));
export function ipName(ip: string): Buffer {
  return tlv(0x87, ipBytes(ip));
}

export function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!net.isIPv6(ip)) throw new RangeError(`not an IP address: ${ip}`);
  // Expand "::" and embedded IPv4, then write 8 groups of 16 bits.
  let s = ip;
  const v4 = s.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const b = (v4[1] as string).split('.').map(Number) as [number, number, number, number];
    s = s.slice(0, -(v4[1] as string).length) + ((b[0] << 8) | b[1]).toString(16) + ':' + ((b[2] << 8) | b[3]).toString(16);
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function subjectAltName(names: readonly Buffer[], critical = false): Buffer {
  return extension(OID.subjectAltName, critical, seq(...names));
}

/** One distribution point with a full name URI (RFC 5280 4.2.1.13). */
export function crlDistributionPoints(url: string): Buffer {
  return extension(OID.cRLDistributionPoints, false, seq(seq(tlv(0xa0, tlv(0xa0, uriName(url))))));
}

/** Critical nameConstraints with permitted subtrees only (RFC 5280 4.2.1.10). */
export function nameConstraints(permitted: readonly Buffer[]): Buffer {
  return extension(OID.nameConstraints, true, seq(tlv(0xa0, ...permitted.map((gn) => seq(gn)))));
}

/** Name with optional O, then CN, each a UTF8String in its own RDN. */
export function distinguishedName(commonName: string, organization?: string): Buffer {
  const rdn = (oid: string, value: string): Buffer => tlv(0x31, seq(oidDer(oid), utf8Der(value)));
  return seq(...(organization ? [rdn(OID.organizationName, organization)] : []), rdn(OID.commonName, commonName));
}
