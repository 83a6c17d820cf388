/**
 * `mcp-mtls inspect FILE|SERIAL|https://HOST:PORT`. Exits 65 when the certificate is not usable as
 * what it claims to be (a server: its chain does not verify, or its certificate is not valid now).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Authority } from '../ca/authority.js';
import { inspectCertificate, type InspectReport } from '../ca/inspect.js';
import { MtlsError } from '../errors.js';
import { pemEncode, readCertificates } from '../x509/pem.js';
import { probeTlsServer, type TlsProbeResult } from '../client/tls-probe.js';
import { emit, EXIT, resolveDir, STORE_HELP, storeOptions } from './io.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('decode a certificate: identity (as servers read it), validity, chain status, fingerprint')
    .argument('<file-or-serial>', "a certificate file (PEM or DER), the serial of an issued certificate, or https://HOST:PORT: a server's chain and the client certificates it asks for")
    .option('--dir <dir>', 'CA folder to check the chain against (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--ca <file>', "with https://: the root(s) to verify the server's chain against (default: the CA folder's root if there is one, else Node's roots)")
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  $ mcp-mtls inspect ./certs/alice.crt\n  $ mcp-mtls inspect https://mcp.acme.test:8443 --ca ./certs/ca.crt')
    .action(async (target: string, o) => {
      const dir = resolveDir(o.dir);
      if (/^https:\/\//i.test(target)) return inspectServer(target, o, dir);
      if (o.ca) throw new MtlsError('USAGE', '--ca is for https:// targets', { hint: 'a certificate file is checked against the CA folder (--dir)' });
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

/** What `inspect https://...` prints for each certificate of the chain (no CA-folder chain check: the TLS verification says). */
type ServerCertificate = Omit<InspectReport, 'chain' | 'identity' | 'identityError'>;

async function inspectServer(target: string, o: { ca?: string; dir?: string; json?: boolean }, dir: string): Promise<void> {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new MtlsError('USAGE', `${target} is not a URL`, { hint: 'e.g. https://mcp.acme.test:8443' });
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : 443;
  let ca: string[] | undefined; // PEM: node:tls reads a Buffer as PEM too, never as DER
  let against = "Node's bundled roots";
  if (o.ca) {
    if (!fs.existsSync(o.ca)) throw new MtlsError('FILE_NOT_FOUND', `no CA file ${o.ca}`, { hint: 'pass the root certificate (PEM or DER) the server chains to' });
    ca = readCertificates(fs.readFileSync(o.ca)).map((der) => pemEncode('CERTIFICATE', der));
    against = o.ca;
  } else if (fs.existsSync(path.join(dir, 'root.crt'))) {
    ca = readCertificates(fs.readFileSync(path.join(dir, 'root.crt'))).map((der) => pemEncode('CERTIFICATE', der));
    against = `the CA folder ${dir}`;
  }
  const probe = await probeTlsServer(host, port, ca ? { ca } : {});
  const now = new Date();
  const chain: ServerCertificate[] = probe.chain.map((der) => {
    const { chain: _c, identity: _i, identityError: _e, ...rest } = inspectCertificate(der, { now });
    return rest;
  });
  const report = { url: `https://${url.host}`, address: probe.address, protocol: probe.protocol, cipher: probe.cipher, verified: { ...probe.verified, against }, chain, chainSource: probe.chainSource, clientCertificate: probe.clientCertificate };
  emit(o.json, report, () => serverHuman(report, probe));
  if (!probe.verified.ok || chain[0]?.validity !== 'valid') process.exitCode = EXIT.data;
}

function serverHuman(r: { url: string; verified: { ok: boolean; reason?: string; against: string }; chain: ServerCertificate[]; clientCertificate: TlsProbeResult['clientCertificate'] }, p: TlsProbeResult): string {
  const lines = [`Server:       ${r.url} (${p.address}, ${p.protocol}, ${p.cipher})`, `Verified:     ${r.verified.ok ? 'yes' : `no: ${r.verified.reason}`} (against ${r.verified.against})`];
  r.chain.forEach((c, i) => {
    lines.push(
      `Certificate ${i + 1}${i === 0 ? ' (the server\'s)' : ''}:`,
      `  Subject:      ${c.subject}`,
      `  Issuer:       ${c.issuer}`,
      ...(c.subjectAltNames.dns.length || c.subjectAltNames.ips.length ? [`  Names:        ${[...c.subjectAltNames.dns, ...c.subjectAltNames.ips].join(', ')}`] : []),
      `  Valid:        ${c.notBefore} to ${c.notAfter} (${c.validity})`,
      `  Key:          ${c.keyType}; ${c.type}${c.extKeyUsage.length ? ` (${c.extKeyUsage.join(', ')})` : ''}`,
      `  Serial:       ${c.serial}`,
      `  Fingerprint:  ${c.fingerprint}`,
    );
  });
  const cc = r.clientCertificate;
  const asked =
    cc.requested === 'unknown'
      ? 'unknown'
      : !cc.requested
        ? 'not requested'
        : cc.required === true
          ? 'requested and required (the handshake fails without one)'
          : cc.required === false
            ? 'requested, not required by TLS (the server may still refuse without one, e.g. HTTP 401)'
            : 'requested';
  lines.push(`Client certificate: ${asked}`);
  if (cc.requested !== false) lines.push(`Accepted CAs: ${cc.acceptedCas === 'unknown' ? 'unknown' : cc.acceptedCas.length === 0 ? '(the server names none: any)' : cc.acceptedCas.join('\n              ')}`);
  lines.push(`  (${cc.source})`);
  return `${lines.join('\n')}\n`;
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
