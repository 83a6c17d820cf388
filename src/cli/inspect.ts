/** `mcp-mtls inspect FILE|SERIAL`. Exits 65 when the certificate is not usable as what it claims to be. */
import fs from 'node:fs';
import type { Command } from 'commander';
import { Authority } from '../ca/authority.js';
import { inspectCertificate, type InspectReport } from '../ca/inspect.js';
import { MtlsError } from '../errors.js';
import { readCertificates } from '../x509/pem.js';
import { emit, EXIT, resolveDir, STORE_HELP, storeOptions } from './io.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('decode a certificate: identity (as servers read it), validity, chain status, fingerprint')
    .argument('<file-or-serial>', 'a certificate file (PEM or DER), or the serial of an issued certificate')
    .option('--dir <dir>', 'CA folder to check the chain against (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (target: string, o) => {
      const dir = resolveDir(o.dir);
      let ca: Authority | undefined;
      try {
        ca = Authority.open(dir, storeOptions(o));
      } catch (e) {
        if (!(e instanceof MtlsError && e.code === 'CA_NOT_FOUND') || o.dir) throw e;
      }
      let der: Buffer | undefined;
      if (fs.existsSync(target)) {
        if (!fs.statSync(target).isFile()) throw new MtlsError('FILE_NOT_FOUND', `${target} is not a file`, { hint: 'pass a certificate file (PEM or DER) or a serial' });
        der = readCertificates(fs.readFileSync(target))[0];
      } else if (/^[0-9a-fA-F]+$/.test(target) && ca) {
        der = await ca.store.readIssued(target.toLowerCase());
        if (!der) throw new MtlsError('NOT_FOUND', `no certificate with serial ${target} in ${dir}`, { hint: 'see `mcp-mtls list`' });
      } else {
        throw new MtlsError('FILE_NOT_FOUND', `${target} is neither a file nor a serial of the CA in ${dir}`, { hint: 'pass a certificate file, or --dir with a serial' });
      }
      const report = inspectCertificate(der as Buffer, { ...(ca ? { root: ca.rootDer, intermediate: ca.intermediateDer } : {}), now: new Date() });
      emit(o.json, report, () => human(report));
      if (report.identityError || report.chain.status === 'failed' || report.validity !== 'valid') process.exitCode = EXIT.data;
    });
}

function human(r: InspectReport): string {
  const lines = [
    `Subject:      ${r.subject}`,
    `Issuer:       ${r.issuer}`,
    `Type:         ${r.type} (${r.keyType}; ${r.extKeyUsage.join(', ') || 'no extKeyUsage'})`,
    `Serial:       ${r.serial}`,
    `Fingerprint:  ${r.fingerprint}`,
    `Valid:        ${r.notBefore} to ${r.notAfter} (${r.validity})`,
    `Chain:        ${r.chain.status}${r.chain.reason ? ` (${r.chain.reason})` : ''}`,
  ];
  if (r.subjectAltNames.dns.length || r.subjectAltNames.ips.length) lines.push(`Names:        ${[...r.subjectAltNames.dns, ...r.subjectAltNames.ips].join(', ')}`);
  if (r.identity) {
    lines.push(
      `Principal:    ${r.identity.principal}`,
      `Teams:        ${r.identity.teams.join(', ') || '(none)'}`,
      `Roles:        ${r.identity.roles.join(', ') || '(none)'}`,
      ...(r.identity.email ? [`Email:        ${r.identity.email}`] : []),
    );
  }
  if (r.identityError) lines.push(`Identity:     INVALID: ${r.identityError.code}: ${r.identityError.message}`);
  return `${lines.join('\n')}\n`;
}
