/** `mcp-mtls bundle` (what a client is configured with) and `mcp-mtls check-bundle`. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Authority } from '../ca/authority.js';
import { foldIndex } from '../ca/list.js';
import { checkBundle, keyFileModeWarning, loadBundle, type Bundle } from '../bundle/load.js';
import { BUNDLE_FORMATS, writeBundle, type BundleFormat } from '../bundle/write.js';
import { serverUrl } from '../client/server-url.js';
import { MtlsError } from '../errors.js';
import { decodeIdentity } from '../identity/decode.js';
import { crlDers } from '../mtls/revocation.js';
import { parseCrl, verifyCrlSignature, type ParsedCrl } from '../x509/crl.js';
import { parseCertificate, type ParsedCertificate } from '../x509/certificate.js';
import { crlUrlsOf } from '../x509/crl-distribution-points.js';
import { boundedGet } from '../util/bounded-get.js';
import { readCertificates } from '../x509/pem.js';
import { emit, readBundlePassphrase, resolveDir, STORE_HELP, storeOptions } from './io.js';

interface Source {
  chain: Buffer[];
  root: Buffer;
  /** where the root came from, for messages */
  rootLabel: string;
  keyFile: string | undefined;
  label: string;
  /** the CA's index entry of the certificate, when the CA folder is known */
  revoked?: { revokedAt?: string; reason?: string };
  serial: string;
}

function readCaFile(file: string): Buffer {
  let certs: Buffer[];
  try {
    certs = readCertificates(fs.readFileSync(file));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code) throw new MtlsError('FILE_NOT_FOUND', `cannot read the CA certificate ${file}`, { cause, hint: 'check the --ca path: the root CA certificate (PEM), e.g. the CA folder\'s root.crt or the ca.crt that `issue` wrote' });
    throw new MtlsError('CERT_INVALID', `${file} is not a certificate`, { cause, hint: 'pass the root CA certificate (PEM)' });
  }
  if (!certs[0]) throw new MtlsError('CERT_INVALID', `${file} holds no certificate`, { hint: 'pass the root CA certificate (PEM)' });
  return certs[0];
}

/** The CA's record of a serial, when it was revoked. */
async function revocationOf(ca: Authority | undefined, serial: string): Promise<Source['revoked']> {
  if (!ca) return undefined;
  const { issued, revoked } = await ca.store.lookup(serial);
  return issued && revoked ? { revokedAt: revoked.revokedAt, reason: revoked.reason } : undefined;
}

function openCa(dir: string | undefined, o: { store?: string }): Authority | undefined {
  try {
    return Authority.open(resolveDir(dir), storeOptions(o));
  } catch (e) {
    if (e instanceof MtlsError && e.code === 'CA_NOT_FOUND' && !dir) return undefined;
    throw e;
  }
}

async function resolveSource(target: string, o: { dir?: string; key?: string; store?: string; ca?: string }): Promise<Source> {
  const ca = openCa(o.dir, o);
  if (fs.existsSync(target) && fs.statSync(target).isFile()) {
    const chain = readCertificates(fs.readFileSync(target));
    if (!chain[0]) throw new MtlsError('CERT_INVALID', `${target} holds no certificate`, { hint: 'pass the certificate file that `issue` wrote (<id>.crt)' });
    const besideCa = path.join(path.dirname(target), 'ca.crt');
    const [root, rootLabel] = o.ca
      ? [readCaFile(o.ca), o.ca]
      : ca
        ? [ca.rootDer, ca.layout.rootCert]
        : fs.existsSync(besideCa)
          ? [readCertificates(fs.readFileSync(besideCa))[0], besideCa]
          : [undefined, ''];
    if (!root) throw new MtlsError('FILE_NOT_FOUND', `no CA certificate for ${target}`, { hint: 'pass --ca FILE (the root CA certificate), --dir with the CA folder, or keep ca.crt beside the certificate' });
    const besideKey = target.replace(/\.(crt|pem|cer)$/i, '') + '.key';
    const serial = parseCertificate(chain[0]).serial;
    return { chain, root, rootLabel, keyFile: o.key ?? (fs.existsSync(besideKey) ? besideKey : undefined), label: target, serial, revoked: await revocationOf(ca, serial) };
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
  const root = o.ca ? readCaFile(o.ca) : ca.rootDer;
  return { chain: [leaf, ca.intermediateDer], root, rootLabel: o.ca ?? ca.layout.rootCert, keyFile: o.key, label: serial, serial, revoked: await revocationOf(ca, serial) };
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
    .option('--ca <file>', 'the root CA certificate the client will trust (default: the CA folder\'s root.crt, else ca.crt beside a certificate file)')
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
      // what a client would find when loading it: a chain to the root; warnings. An expired (or
      // not yet valid) certificate is bundled with a warning (checked at a time inside its validity)
      const leafX = new crypto.X509Certificate(src.chain[0] as Buffer);
      const [from, to, now] = [Date.parse(leafX.validFrom), Date.parse(leafX.validTo), Date.now()];
      let checked: Bundle;
      try {
        checked = checkBundle({ chain: src.chain, ca: [src.root], key, source: { file: src.label, format } }, new Date(Math.min(Math.max(now, from), to)));
      } catch (e) {
        if (e instanceof MtlsError && e.details?.problem === 'untrusted_chain') {
          throw new MtlsError('CERT_UNTRUSTED', `${src.label} does not chain to ${path.resolve(src.rootLabel)}: a client trusting that root would not accept the chain`, { hint: 'pass --ca with the root of the CA that issued it (or --dir with its CA folder)' });
        }
        throw e;
      }
      const warnings = now > to || now < from ? checked.warnings.filter((w) => !w.includes('expires within a day')) : [...checked.warnings];
      if (now > to) warnings.push(`the certificate expired at ${new Date(to).toISOString()}: servers refuse it; renew it (\`mcp-mtls renew ${src.serial} --out DIR\`) and bundle the new one`);
      if (now < from) warnings.push(`the certificate is valid only from ${new Date(from).toISOString()}: servers refuse it until then; check the clock`);
      const keyMode = keyFileModeWarning(src.keyFile);
      if (keyMode) warnings.push(keyMode);
      if (src.revoked) {
        warnings.push(
          `certificate ${src.serial} was revoked${src.revoked.revokedAt ? ` at ${src.revoked.revokedAt}` : ''}${src.revoked.reason ? ` (${src.revoked.reason})` : ''}: servers refuse it; issue a new one (\`mcp-mtls issue client\`) and bundle that`,
        );
      }
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
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
      emit(o.json, { format, files, principal, notAfter: notAfter.toISOString(), encrypted: password !== undefined, warnings }, () =>
        `Wrote ${format} bundle${principal ? ` for ${principal}` : ''} (${password ? 'key encrypted' : 'key NOT encrypted'}): ${files.join(', ')}\nIt holds a private key: hand it over privately.\n`,
      );
    });

  program
    .command('check-bundle')
    .description('load a bundle as a client would and report what it holds (or why it is unusable)')
    .argument('<path>', 'a bundle profile, a PKCS#12 file or a PEM folder')
    .option('--passphrase-file <file>', 'the bundle passphrase (else $MCP_MTLS_BUNDLE_PASSPHRASE or a prompt)')
    .option('--ca-dir <dir>', "check revocation in the CA's records: its CA folder (--store for a database store)")
    .option('--store <url>', STORE_HELP)
    .option('--crl <file|url>', 'check revocation against a CRL (PEM or DER; a file, or an http(s) URL such as the certificate\'s CRL distribution point) of the CA that issued the certificate (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nA revoked certificate is an error (exit 65) when --ca-dir or --crl can tell; without them revocation is not checked.\n\nExamples:\n  $ mcp-mtls check-bundle alice.mcp-bundle.yaml\n  $ mcp-mtls check-bundle alice.mcp-bundle.yaml --ca-dir ./pki\n  $ mcp-mtls check-bundle ./alice-pem --crl intermediate.crl\n  $ mcp-mtls check-bundle alice.mcp-bundle.yaml --crl https://ca.acme.test/crl/intermediate.crl',
    )
    .action(async (file: string, o) => {
      const b = await loadBundle(file, { passphrase: () => readBundlePassphrase(o) });
      const revocation = await checkRevocation(b, o);
      const out = {
        file: b.source.file,
        format: b.source.format,
        principal: b.identity?.principal ?? null,
        teams: b.identity?.teams ?? [],
        roles: b.identity?.roles ?? [],
        url: b.url ?? null,
        notAfter: b.notAfter.toISOString(),
        chainLength: b.chain.length,
        revocation,
        warnings: [...b.warnings, ...revocation.warnings],
      };
      for (const w of out.warnings) process.stderr.write(`warning: ${w}\n`);
      const { warnings: _w, ...revocationJson } = revocation;
      emit(o.json, { ...out, revocation: revocationJson }, () =>
        [
          `${out.file} (${out.format}): ${out.principal ?? 'certificate without an identity'}`,
          `  valid until ${out.notAfter}${out.url ? `, server ${out.url}` : ''}`,
          revocation.checked
            ? `  not revoked (checked against ${revocation.source})`
            : `  revocation not checked: pass --ca-dir DIR (the CA folder) or --crl FILE${revocation.crlUrls?.length ? ` (or --crl ${revocation.crlUrls[0]}, the certificate's CRL distribution point)` : ''}`,
          '',
        ].join('\n'),
      );
    });
}

interface RevocationCheck {
  checked: boolean;
  revoked?: false;
  source?: string;
  /** the CRL distribution points the certificate names (when revocation was not checked) */
  crlUrls?: string[];
  warnings: string[];
}

/** A CRL's bytes from a file or an http(s) URL (bounded: 10 s, 64 MiB). */
async function readCrlSource(source: string): Promise<{ label: string; data: Buffer }> {
  if (/^https?:\/\//i.test(source)) {
    let res;
    try {
      res = await boundedGet(new URL(source), { timeoutMs: 10_000, maxBytes: 64 * 1024 * 1024 });
    } catch (cause) {
      if (cause instanceof MtlsError && cause.code !== 'IO_ERROR') throw cause;
      // a time or size limit (IO_ERROR) or the network's error: name the URL (--crl may be given more than once)
      throw new MtlsError('IO_ERROR', `cannot fetch the CRL ${source}: ${(cause as Error).message}`, { cause, hint: 'check the URL and that the CA serves it, or pass a CRL file' });
    }
    if (res.status !== 200) throw new MtlsError('IO_ERROR', `cannot fetch the CRL ${source}: HTTP ${res.status}`, { hint: 'check the URL, or pass a CRL file' });
    return { label: source, data: res.body };
  }
  const file = path.resolve(source);
  try {
    return { label: file, data: fs.readFileSync(file) };
  } catch (cause) {
    throw new MtlsError('FILE_NOT_FOUND', `no CRL at ${file}`, { cause, hint: 'check the --crl path (the CA folder has crl/intermediate.crl)' });
  }
}

function revokedError(b: Bundle, serial: string, how: { revokedAt?: string; reason?: string }, source: string): MtlsError {
  return new MtlsError('CERT_REVOKED', `the certificate in ${b.source.file} (serial ${serial}) is revoked (${how.reason ?? 'unspecified'}${how.revokedAt ? `, ${how.revokedAt}` : ''}; per ${source}): servers with the CA's CRL refuse it`, {
    hint: 'ask your operator for a new certificate; `mcp-mtls renew` cannot renew a revoked one',
    details: { serial, ...how },
  });
}

/**
 * Whether the bundle's certificate is revoked, as far as --ca-dir (the CA's index) and --crl
 * (CRL files, signature checked against the certificate's issuer) can tell.
 * @throws MtlsError `CERT_REVOKED` when it is
 */
async function checkRevocation(b: Bundle, o: { caDir?: string; store?: string; crl: string[] }): Promise<RevocationCheck> {
  const leaf = parseCertificate(b.chain[0] as Buffer);
  const warnings: string[] = [];
  const sources: string[] = [];
  if (o.caDir) {
    const ca = Authority.open(o.caDir, storeOptions(o));
    try {
      if (!b.ca.some((r) => r.equals(ca.rootDer))) {
        throw new MtlsError('USAGE', `the bundle ${b.source.file} does not trust the CA at ${ca.layout.dir}`, { hint: 'pass --ca-dir with the folder of the CA that issued the certificate' });
      }
      const entry = await ca.store.lookup(leaf.serial);
      if (!entry.issued) warnings.push(`serial ${leaf.serial} is not in the records of the CA at ${ca.layout.dir}: its revocation could not be checked there`);
      else if (entry.revoked) throw revokedError(b, leaf.serial, { revokedAt: entry.revoked.revokedAt, reason: entry.revoked.reason }, ca.layout.dir);
      else sources.push(ca.layout.dir);
    } finally {
      await ca.store.close();
    }
  }
  // the chain upwards: each certificate with the CA that signed it (the leaf's issuer, that CA's, ...)
  const pool = [...b.chain.slice(1), ...b.ca].map((d) => parseCertificate(d));
  const links: { cert: ParsedCertificate; issuer: ParsedCertificate }[] = [];
  for (let cert: ParsedCertificate | undefined = leaf; cert && links.length < 8; ) {
    const below: ParsedCertificate = cert;
    const issuer = pool.find((c) => c.subjectName.equals(below.issuerName) && new crypto.X509Certificate(below.der).verify(new crypto.X509Certificate(c.der).publicKey));
    if (!issuer || issuer.der.equals(below.der)) break; // self-signed: the root
    links.push({ cert: below, issuer });
    cert = issuer;
  }
  for (const crlSource of o.crl) {
    const { label: file, data } = await readCrlSource(crlSource);
    let crls: ParsedCrl[];
    try {
      crls = crlDers(data).map((d) => parseCrl(d));
    } catch (cause) {
      throw new MtlsError('CRL_INVALID', `${file} is not a CRL: ${(cause as Error).message}`, { cause, hint: 'pass a CRL (PEM or DER) that `mcp-mtls crl` wrote or `ca serve` serves' });
    }
    // the CRL of the leaf's issuing CA, or of a CA above it (the root's CRL says whether the intermediate is revoked)
    let found: { crl: ParsedCrl; cert: ParsedCertificate } | undefined;
    for (const c of crls) {
      const link = links.find((l) => c.issuerName.equals(l.issuer.subjectName) && verifyCrlSignature(c, new crypto.X509Certificate(l.issuer.der).publicKey));
      if (link) {
        found = { crl: c, cert: link.cert };
        break;
      }
    }
    if (!found) {
      throw new MtlsError('CRL_INVALID', `${file} was not signed by the CA that issued the certificate in ${b.source.file} (nor by a CA above it): it says nothing about its revocation`, { hint: "pass the CRL of the certificate's issuing CA (the CA folder's crl/intermediate.crl), or the root's (crl/root.crl)" });
    }
    const { crl, cert } = found;
    const entry = crl.entries.find((e) => e.serial === cert.serial);
    // a delta or partitioned CRL lists only some revocations: its silence says nothing (servers refuse it too)
    if (!entry && crl.notComplete) {
      throw new MtlsError('CRL_INVALID', `${file} cannot be used to check revocation: ${crl.notComplete}`, { hint: "pass the issuing CA's complete CRL (the CA folder's crl/intermediate.crl, or the certificate's CRL distribution point)" });
    }
    if (entry && cert === leaf) throw revokedError(b, leaf.serial, { revokedAt: entry.revokedAt.toISOString(), reason: entry.reason }, file);
    if (entry) {
      const how = { revokedAt: entry.revokedAt.toISOString(), reason: entry.reason };
      throw new MtlsError('CERT_REVOKED', `the CA certificate ${new crypto.X509Certificate(cert.der).subject.replaceAll('\n', ', ')} (serial ${cert.serial}) that issued the certificate in ${b.source.file} is revoked (${how.reason ?? 'unspecified'}, ${how.revokedAt}; per ${file}): servers with the root's CRL refuse every certificate it issued`, {
        hint: 'ask your operator for a certificate from the CA\'s current intermediate',
        details: { serial: cert.serial, ...how },
      });
    }
    if (crl.nextUpdate && crl.nextUpdate < new Date()) warnings.push(`${file} is out of date (nextUpdate ${crl.nextUpdate.toISOString()}): a newer CRL may list the certificate`);
    sources.push(file);
  }
  if (sources.length) return { checked: true, revoked: false, source: sources.join(', '), warnings };
  const crlUrls = crlUrlsOf(leaf);
  return { checked: false, ...(crlUrls.length ? { crlUrls } : {}), warnings };
}
