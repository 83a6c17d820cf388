/**
 * Writing and reading X.509 v3 certificates (RFC 5280 4.1) with the DER helpers.
 *
 * Writing: the caller supplies every field already encoded (names, SPKI, extensions); this
 * module lays out the TBSCertificate, signs it once with the issuer's Signer and wraps it.
 * Reading: one pass over the DER, no copies, returning the fields the CA, `inspect` and the
 * identity reader need. It is strict: duplicate extensions and malformed DER are refused.
 */
import crypto from 'node:crypto';
import { MtlsError } from '../errors.js';
import {
  bitStringDer,
  bytesOf,
  children,
  contentOf,
  decodeOid,
  decodeTime,
  decodeUtf8,
  expectTag,
  explicitDer,
  integerHex,
  readWhole,
  seq,
  smallIntDer,
  TAG,
  timeDer,
  type Tlv,
  uintDer,
} from './der.js';
import type { Signer } from './keys.js';
import { OID } from './oids.js';

export interface CertificateFields {
  /** unsigned big-endian serial magnitude, 1..20 octets, positive */
  readonly serial: Uint8Array;
  readonly issuerName: Uint8Array;
  readonly subjectName: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Uint8Array;
  /** complete Extension DERs, in the order to write them */
  readonly extensions: readonly Uint8Array[];
}

const VERSION_3 = explicitDer(0, smallIntDer(2));

/** Encodes, signs and returns the certificate DER. */
export function signCertificate(fields: CertificateFields, signer: Signer): Buffer {
  const tbs = seq(
    VERSION_3,
    uintDer(fields.serial),
    signer.algorithmDer,
    fields.issuerName,
    seq(timeDer(fields.notBefore), timeDer(fields.notAfter)),
    fields.subjectName,
    fields.spki,
    explicitDer(3, seq(...fields.extensions)),
  );
  return seq(tbs, signer.algorithmDer, bitStringDer(signer.sign(tbs)));
}

/** A new random serial: 16 octets, positive, top byte in 0x40..0x7f so the length is fixed. */
export function randomSerial(): Buffer {
  const b = crypto.randomBytes(16);
  b[0] = ((b[0] as number) & 0x3f) | 0x40;
  return b;
}

export interface ParsedExtension {
  readonly critical: boolean;
  readonly value: Buffer;
}

export interface ParsedCertificate {
  readonly der: Buffer;
  readonly tbs: Buffer;
  readonly version: number;
  /** lowercase hex, leading 00 of a positive INTEGER dropped */
  readonly serial: string;
  readonly signatureAlgorithm: string;
  readonly issuerName: Buffer;
  readonly subjectName: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Buffer;
  /** by OID; duplicates are refused while parsing */
  readonly extensions: ReadonlyMap<string, ParsedExtension>;
  readonly signature: Buffer;
}

/** Parses a certificate's DER. Throws DER_MALFORMED or CERT_INVALID with what is wrong. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const buf = Buffer.isBuffer(der) ? der : Buffer.from(der);
  const [tbsT, algT, sigT, ...rest] = children(buf, readWhole(buf, TAG.SEQUENCE));
  if (rest.length > 0) throw invalid('extra fields after the signature');
  const tbsItems = children(buf, expectTag(tbsT, TAG.SEQUENCE, 'tbsCertificate'));
  let i = 0;
  let version = 1;
  if (tbsItems[0]?.tag === 0xa0) {
    const v = expectTag(children(buf, tbsItems[0])[0], TAG.INTEGER, 'version');
    version = Number(integerHex(contentOf(buf, v))) + 1;
    i = 1;
  }
  const serialT = expectTag(tbsItems[i++], TAG.INTEGER, 'serialNumber');
  const serialBytes = contentOf(buf, serialT);
  if ((serialBytes[0] as number) & 0x80) throw invalid('negative serial number');
  expectTag(tbsItems[i++], TAG.SEQUENCE, 'signature');
  const issuerT = expectTag(tbsItems[i++], TAG.SEQUENCE, 'issuer');
  const validity = children(buf, expectTag(tbsItems[i++], TAG.SEQUENCE, 'validity'));
  const subjectT = expectTag(tbsItems[i++], TAG.SEQUENCE, 'subject');
  const spkiT = expectTag(tbsItems[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const extensions = new Map<string, ParsedExtension>();
  for (; i < tbsItems.length; i++) {
    const t = tbsItems[i] as Tlv;
    if (t.tag === 0xa1 || t.tag === 0xa2) continue; // unique identifiers: ignored
    if (t.tag !== 0xa3) throw invalid(`unexpected field with tag 0x${t.tag.toString(16)} in tbsCertificate`);
    const list = expectTag(children(buf, t)[0], TAG.SEQUENCE, 'extensions');
    for (const ext of children(buf, list)) {
      const parts = children(buf, expectTag(ext, TAG.SEQUENCE, 'Extension'));
      const oid = decodeOid(contentOf(buf, expectTag(parts[0], TAG.OID, 'extnID')));
      let critical = false;
      let valueT = parts[1];
      if (valueT?.tag === TAG.BOOLEAN) {
        critical = contentOf(buf, valueT)[0] !== 0;
        valueT = parts[2];
      }
      const value = contentOf(buf, expectTag(valueT, TAG.OCTET_STRING, 'extnValue'));
      if (extensions.has(oid)) throw invalid(`extension ${oid} appears twice`);
      extensions.set(oid, { critical, value });
    }
  }
  const [nb, na] = validity;
  if (!nb || !na) throw invalid('validity needs notBefore and notAfter');
  const sigBits = contentOf(buf, expectTag(sigT, TAG.BIT_STRING, 'signatureValue'));
  const algItems = children(buf, expectTag(algT, TAG.SEQUENCE, 'signatureAlgorithm'));
  return {
    der: buf,
    tbs: bytesOf(buf, tbsT!),
    version,
    serial: integerHex(serialBytes),
    signatureAlgorithm: decodeOid(contentOf(buf, expectTag(algItems[0], TAG.OID, 'algorithm'))),
    issuerName: bytesOf(buf, issuerT),
    subjectName: bytesOf(buf, subjectT),
    notBefore: decodeTime(nb.tag, contentOf(buf, nb)),
    notAfter: decodeTime(na.tag, contentOf(buf, na)),
    spki: bytesOf(buf, spkiT),
    extensions,
    signature: sigBits.subarray(1),
  };
}

function invalid(what: string): MtlsError {
  return new MtlsError('CERT_INVALID', `invalid certificate: ${what}`);
}

// ---------------------------------------------------------------- extension readers

export interface GeneralNames {
  readonly uris: string[];
  readonly emails: string[];
  readonly dns: string[];
  readonly ips: string[];
  /** other GeneralName kinds present (otherName, directoryName, ...), by tag */
  readonly other: number[];
}

export function decodeGeneralNames(value: Uint8Array): GeneralNames {
  const out: GeneralNames = { uris: [], emails: [], dns: [], ips: [], other: [] };
  for (const gn of children(value, readWhole(value, TAG.SEQUENCE))) {
    const c = contentOf(value, gn);
    switch (gn.tag) {
      case 0x86:
        out.uris.push(c.toString('latin1'));
        break;
      case 0x81:
        out.emails.push(c.toString('latin1'));
        break;
      case 0x82:
        out.dns.push(c.toString('latin1'));
        break;
      case 0x87:
        out.ips.push(formatIp(c));
        break;
      default:
        out.other.push(gn.tag);
    }
  }
  return out;
}

function formatIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return groups.join(':').replace(/\b(?:0:){2,}/, ':').replace(/^:(?=[^:])|:::/, '::');
  }
  return b.toString('hex');
}

export function decodeBasicConstraints(value: Uint8Array): { ca: boolean; pathLen?: number } {
  const items = children(value, readWhole(value, TAG.SEQUENCE));
  let ca = false;
  let idx = 0;
  if (items[0]?.tag === TAG.BOOLEAN) {
    ca = contentOf(value, items[0])[0] !== 0;
    idx = 1;
  }
  const p = items[idx];
  return p && p.tag === TAG.INTEGER ? { ca, pathLen: parseInt(integerHex(contentOf(value, p)), 16) } : { ca };
}

export function decodeExtKeyUsage(value: Uint8Array): string[] {
  return children(value, readWhole(value, TAG.SEQUENCE)).map((t) => decodeOid(contentOf(value, expectTag(t, TAG.OID, 'KeyPurposeId'))));
}

/** Key usage bit names that are set. */
export function decodeKeyUsage(value: Uint8Array): string[] {
  const t = readWhole(value, TAG.BIT_STRING);
  const c = contentOf(value, t);
  const names = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'];
  const out: string[] = [];
  for (let bit = 0; bit < names.length; bit++) {
    const byte = c[1 + (bit >> 3)];
    if (byte !== undefined && byte & (0x80 >> (bit & 7))) out.push(names[bit] as string);
  }
  return out;
}

/** The keyIdentifier of a subjectKeyIdentifier or authorityKeyIdentifier value, as hex. */
export function decodeKeyIdentifier(oid: string, value: Uint8Array): string | undefined {
  if (oid === OID.subjectKeyIdentifier) return contentOf(value, readWhole(value, TAG.OCTET_STRING)).toString('hex');
  const first = children(value, readWhole(value, TAG.SEQUENCE))[0];
  return first && first.tag === 0x80 ? contentOf(value, first).toString('hex') : undefined;
}

/** The attribute values of a Name as "O=..., CN=..." for display (never for authorization). */
export function formatName(name: Uint8Array): string {
  const short: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST' };
  const parts: string[] = [];
  for (const rdn of children(name, readWhole(name, TAG.SEQUENCE))) {
    for (const atv of children(name, rdn)) {
      const [typeT, valueT] = children(name, atv);
      const oid = decodeOid(contentOf(name, expectTag(typeT, TAG.OID, 'attribute type')));
      const v = valueT ? decodeUtf8(contentOf(name, valueT)) : '';
      parts.push(`${short[oid] ?? oid}=${v}`);
    }
  }
  return parts.join(', ');
}

/** The first CN of a Name, if any. */
export function commonNameOf(name: Uint8Array): string | undefined {
  for (const rdn of children(name, readWhole(name, TAG.SEQUENCE))) {
    for (const atv of children(name, rdn)) {
      const [typeT, valueT] = children(name, atv);
      if (typeT && valueT && decodeOid(contentOf(name, typeT)) === OID.commonName) return decodeUtf8(contentOf(name, valueT));
    }
  }
  return undefined;
}

