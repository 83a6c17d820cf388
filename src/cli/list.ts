/** `mcp-mtls list`. */
import type { Command } from 'commander';
import { Authority } from '../ca/authority.js';
import { listCertificates, type CertificateStatus } from '../ca/list.js';
import { MtlsError } from '../errors.js';
import { crlStatus } from '../ca/revocation.js';
import { emit, resolveDir, STORE_HELP, storeOptions } from './io.js';

const STATUSES: CertificateStatus[] = ['valid', 'expired', 'revoked'];

export function registerList(program: Command): void {
  program
    .command('list')
    .description('list issued certificates')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--status <status>', 'valid | expired | revoked')
    .option('--user <id>', 'only this user')
    .option('--service <id>', 'only this service')
    .option('--team <name>', 'only members of this team')
    .option('--role <name>', 'only holders of this role')
    .option('--type <type>', 'client | server')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      if (o.status && !STATUSES.includes(o.status)) throw new MtlsError('USAGE', `unknown status "${o.status}"`, { hint: `use one of: ${STATUSES.join(', ')}` });
      if (o.type && o.type !== 'client' && o.type !== 'server') throw new MtlsError('USAGE', `unknown type "${o.type}"`, { hint: 'use client or server' });
      const ca = Authority.open(resolveDir(o.dir), storeOptions(o));
      const entries = await listCertificates(ca.store, o, ca.now());
      const crls = await crlStatus(ca);
      emit(o.json, { certificates: entries, crls }, () => {
        if (entries.length === 0) return 'No certificates match.\n';
        const rows = entries.map((e) => [e.serial, e.type, e.principal ?? [...(e.dns ?? []), ...(e.ips ?? [])].join(','), e.teams.join(',') || '-', e.roles.join(',') || '-', e.notAfter.replace('.000Z', 'Z'), e.status]);
        return table(['SERIAL', 'TYPE', 'SUBJECT', 'TEAMS', 'ROLES', 'NOT AFTER', 'STATUS'], rows);
      });
    });
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(header), ...rows.map(line), ''].join('\n');
}
