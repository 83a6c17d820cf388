/** `mcp-mtls revoke` and `mcp-mtls crl`. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../util/duration.js';
import { formatDuration } from '../util/duration.js';
import { parseReason, resolveSerial, revokeCertificate, revokePrincipal, writeCrls, type CrlRunResult } from '../ca/revocation.js';
import { MtlsError } from '../errors.js';
import { pemEncode } from '../x509/pem.js';
import { writeFilesAtomic } from '../util/atomic-file.js';
import { emit, STORE_HELP } from './io.js';
import { FsStore } from '../ca/store/fs-store.js';
import { openAuthority } from './issue.js';
import { CRL_FILES_APPLY_WITHIN_S } from '../mtls/crl-files.js';

export function registerRevocation(program: Command): void {
  program
    .command('revoke')
    .description("revoke a certificate (or every valid one of a principal, with what they delegated) and re-sign the CRL")
    .argument('[serial-or-file]', 'the serial (see `mcp-mtls list`) or the certificate file')
    .option('--principal <who>', 'instead of a serial: every valid certificate of user/ID or service/ID (across renewals), what each delegated, and every delegated certificate acting for it (ID-token ones too)')
    .option('--reason <reason>', 'unspecified | keyCompromise | affiliationChanged | superseded | cessationOfOperation (required with a serial; default with --principal: unspecified)')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--passphrase-file <file>', 'passphrase of an encrypted CA key')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `\nWith --reason keyCompromise, the valid certificates it renewed from that certify the same public key are revoked too.\n\nExamples:\n  $ mcp-mtls revoke 4f3a...e1 --reason keyCompromise\n  $ mcp-mtls revoke --principal user/bob --reason affiliationChanged\n  then distribute crl/intermediate.crl (servers given the file apply it within ${CRL_FILES_APPLY_WITHIN_S} s)`,
    )
    .action(async (target: string | undefined, o) => {
      if ((target === undefined) === (o.principal === undefined)) {
        throw new MtlsError('USAGE', 'give a serial (or certificate file) or --principal, one of them', { hint: 'e.g. mcp-mtls revoke 4f3a...e1 --reason keyCompromise, or mcp-mtls revoke --principal user/bob' });
      }
      if (target !== undefined && o.reason === undefined) throw new MtlsError('USAGE', "required option '--reason <reason>' not specified", { hint: 'e.g. --reason keyCompromise' });
      const reason = parseReason(o.reason ?? 'unspecified');
      const ca = openAuthority(o.dir, o);
      // the folder store writes crl/intermediate.crl; a database store keeps the CRL in the database
      const inFolder = ca.store instanceof FsStore;
      const crlFile = inFolder ? ca.layout.crl('intermediate') : ca.store.location;
      const crlLine = (n: string) => `CRL #${n} ${inFolder ? `written to ${crlFile}: servers reading it (tlsFromPki, crlFiles, the gateway) apply it within ${CRL_FILES_APPLY_WITHIN_S} s; copy it to the others` : `stored in ${crlFile}: export it with \`mcp-mtls crl --if-due --out DIR\` for the servers`}.\n`;
      if (o.principal !== undefined) {
        const r = await revokePrincipal(ca, o.principal, reason);
        const serials = r.certificates.map((c) => c.serial);
        const dropped = r.tokensDropped.length ? `Removed ${r.tokensDropped.length} enrollment token${r.tokensDropped.length === 1 ? '' : 's'} of ${r.principal} not used yet: ${r.tokensDropped.join(', ')}.\n` : '';
        const recorded = `From now on its ID tokens issued until ${r.revokedAt} are refused at the CA (sign-in and delegation).\n`;
        emit(o.json, { principal: r.principal, reason, revokedAt: r.revokedAt, serials, alsoRevoked: r.alsoRevoked, revoked: [...serials, ...r.alsoRevoked], tokensDropped: r.tokensDropped, crlNumber: r.crlNumber, crl: crlFile }, () =>
          serials.length === 0 && r.alsoRevoked.length === 0
            ? `${r.principal} had no valid certificate and none acted for it; its revocation is recorded (${reason}). ${recorded}${dropped}`
            : `Revoked ${serials.length} certificate${serials.length === 1 ? '' : 's'} of ${r.principal} (${reason}): ${serials.join(', ')}.\n${r.alsoRevoked.length ? `Also revoked what they renewed into or delegated, and the delegated certificates acting for ${r.principal}: ${r.alsoRevoked.join(', ')}.\n` : ''}${recorded}${dropped}${crlLine(r.crlNumber)}`,
        );
        return;
      }
      const serial = resolveSerial(target as string);
      const r = await revokeCertificate(ca, serial, reason);
      emit(o.json, { serial, reason, revokedAt: r.record.revokedAt, principal: r.issued.principal, id: r.issued.id, crlNumber: r.crlNumber, crl: crlFile, alsoRevoked: r.alsoRevoked, revoked: [serial, ...r.alsoRevoked] }, () =>
        `Revoked ${serial} (${r.issued.principal ?? r.issued.id}, ${reason}).\n${r.alsoRevoked.length ? `Also revoked its renewals${reason === 'keyCompromise' ? ', the certificates of the same key it renewed from' : ''} and what they delegated: ${r.alsoRevoked.join(', ')}.\n` : ''}${crlLine(r.crlNumber)}`,
      );
    });

  program
    .command('crl')
    .description("write the intermediate's and the root's CRLs (re-signing them)")
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--out <path>', 'also export: a folder (intermediate.crl and root.crl) or one PEM file with both')
    .option('--der', 'with --out FOLDER: DER instead of PEM')
    .option('--if-due', 'only re-sign a CRL once two thirds of its validity have passed (for cron)')
    .option('--ttl <duration>', "the intermediate CRL's validity (default: config, 7d)")
    .option('--passphrase-file <file>', 'passphrase of an encrypted CA key')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  $ mcp-mtls crl --out /etc/mcp/crl/\n  $ mcp-mtls crl --if-due      # every hour from cron: never lets a CRL expire')
    .action(async (o) => {
      const ca = openAuthority(o.dir, o);
      const ttlMs = o.ttl ? parseDuration(o.ttl, '--ttl') : undefined;
      const result = await writeCrls(ca, { ...(o.ifDue ? { ifDue: true } : {}), ...(ttlMs ? { ttlMs } : {}) });
      const exported = o.out ? exportCrls(o.out, result, o.der === true) : [];
      const file = (which: 'root' | 'intermediate') => (ca.store instanceof FsStore ? { file: ca.layout.crl(which) } : { store: ca.store.location });
      const json = {
        intermediate: { signed: result.intermediate.signed, ...result.intermediate.state, ...file('intermediate') },
        root: { signed: result.root.signed, ...result.root.state, ...file('root'), ...(result.root.note ? { note: result.root.note } : {}) },
        exported,
      };
      emit(o.json, json, () => {
        const line = (name: string, r: CrlRunResult['root']) =>
          `${name} CRL #${r.state.number}: ${r.state.entries} revoked, valid until ${r.state.nextUpdate} (${formatDuration(r.state.remainingMs)} left)${r.signed ? '' : ', not re-signed'}`;
        return [line('Intermediate', result.intermediate), line('Root', result.root), ...(result.root.note ? [`warning: ${result.root.note}`] : []), ...exported.map((f) => `  exported ${f}`), ''].join('\n');
      });
    });
}

function exportCrls(out: string, result: CrlRunResult, der: boolean): string[] {
  const target = path.resolve(out);
  const isDir = out.endsWith('/') || (fs.existsSync(target) && fs.statSync(target).isDirectory());
  if (!isDir) {
    if (der) throw new MtlsError('USAGE', '--der writes one CRL per file: give --out a folder (ending in /)', { hint: 'e.g. --out ./crl/ --der' });
    writeFilesAtomic([{ file: target, data: pemEncode('X509 CRL', result.intermediate.der) + pemEncode('X509 CRL', result.root.der), mode: 0o644 }]);
    return [target];
  }
  fs.mkdirSync(target, { recursive: true, mode: 0o755 });
  const files = [
    { file: path.join(target, 'intermediate.crl'), data: der ? result.intermediate.der : pemEncode('X509 CRL', result.intermediate.der), mode: 0o644 },
    { file: path.join(target, 'root.crl'), data: der ? result.root.der : pemEncode('X509 CRL', result.root.der), mode: 0o644 },
  ];
  writeFilesAtomic(files);
  return files.map((f) => f.file);
}
