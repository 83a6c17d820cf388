/** `mcp-mtls renew`, `mcp-mtls expiring` and `mcp-mtls ca status`: keeping certificates and CRLs flowing. */
import fs from 'node:fs';
import type { Command } from 'commander';
import { Authority } from '../ca/authority.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import { foldIndex } from '../ca/list.js';
import { checkOutput, outputBaseName, outputDelivery, plannedOutput } from '../ca/output.js';
import { renewCertificate } from '../ca/renewal.js';
import { crlStatus, resolveSerial } from '../ca/revocation.js';
import { parseKeyType } from '../x509/keys.js';
import { MtlsError } from '../errors.js';
import { successorIn } from '../ca/store/store.js';
import { collect, emit, resolveDir, STORE_HELP, storeOptions } from './io.js';
import { issuedHuman, issuedJson, openAuthority } from './issue.js';
import { table } from './list.js';

export function registerLifecycle(program: Command, ca: Command): void {
  program
    .command('renew')
    .description('a new certificate (new serial) with the same principal, teams and roles')
    .argument('<serial-or-file>', 'the serial or the certificate file to renew')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--rekey', 'make a new key (default: keep the public key)')
    .option('--key-type <type>', 'with --rekey: the new key type (default: the old one)')
    .option('--ttl <duration>', 'lifetime (default: the CA config; at most limits.<type>.maxTtl: 30d clients, 397d servers)')
    .option('--revoke-old', 'revoke the old certificate as superseded')
    .requiredOption('--out <dir>', 'where to write <id>.crt (and <id>.key with --rekey) and ca.crt')
    .option('--force', 'replace <id>.crt (and <id>.key) in --out if they exist')
    .option('--passphrase-file <file>', 'passphrase of an encrypted CA key')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ mcp-mtls renew ./certs/alice.crt --out ./certs --force --revoke-old')
    .action(async (target: string, o) => {
      const authority = openAuthority(o.dir, o);
      const serial = resolveSerial(target);
      if (o.keyType && !o.rekey) throw new MtlsError('USAGE', '--key-type needs --rekey', { hint: 'add --rekey to make a new key' });
      const old = (await authority.store.lookup(serial)).issued;
      const files = plannedOutput(o.out, outputBaseName(old ? old.id : serial), o.rekey === true);
      try {
        checkOutput(files, authority.rootPem, o.force === true);
      } catch (e) {
        // renew replaces the old files on purpose: say how (checkOutput's own hint is for issue, which never overwrites)
        if (e instanceof MtlsError && e.code === 'OUTPUT_EXISTS' && !o.force && !e.message.includes("another CA's root")) {
          throw new MtlsError('OUTPUT_EXISTS', e.message, { hint: 'run the same command with --force to replace it with the renewed certificate, or choose another --out' });
        }
        throw e;
      }
      const r = await renewCertificate(authority, serial, {
        ...(o.rekey ? { rekey: true } : {}),
        ...(o.keyType ? { keyType: parseKeyType(o.keyType) } : {}),
        ...(o.ttl ? { ttlMs: parseDuration(o.ttl, '--ttl') } : {}),
        ...(o.revokeOld ? { revokeOld: true } : {}),
        delivery: outputDelivery([files], authority.rootPem, o.force === true),
      });
      emit(o.json, { ...issuedJson(r.issued, files), renewedFrom: serial, oldRevoked: r.oldRevoked, rekeyed: o.rekey === true }, () =>
        `${issuedHuman(r.issued, files)}  renews ${serial}${r.oldRevoked ? ' (revoked as superseded)' : ''}${o.rekey ? ', new key' : ', same key'}\n`,
      );
    });

  program
    .command('expiring')
    .description('what expires soon: client and server certificates, the CA certificates and the CRLs')
    .requiredOption('--within <duration>', 'the window, e.g. 7d')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--type <types>', `only these: ${EXPIRING_TYPES.join(', ')} (repeatable or a comma list; default: all)`, collect, [])
    .option('--fail', 'exit 1 when anything expires within the window (for monitoring)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nCertificates that a later certificate renewed, and revoked ones, are not listed.\n' +
        'Client certificates are short-lived (24h by default); a weekly check leaves them out:\n' +
        '\nExample:\n  $ mcp-mtls expiring --within 7d --type server,ca,crl --fail || alert "certificates or CRLs expire this week"',
    )
    .action(async (o) => {
      const authority = Authority.open(resolveDir(o.dir), storeOptions(o));
      const within = parseDuration(o.within, '--within');
      const items = await expiringItems(authority, within, parseExpiringTypes(o.type));
      emit(o.json, { within: o.within, items }, () =>
        items.length === 0 ? `Nothing expires within ${o.within}.\n` : table(['WHAT', 'NAME', 'SERIAL', 'EXPIRES', 'LEFT'], items.map((i) => [i.what, i.name, i.serial ?? '-', i.expires, formatDuration(i.remainingMs)])),
      );
      if (o.fail && items.length > 0) process.exitCode = 1;
    });

  ca.command('status')
    .description('the CA at a glance: certificates, root key online or not, CRLs and how long they have left')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      const authority = Authority.open(resolveDir(o.dir), storeOptions(o));
      const now = authority.now();
      const entries = foldIndex(await authority.store.readIndex(), now);
      const count = (s: string) => entries.filter((e) => e.status === s).length;
      const status = {
        dir: authority.layout.dir,
        store: authority.store.location,
        trustDomain: authority.config.trustDomain,
        keyType: authority.config.keyType,
        root: { notAfter: authority.root.notAfter.toISOString(), remainingMs: authority.root.notAfter.getTime() - now.getTime(), keyOnline: fs.existsSync(authority.layout.rootKey) },
        intermediate: { notAfter: authority.intermediate.notAfter.toISOString(), remainingMs: authority.intermediate.notAfter.getTime() - now.getTime() },
        certificates: { valid: count('valid'), expired: count('expired'), revoked: count('revoked') },
        crls: await crlStatus(authority),
      };
      emit(o.json, status, () => {
        const crl = (name: string, c?: { number: string; nextUpdate: string; remainingMs: number; entries: number; due: boolean; expired: boolean }) =>
          c ? `${name} CRL #${c.number}: ${c.entries} revoked, until ${c.nextUpdate} (${formatDuration(c.remainingMs)} left)${c.expired ? ' EXPIRED' : c.due ? ', due: run `mcp-mtls crl`' : ''}` : `${name} CRL: none (run \`mcp-mtls crl\`)`;
        return [
          `CA ${status.dir} (trust domain ${status.trustDomain}, ${status.keyType})${status.store === status.dir ? '' : `, state in ${status.store}`}`,
          `root until ${status.root.notAfter} (${formatDuration(status.root.remainingMs)} left), key ${status.root.keyOnline ? 'online' : 'offline'}`,
          `intermediate until ${status.intermediate.notAfter} (${formatDuration(status.intermediate.remainingMs)} left)`,
          `certificates: ${status.certificates.valid} valid, ${status.certificates.expired} expired, ${status.certificates.revoked} revoked`,
          crl('intermediate', status.crls.intermediate),
          crl('root', status.crls.root),
          '',
        ].join('\n');
      });
    });
}

export interface ExpiringItem {
  readonly what: 'client' | 'server' | 'intermediate' | 'root' | 'crl';
  readonly name: string;
  readonly serial?: string;
  readonly expires: string;
  readonly remainingMs: number;
}

/** What `expiring --type` selects: `ca` is the root and intermediate certificates. */
export const EXPIRING_TYPES = ['client', 'server', 'ca', 'crl'] as const;
export type ExpiringType = (typeof EXPIRING_TYPES)[number];

/** `--type` values (repeated, comma lists) as a set; every type when none is given. */
export function parseExpiringTypes(values: readonly string[]): ReadonlySet<ExpiringType> {
  const names = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  for (const n of names) {
    if (!(EXPIRING_TYPES as readonly string[]).includes(n)) throw new MtlsError('USAGE', `unknown --type "${n}"`, { hint: `use one or more of ${EXPIRING_TYPES.join(', ')}, e.g. --type server,ca,crl` });
  }
  return new Set((names.length === 0 ? EXPIRING_TYPES : names) as ExpiringType[]);
}

/**
 * What ends within `withinMs`: valid certificates that no later certificate renewed (a
 * renewed or revoked one needs nothing more), the CA certificates and the CRLs, of `types`.
 */
export async function expiringItems(authority: Authority, withinMs: number, types: ReadonlySet<ExpiringType> = new Set(EXPIRING_TYPES)): Promise<ExpiringItem[]> {
  const now = authority.now().getTime();
  const soon = (t: number) => t - now <= withinMs;
  const items: ExpiringItem[] = [];
  const index = await authority.store.readIndex();
  for (const e of foldIndex(index, new Date(now))) {
    const end = Date.parse(e.notAfter);
    if (types.has(e.type) && e.status === 'valid' && soon(end) && !successorIn(index, e.serial)) items.push({ what: e.type, name: e.principal ?? e.id, serial: e.serial, expires: e.notAfter, remainingMs: end - now });
  }
  if (types.has('ca')) {
    for (const [what, cert] of [['intermediate', authority.intermediate], ['root', authority.root]] as const) {
      if (soon(cert.notAfter.getTime())) items.push({ what, name: what, expires: cert.notAfter.toISOString(), remainingMs: cert.notAfter.getTime() - now });
    }
  }
  if (types.has('crl')) {
    const crls = await crlStatus(authority);
    for (const [name, c] of Object.entries(crls)) {
      if (c && soon(Date.parse(c.nextUpdate))) items.push({ what: 'crl', name: `${name} CRL #${c.number}`, expires: c.nextUpdate, remainingMs: c.remainingMs });
    }
  }
  return items.sort((a, b) => a.remainingMs - b.remainingMs);
}
