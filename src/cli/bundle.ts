/** `mcp-mtls bundle` (what a client is configured with) and `mcp-mtls check-bundle`. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Authority } from '../ca/authority.js';
import { foldIndex } from '../ca/list.js';
import { loadBundle } from '../bundle/load.js';
import { BUNDLE_FORMATS, writeBundle, type BundleFormat } from '../bundle/write.js';
import { serverUrl } from '../client/server-url.js';
import { MtlsError } from '../errors.js';
import { decodeIdentity } from '../identity/decode.js';
import { readCertificates } from '../x509/pem.js';
import { emit, readBundlePassphrase, resolveDir, STORE_HELP, storeOptions } from './io.js';

interface Source {
  chain: Buffer[];
  root: Buffer;
  keyFile: string | undefined;
  label: string;
}

function openCa(dir: string | undefined, o: { store?: string }): Authority | undefined {
  try {
    return Authority.open(resolveDir(dir), storeOptions(o));
  } catch (e) {
    if (e instanceof MtlsError && e.code === 'CA_NOT_FOUND' && !dir) return undefined;
    throw e;
  }
}

async function resolveSource(target: string, o: { dir?: string; key?: string; store?: string }): Promise<Source> {
  const ca = openCa(o.dir, o);
  if (fs.existsSync(target) && fs.statSync(target).isFile()) {
    const chain = readCertificates(fs.readFileSync(target));
    const besideCa = path.join(path.dirname(target), 'ca.crt');
    const root = ca ? ca.rootDer : fs.existsSync(besideCa) ? readCertificates(fs.readFileSync(besideCa))[0] : undefined;
    if (!root) throw new MtlsError('FILE_NOT_FOUND', `no CA certificate for ${target}`, { hint: 'pass --dir with the CA folder, or keep ca.crt beside the certificate' });
    const besideKey = target.replace(/\.(crt|pem|cer)$/i, '') + '.key';
    return { chain, root, keyFile: o.key ?? (fs.existsSync(besideKey) ? besideKey : undefined), label: target };
  }
  if (!ca) throw new MtlsError('CA_NOT_FOUND', `${target} is not a file, and there is no CA folder to look it up in`, { hint: 'pass a certificate file, or --dir with the CA folder' });
  const entries = foldIndex(await ca.store.readIndex(), ca.now());
  const hex = target.toLowerCase().replace(/:/g, '');
  let serial: string;
  if (entries.some((e) => e.serial === hex)) {
    serial = hex;
  } else {
    const matches = entries.filter((e) => e.id === target && e.status === 'valid');
    const kinds = new Set(matches.map((e) => `${e.type}/${e.kind ?? ''}`));
    if (matches.length === 0) throw new MtlsError('NOT_FOUND', `no valid certificate for "${target}" in ${ca.layout.dir}`, { hint: 'see `mcp-mtls list`; pass a serial or a certificate file' });
    if (kinds.size > 1) throw new MtlsError('USAGE', `"${target}" names more than one principal (${[...kinds].join(', ')})`, { hint: 'pass the serial instead' });
    serial = matches.sort((a, b) => Date.parse(b.notAfter) - Date.parse(a.notAfter))[0]!.serial;
  }
  const leaf = await ca.store.readIssued(serial);
  if (!leaf) throw new MtlsError('STORE_CORRUPT', `issued/${serial}.crt is missing`, { hint: 'restore the CA folder from backup' });
  return { chain: [leaf, ca.intermediateDer], root: ca.rootDer, keyFile: o.key, label: serial };
}

export function registerBundle(program: Command): void {
  program
    .command('bundle')
    .description('package a certificate, its key and the CA for a client: a PEM folder, PKCS#12, or a bundle profile')
    .argument('<serial|id|cert-file>', 'a serial, a user/service id (its newest valid certificate), or a certificate file')
    .requiredOption('--format <format>', 'pem | p12 | profile')
    .requiredOption('--out <path>', 'the file (p12, profile) or folder (pem) to write; never overwritten')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--key <file>', "the certificate's private key (default: <cert>.key beside a certificate file)")
    .option('--url <url>', 'the MCP server URL, written into a profile')
    .option('--renew-url <url>', "the CA's /renew (https), written into a profile: `mcp-mtls connect` and the client library renew through it")
    .option('--encrypt', 'encrypt the key (always for p12)')
    .option('--passphrase-file <file>', 'the bundle passphrase (else $MCP_MTLS_BUNDLE_PASSPHRASE or a prompt)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mcp-mtls bundle ./certs/alice.crt --format profile --url https://mcp.acme.test/mcp --out alice.mcp-bundle.yaml\n  $ mcp-mtls bundle ./certs/alice.crt --format p12 --out alice.p12   # asks for a password',
    )
    .action(async (target: string, o) => {
      if (!BUNDLE_FORMATS.includes(o.format)) throw new MtlsError('USAGE', `unknown bundle format "${o.format}"`, { hint: `use one of: ${BUNDLE_FORMATS.join(', ')}` });
      const format = o.format as BundleFormat;
      if (o.url) {
        try {
          new URL(o.url);
        } catch {
          throw new MtlsError('USAGE', `--url "${o.url}" is not a URL`, { hint: 'e.g. https://mcp.example.com/mcp' });
        }
        // a profile for cleartext would carry the key to where it is never presented: https:
        // only, but loopback http for development (connect still wants --allow-insecure-loopback-http)
        serverUrl(o.url, { allowInsecureLoopbackHttp: true });
      }
      if (o.renewUrl && !/^https:\/\//.test(o.renewUrl)) throw new MtlsError('USAGE', `--renew-url "${o.renewUrl}" is not an https: URL`, { hint: 'e.g. https://ca.acme.test/renew' });
      if (fs.existsSync(path.resolve(o.out))) throw new MtlsError('OUTPUT_EXISTS', `${path.resolve(o.out)} exists already`, { hint: 'choose another --out' });
      const src = await resolveSource(target, o);
      if (!src.keyFile) {
        throw new MtlsError('USAGE', `no private key for ${src.label}: the CA never keeps client keys`, { hint: 'pass --key FILE (the .key that `issue` wrote), or the certificate file with its .key beside it' });
      }
      let key;
      try {
        key = crypto.createPrivateKey(fs.readFileSync(src.keyFile));
      } catch (cause) {
        throw new MtlsError('KEY_INVALID', `cannot read the private key ${src.keyFile}`, { cause, hint: 'pass the unencrypted PKCS#8 key that `issue` or `csr` wrote' });
      }
      if (!new crypto.X509Certificate(src.chain[0] as Buffer).checkPrivateKey(key)) {
        throw new MtlsError('KEY_INVALID', `${src.keyFile} is not the key of ${src.label}`, { hint: 'pass the key that belongs to this certificate' });
      }
      const password = format === 'p12' || o.encrypt ? await readBundlePassphrase(o, true) : undefined;
      let principal: string | undefined;
      try {
        principal = decodeIdentity(src.chain[0] as Buffer).principal;
      } catch {
        principal = undefined;
      }
      const notAfter = new Date(new crypto.X509Certificate(src.chain[0] as Buffer).validTo);
      const files = writeBundle(format, o.out, {
        chain: src.chain,
        root: src.root,
        key,
        ...(o.url ? { url: o.url } : {}),
        ...(o.renewUrl ? { renewUrl: o.renewUrl } : {}),
        ...(principal ? { principal, name: principal.split('/').pop() as string } : {}),
        notAfter,
        ...(password ? { password } : {}),
      });
      emit(o.json, { format, files, principal, notAfter: notAfter.toISOString(), encrypted: password !== undefined }, () =>
        `Wrote ${format} bundle${principal ? ` for ${principal}` : ''} (${password ? 'key encrypted' : 'key NOT encrypted'}): ${files.join(', ')}\nIt holds a private key: hand it over privately.\n`,
      );
    });

  program
    .command('check-bundle')
    .description('load a bundle as a client would and report what it holds (or why it is unusable)')
    .argument('<path>', 'a bundle profile, a PKCS#12 file or a PEM folder')
    .option('--passphrase-file <file>', 'the bundle passphrase (else $MCP_MTLS_BUNDLE_PASSPHRASE or a prompt)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, o) => {
      const b = await loadBundle(file, { passphrase: () => readBundlePassphrase(o) });
      const out = {
        file: b.source.file,
        format: b.source.format,
        principal: b.identity?.principal ?? null,
        teams: b.identity?.teams ?? [],
        roles: b.identity?.roles ?? [],
        url: b.url ?? null,
        notAfter: b.notAfter.toISOString(),
        chainLength: b.chain.length,
        warnings: b.warnings,
      };
      emit(o.json, out, () =>
        [`${out.file} (${out.format}): ${out.principal ?? 'certificate without an identity'}`, `  valid until ${out.notAfter}${out.url ? `, server ${out.url}` : ''}`, ...b.warnings.map((w) => `warning: ${w}`), ''].join('\n'),
      );
    });
}
