/** `mcp-mtls csr` (client side: a key that never leaves) and `mcp-mtls sign` (CA side). */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { MODES } from '../ca/layout.js';
import { checkOutput, outputBaseName, outputDelivery, plannedOutput } from '../ca/output.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { parseDuration } from '../util/duration.js';
import { MtlsError } from '../errors.js';
import { assertPrincipalId } from '../identity/names.js';
import { createCsr, verifyCsr } from '../x509/csr.js';
import { generateKey, parseKeyType, privateKeyPem } from '../x509/keys.js';
import { pemEncode } from '../x509/pem.js';
import { emit, once, resolveDir } from './io.js';
import { claimsFrom, issuedHuman, issuedJson, NOT_AFTER_HELP, NOT_BEFORE_HELP, openAuthority, principalOf, principalOptions, validityFrom } from './issue.js';

export function registerCsr(program: Command): void {
  program
    .command('csr')
    .description('make a key and a certificate signing request; the key stays here')
    .option('--user <id>', 'the user id the request is for', once('--user'))
    .option('--service <id>', 'the service id the request is for', once('--service'))
    .option('--key-type <type>', 'ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | ed25519', 'ec-p256')
    .requiredOption('--out <dir>', 'where to write <id>.key and <id>.csr')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ mcp-mtls csr --user alice --out ~/.mcp-mtls   # then send alice.csr to the CA operator')
    .action((o) => {
      const principal = principalOf(o);
      const id = assertPrincipalId(principal.id, principal.kind);
      const key = generateKey(parseKeyType(o.keyType));
      const dir = path.resolve(o.out);
      const files = { key: path.join(dir, `${outputBaseName(id)}.key`), csr: path.join(dir, `${outputBaseName(id)}.csr`) };
      for (const f of Object.values(files)) {
        if (fs.existsSync(f)) throw new MtlsError('OUTPUT_EXISTS', `${f} exists already`, { hint: 'move it away or choose another --out' });
      }
      fs.mkdirSync(dir, { recursive: true, mode: MODES.privateDir });
      writeFileAtomic(files.key, privateKeyPem(key.pkcs8), { mode: MODES.privateKey, exclusive: true });
      writeFileAtomic(files.csr, pemEncode('CERTIFICATE REQUEST', createCsr(key, id)), { mode: MODES.cert, exclusive: true });
      emit(o.json, { keyType: key.type, files }, () => `Wrote ${files.key} (private, keep it here) and ${files.csr} (send it to the CA operator)\n`);
    });

  principalOptions(
    program
      .command('sign')
      .description('issue a client certificate for the public key in a CSR; the flags decide every claim')
      .argument('<csr>', 'the CSR file (PEM or DER)')
      .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)'),
  )
    .option('--ttl <duration>', 'lifetime (default: the CA config, 24h; at most limits.client.maxTtl, 30d)')
    .option('--not-before <time>', NOT_BEFORE_HELP)
    .option('--not-after <time>', NOT_AFTER_HELP)
    .requiredOption('--out <dir>', 'where to write <id>.crt and ca.crt')
    .option('--passphrase-file <file>', 'passphrase of an encrypted CA key')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ mcp-mtls sign alice.csr --user alice --team sre --out ./certs')
    .action(async (csrFile: string, o) => {
      const validity = validityFrom(o);
      const ca = openAuthority(resolveDir(o.dir), o);
      let data: Buffer;
      try {
        data = fs.readFileSync(csrFile);
      } catch (cause) {
        throw new MtlsError('FILE_NOT_FOUND', `cannot read CSR ${csrFile}`, { cause, hint: 'check the path' });
      }
      const claims = claimsFrom(o);
      const ttlMs = o.ttl ? parseDuration(o.ttl, '--ttl') : undefined;
      const files = plannedOutput(o.out, outputBaseName(claims.id), false);
      checkOutput(files, ca.rootPem);
      const issued = await ca.issueClientFromCsr(data, { ...claims, ...(ttlMs ? { ttlMs } : {}), ...validity }, { delivery: outputDelivery([files], ca.rootPem) });
      const csr = verifyCsr(data); // verified by the CA already; read again for the note
      const note = csr.commonName !== undefined && csr.commonName !== claims.id ? `note: the CSR asked for CN=${csr.commonName}; the certificate is for ${claims.id} as the flags say\n` : '';
      emit(o.json, issuedJson(issued, files), () => issuedHuman(issued, files) + note);
    });
}
