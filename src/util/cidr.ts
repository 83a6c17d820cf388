/**
 * IP addresses and CIDR ranges, compared as 16 bytes: an IPv4 address is its IPv4-mapped IPv6
 * form (`::ffff:a.b.c.d`, RFC 4291 2.5.5.2), so `127.0.0.1`, `::ffff:127.0.0.1` and
 * `::ffff:7f00:1` are one address and an IPv4 range `/n` is the mapped range `/96+n`.
 *
 * Other spellings are refused rather than guessed at: IPv4 with fewer than four parts
 * (`127.1`), leading zeros (`010.0.0.1`, octal to some parsers), hex or decimal integers
 * (`0x7f000001`, `2130706433`), zone indexes (`fe80::1%eth0`), a range whose host bits are set
 * (`10.0.0.1/8`). IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 addresses are
 * other IPv6 addresses, not the IPv4 one: list them as ranges of their own if a proxy uses them.
 */
import net from 'node:net';
import { MtlsError } from '../errors.js';

/** A parsed CIDR range: the first address (16 bytes), the prefix length over 128 bits, and how it was written. */
export interface CidrRange {
  readonly bytes: Buffer;
  readonly prefix: number;
  readonly text: string;
}

const MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function ipv4Bytes(text: string): Buffer | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

function ipv6Bytes(text: string): Buffer | undefined {
  if (!net.isIPv6(text) || text.includes('%')) return undefined;
  let head = text;
  let v4: Buffer | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    v4 = ipv4Bytes(text.slice(lastColon + 1));
    if (!v4) return undefined;
    head = `${text.slice(0, lastColon + 1)}0:0`; // the last 32 bits as two placeholder groups, filled below
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const left = groups(halves[0] as string);
  const right = halves.length === 2 ? groups(halves[1] as string) : [];
  const fill = 8 - left.length - right.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const all = [...left, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => {
    out.writeUInt16BE(parseInt(g, 16), i * 2);
  });
  if (v4) v4.copy(out, 12);
  return out;
}

/**
 * The 16-byte form of an IP address as written or as Node reports a socket's `remoteAddress`;
 * undefined for anything else (see the module comment for what is refused).
 */
export function ipBytes16(text: string): Buffer | undefined {
  const v4 = ipv4Bytes(text);
  if (v4) return Buffer.concat([MAPPED, v4]);
  return ipv6Bytes(text);
}

/**
 * Parses `address` or `address/prefix` (IPv4 prefixes 0-32, IPv6 0-128).
 *
 * @throws MtlsError `BAD_ARGUMENT` naming the problem: not an address, a prefix out of range,
 *   host bits set, a zone index
 */
export function parseCidr(text: string): CidrRange {
  const bad = (why: string, hint = 'write an address (10.0.0.5, fd00::5) or a range (10.0.0.0/8, fd00::/8)') => new MtlsError('BAD_ARGUMENT', `"${text}" is not a usable CIDR range: ${why}`, { hint });
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  if (addr.includes('%')) throw bad('a zone index (%...) names an interface, not a range');
  const isV4 = ipv4Bytes(addr) !== undefined;
  const bytes = ipBytes16(addr);
  if (!bytes) throw bad(net.isIP(addr) === 0 && /^[0-9.]+$/.test(addr) ? 'IPv4 addresses are written as four decimal parts without leading zeros' : 'not an IP address');
  const max = isV4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) throw bad(`the prefix length must be 0 to ${max}`);
    prefix = Number(p);
  }
  const full = isV4 ? prefix + 96 : prefix;
  const masked = mask(bytes, full);
  if (!masked.equals(bytes)) {
    const first = isV4 ? [...masked.subarray(12)].join('.') : formatIpv6(masked);
    throw bad('bits are set after the prefix', `did you mean ${first}/${prefix}?`);
  }
  return { bytes, prefix: full, text };
}

function mask(bytes: Buffer, prefix: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = (out[i] as number) & (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

function formatIpv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** Whether the address (16-byte form, {@link ipBytes16}) is in the range. */
export function cidrContains(range: CidrRange, address: Buffer): boolean {
  const whole = range.prefix >> 3;
  if (address.compare(range.bytes, 0, whole, 0, whole) !== 0) return false;
  const rest = range.prefix & 7;
  if (rest === 0) return true;
  const m = (0xff << (8 - rest)) & 0xff;
  return ((address[whole] as number) & m) === ((range.bytes[whole] as number) & m);
}
