/**
 * Issuance limits (config.yaml `limits:`): the longest lifetime per certificate type, and
 * optional allow-lists of the teams and roles a client certificate may carry and of the DNS
 * names and IP addresses a server certificate may name. Checked by the issuance stage of
 * authority.ts, which every path that signs a certificate goes through (issue, batch, CSR,
 * renew, ca serve /sign and /renew), and by `token create` before a token is handed out.
 *
 * - Absent `limits` (or an absent key in it) means the defaults: clients (users and services)
 *   at most 30d, servers at most 397d (the CA/Browser Forum's ceiling), no allow-lists.
 * - An allow-list that is present is exhaustive: `teams: []` allows no team at all.
 * - DNS names are compared in one canonical form: lowercase ASCII (IDNA: `bücher.test` is
 *   `xn--bcher-kva.test`), without a trailing dot; an IPv4 address (`10.0.0.1`, `0x7f.1`) is
 *   not a DNS name (it goes in an IP SAN, under `limits.server.ips`). A pattern is a name (itself only),
 *   `*.suffix` (exactly one label before suffix, like a TLS wildcard; the wildcard name
 *   `*.suffix` itself too) or `**.suffix` (one label or more). Nothing else may hold a `*`.
 * - IP addresses: an address or a CIDR block (`10.0.0.0/8`, `fd00::/8`); an IPv4-mapped IPv6
 *   address (`::ffff:10.0.0.1`) is checked as the IPv4 address it maps (node:net BlockList).
 */
import net from 'node:net';
import { domainToASCII } from 'node:url';
import { MtlsError } from '../errors.js';
import { isValidDnsName } from '../identity/names.js';
import type { CaConfig } from './config.js';
import { formatDuration, parseDuration } from '../util/duration.js';

/** The defaults for an absent `limits.<type>.maxTtl`. */
export const DEFAULT_MAX_TTL = { client: '30d', server: '397d' } as const;

/**
 * A DNS name in its canonical form (lowercase ASCII, IDNA-encoded, no trailing dot), or
 * undefined when it is not a host name (an optional leading `*.` label is kept).
 */
export function canonicalDnsName(name: string): string | undefined {
  let rest = name.endsWith('.') ? name.slice(0, -1) : name;
  let prefix = '';
  if (rest.startsWith('*.')) {
    prefix = '*.';
    rest = rest.slice(2);
  }
  if (rest === '' || /[\s*%/\\@:]/.test(rest)) return undefined;
  const ascii = domainToASCII(rest);
  // an IPv4 address (or what WHATWG reads as one: `0x7f.1`, `10.1`) is no DNS name: written as
  // a DNS SAN it escaped limits.server.ips, and lax clients match it for that address
  if (!ascii || ascii.endsWith('.') || net.isIPv4(ascii)) return undefined;
  const canonical = prefix + ascii;
  return isValidDnsName(canonical) ? canonical : undefined;
}

/**
 * A `limits.server.dns` pattern in canonical form, or undefined when it is not one: a name,
 * `*.suffix` or `**.suffix`.
 */
export function canonicalDnsPattern(pattern: string): string | undefined {
  const m = /^(\*\*?\.)?(.+)$/.exec(pattern);
  if (!m) return undefined;
  const rest = canonicalDnsName(m[2] as string);
  if (!rest || rest.includes('*')) return undefined;
  return (m[1] ?? '') + rest;
}

/** Whether the canonical name `name` is within the canonical `pattern`. */
export function dnsMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('**.')) {
    const suffix = pattern.slice(2); // ".acme.test"
    return name.endsWith(suffix) && name.length > suffix.length;
  }
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1);
    if (!name.endsWith(suffix)) return false;
    const label = name.slice(0, -suffix.length);
    return label.length > 0 && !label.includes('.');
  }
  return pattern === name;
}

/** Whether `entry` is an IP address or a CIDR block (for the config schema). */
export function isIpOrCidr(entry: string): boolean {
  const [addr, bits, extra] = entry.split('/');
  if (extra !== undefined || !addr) return false;
  const family = net.isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

function ipAllowed(entries: readonly string[], ip: string): boolean {
  const list = new net.BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split('/') as [string, string | undefined];
    const type = net.isIP(addr) === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list.check(ip, net.isIP(ip) === 4 ? 'ipv4' : 'ipv6');
}

/** The longest lifetime config.yaml allows for `type`, in ms, and how it was written. */
export function maxTtl(config: CaConfig, type: 'client' | 'server'): { ms: number; text: string } {
  const text = config.limits?.[type]?.maxTtl ?? DEFAULT_MAX_TTL[type];
  return { ms: parseDuration(text, `limits.${type}.maxTtl`), text };
}

/**
 * Refuses a lifetime over the limit for `type`. `ttl.from` says where the lifetime came from:
 * the request (`--ttl`) or config.yaml's default (`defaults.clientTtl`), for the hint.
 *
 * @throws MtlsError `LIMIT_EXCEEDED`, naming the limit and the config key that sets it
 */
export function checkTtlLimit(config: CaConfig, type: 'client' | 'server', ttl: { ms: number; text?: string; from: 'request' | 'default' }): void {
  const limit = maxTtl(config, type);
  if (ttl.ms <= limit.ms) return;
  const defaultKey = type === 'client' ? 'defaults.clientTtl' : 'defaults.serverTtl';
  throw new MtlsError('LIMIT_EXCEEDED', `${type} certificate lifetime ${ttl.text ?? formatDuration(ttl.ms)}${ttl.from === 'default' ? ` (${defaultKey})` : ''} exceeds the limit of ${limit.text} (limits.${type}.maxTtl in config.yaml)`, {
    hint: ttl.from === 'default' ? `lower ${defaultKey} to at most ${limit.text}, or raise limits.${type}.maxTtl in config.yaml` : `ask for ${limit.text} or less, or raise limits.${type}.maxTtl in config.yaml`,
    details: { limit: `limits.${type}.maxTtl`, maxTtl: limit.text, maxTtlMs: limit.ms, ttlMs: ttl.ms },
  });
}

/**
 * Refuses teams or roles outside config.yaml's allow-lists (`limits.client.teams`,
 * `limits.client.roles`); `teams` and `roles` are the normalised claims.
 *
 * @throws MtlsError `LIMIT_EXCEEDED`
 */
export function checkClientClaims(config: CaConfig, claims: { teams: readonly string[]; roles: readonly string[] }): void {
  for (const what of ['teams', 'roles'] as const) {
    const allowed = config.limits?.client?.[what];
    if (!allowed) continue;
    const set = new Set(allowed);
    const outside = claims[what].filter((v) => !set.has(v));
    if (outside.length) {
      const one = what === 'teams' ? 'team' : 'role';
      throw new MtlsError('LIMIT_EXCEEDED', `${outside.length > 1 ? `${what}` : one} ${outside.map((v) => `"${v}"`).join(', ')} not allowed by limits.client.${what} in config.yaml (${allowed.join(', ') || 'none'})`, {
        hint: `ask for a ${one} in the list, or add it to limits.client.${what} in config.yaml`,
        details: { limit: `limits.client.${what}`, outside },
      });
    }
  }
}

/**
 * Refuses DNS names (canonical) or IP addresses outside config.yaml's allow-lists
 * (`limits.server.dns`, `limits.server.ips`).
 *
 * @throws MtlsError `LIMIT_EXCEEDED`
 */
export function checkServerNames(config: CaConfig, dns: readonly string[], ips: readonly string[]): void {
  const patterns = config.limits?.server?.dns;
  if (patterns) {
    for (const d of dns) {
      if (!patterns.some((p) => dnsMatches(p, d))) {
        throw new MtlsError('LIMIT_EXCEEDED', `DNS name "${d}" not allowed by limits.server.dns in config.yaml (${patterns.join(', ') || 'none'})`, {
          hint: 'ask for a name the list allows, or add it (or a *.suffix / **.suffix pattern) to limits.server.dns in config.yaml',
          details: { limit: 'limits.server.dns', name: d },
        });
      }
    }
  }
  const allowedIps = config.limits?.server?.ips;
  if (allowedIps) {
    for (const ip of ips) {
      if (!ipAllowed(allowedIps, ip)) {
        throw new MtlsError('LIMIT_EXCEEDED', `IP address ${ip} not allowed by limits.server.ips in config.yaml (${allowedIps.join(', ') || 'none'})`, {
          hint: 'ask for an address the list allows, or add it (or its CIDR block) to limits.server.ips in config.yaml',
          details: { limit: 'limits.server.ips', ip },
        });
      }
    }
  }
}
