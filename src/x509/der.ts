/**
 * A minimal, strict DER writer and reader.
 *
 * Why hand-written: certificate and CRL issuance is a hot path (thousands per second), and
 * generic ASN.1 schema libraries spend most of their time in reflection and intermediate
 * objects (measured: @peculiar/x509 issues ~450 certificates/s, 60% of it serialising).
 * The structures we write are few and fixed, so concatenating TLVs is both faster and
 * easier to audit against RFC 5280. The reader is strict DER (definite, minimal lengths)
 * because the identity profile requires readers to reject anything malformed.
 */
import { MtlsError } from '../errors.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ---------------------------------------------------------------- writer

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n < 0x1000000) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.from([0x84, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/** One TLV from a tag byte and already-encoded content. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = content.length === 1 ? (content[0] as Uint8Array) : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const seq = (...items: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, ...items);
/** SEQUENCE OF from an array of any length (no argument spreading: 100k CRL entries). */
export const seqOf = (items: readonly Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items));

/** SET OF in DER order: encodings sorted as octet strings (X.690 11.6). */
export function setOf(items: Uint8Array[]): Buffer {
  const sorted = [...items].sort(compareDer);
  return tlv(TAG.SET, ...sorted);
}

/** X.690 11.6: compare as octet strings, the shorter padded at its end with zero octets. */
export function compareDer(a: Uint8Array, b: Uint8Array): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x - y;
  }
  return 0;
}

/** INTEGER from unsigned big-endian magnitude bytes (adds a 0x00 when the top bit is set). */
export function uintDer(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  const pad = m.length === 0 || (m[0] as number) & 0x80 ? Buffer.from([0]) : Buffer.alloc(0);
  return tlv(TAG.INTEGER, pad, m);
}

export function smallIntDer(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`bad integer ${n}`);
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  return uintDer(Buffer.from(bytes));
}

const oidCache = new Map<string, Buffer>();

/** OID TLV; memoised, since the same few OIDs are written into every certificate. */
export function oidDer(dotted: string): Buffer {
  let der = oidCache.get(dotted);
  if (!der) {
    der = tlv(TAG.OID, oidContent(dotted));
    if (oidCache.size < 1024) oidCache.set(dotted, der);
  }
  return der;
}

export function oidContent(dotted: string): Buffer {
  const arcs = dotted.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new RangeError(`bad OID ${dotted}`);
    return BigInt(s);
  });
  if (arcs.length < 2) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const first = (arcs[0] as bigint) * 40n + (arcs[1] as bigint);
  for (const arc of [first, ...arcs.slice(2)]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    let v = arc >> 7n;
    while (v > 0n) {
      chunk.unshift(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(...chunk);
  }
  return Buffer.from(out);
}

export const utf8Der = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
export const ia5Der = (s: string): Buffer => tlv(TAG.IA5_STRING, Buffer.from(s, 'ascii'));
export const octetDer = (b: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, b);
export const bitStringDer = (b: Uint8Array, unusedBits = 0): Buffer =>
  tlv(TAG.BIT_STRING, Buffer.from([unusedBits]), b);
export const nullDer = (): Buffer => Buffer.from([TAG.NULL, 0]);
export const booleanDer = (v: boolean): Buffer => Buffer.from([TAG.BOOLEAN, 1, v ? 0xff : 0]);
/** [n] EXPLICIT: constructed context tag around a complete TLV. */
export const explicitDer = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
/** [n] IMPLICIT primitive: context tag replacing the primitive's tag. */
export const implicitPrimitiveDer = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);
/** [n] IMPLICIT constructed: context tag replacing a SEQUENCE's tag. */
export const implicitConstructedDer = (n: number, ...content: Uint8Array[]): Buffer =>
  tlv(0xa0 | n, ...content);

// ---------------------------------------------------------------- reader

/** A decoded TLV: positions into the buffer it came from (no copies). */
export interface Tlv {
  readonly tag: number;
  /** offset of the tag byte */
  readonly start: number;
  /** offset of the first content byte */
  readonly contentStart: number;
  /** offset one past the last content byte */
  readonly end: number;
}

function malformed(what: string): MtlsError {
  return new MtlsError('DER_MALFORMED', `malformed DER: ${what}`);
}

/** Reads one TLV at `offset`, refusing high tag numbers, indefinite and non-minimal lengths. */
export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw malformed('truncated header');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw malformed('high tag number');
  let len = buf[offset + 1] as number;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw malformed('indefinite length');
    if (n > 4) throw malformed('length too large');
    if (p + n > limit) throw malformed('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    if (buf[p] === 0 || len < 0x80) throw malformed('non-minimal length');
    p += n;
  }
  const end = p + len;
  if (end > limit) throw malformed('content past end');
  return { tag, start: offset, contentStart: p, end };
}

/** Reads a TLV that must fill `buf` exactly. */
export function readWhole(buf: Uint8Array, expectedTag?: number): Tlv {
  const t = readTlv(buf, 0);
  if (t.end !== buf.length) throw malformed('trailing bytes');
  if (expectedTag !== undefined && t.tag !== expectedTag) throw malformed(`expected tag 0x${expectedTag.toString(16)}`);
  return t;
}

/** The children of a constructed TLV, in order. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  if (!(parent.tag & 0x20)) throw malformed('expected a constructed value');
  const out: Tlv[] = [];
  let p = parent.contentStart;
  while (p < parent.end) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t) throw malformed(`missing ${what}`);
  if (t.tag !== tag) throw malformed(`${what} has tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return t;
}

export const contentOf = (buf: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(buf.buffer, buf.byteOffset + t.contentStart, t.end - t.contentStart);
export const bytesOf = (buf: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start);

export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw malformed('empty OID');
  const arcs: bigint[] = [];
  let v = 0n;
  let fresh = true;
  for (const b of content) {
    if (fresh && b === 0x80) throw malformed('non-minimal OID arc');
    v = (v << 7n) | BigInt(b & 0x7f);
    fresh = false;
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
      fresh = true;
    }
  }
  if (!fresh) throw malformed('truncated OID');
  const first = arcs[0] as bigint;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

export function decodeUtf8(content: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch {
    throw malformed('invalid UTF-8');
  }
}

/** Unsigned magnitude of a DER INTEGER's content as lowercase hex (one leading 00 dropped). */
export function integerHex(content: Uint8Array): string {
  if (content.length === 0) throw malformed('empty INTEGER');
  if (content.length > 1 && content[0] === 0 && !((content[1] as number) & 0x80)) throw malformed('non-minimal INTEGER');
  if (content.length > 1 && content[0] === 0xff && (content[1] as number) & 0x80) throw malformed('non-minimal INTEGER');
  const start = content.length > 1 && content[0] === 0 ? 1 : 0;
  return Buffer.from(content.subarray(start)).toString('hex');
}

/** UTCTime (YYMMDDHHMMSSZ, 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ) as a Date. */
export function decodeTime(tag: number, content: Uint8Array): Date {
  const s = Buffer.from(content).toString('latin1');
  let m: RegExpMatchArray | null;
  let year: number;
  if (tag === TAG.UTC_TIME) {
    m = s.match(/^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/);
    if (!m) throw malformed(`bad UTCTime "${s}"`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tag === TAG.GENERALIZED_TIME) {
    m = s.match(/^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/);
    if (!m) throw malformed(`bad GeneralizedTime "${s}"`);
    year = Number(m[1]);
  } else {
    throw malformed('expected a time');
  }
  const ms = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (Number.isNaN(ms)) throw malformed(`bad time "${s}"`);
  return new Date(ms);
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds precision. */
export function timeDer(d: Date): Buffer {
  const year = d.getUTCFullYear();
  if (!(year >= 1950 && year <= 9999)) throw new RangeError(`cannot encode the year ${year} in a certificate (1950-9999)`);
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const body = iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(String(year).slice(2) + body, 'latin1'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(year).padStart(4, '0') + body, 'latin1'));
}
