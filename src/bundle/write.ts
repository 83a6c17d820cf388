/** Writing a bundle (what a client is configured with): see {@link writeBundle}. */
import fs from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { MtlsError } from '../errors.js';
import { writeFilesAtomic, type FileToWrite } from '../util/atomic-file.js';
import { pemEncode } from '../x509/pem.js';
import { writePkcs12 } from '../x509/pkcs12.js';
import { BUNDLE_KIND, formatBundleProfile } from './profile.js';

/**
 * How a bundle is written: `pem`, a folder with cert.pem, key.pem and ca.pem; `p12`, a
 * PKCS#12 file (needs a password); `profile`, one YAML file that can also name the server URL.
 */
export type BundleFormat = 'pem' | 'p12' | 'profile';
/** Every {@link BundleFormat}, for validating input and listing choices. */
export const BUNDLE_FORMATS: readonly BundleFormat[] = ['pem', 'p12', 'profile'];

/** What {@link writeBundle} writes. */
export interface BundleInput {
  /** The certificates (DER): leaf, then intermediate. */
  readonly chain: readonly Buffer[];
  /** The root CA certificate (DER) the client will trust. */
  readonly root: Buffer;
  readonly key: KeyObject;
  /** The MCP server's URL (profile only). */
  readonly url?: string;
  /** The CA's renewal endpoint, for clients that renew on their own (profile only). */
  readonly renewUrl?: string;
  /** The principal URI, for people reading the file (profile only). */
  readonly principal?: string;
  /** The certificate's expiry, for people reading the file (profile only). */
  readonly notAfter?: Date;
  /** Encrypts the key (AES-256-CBC PKCS#8 in PEM); required for p12. Without it the key is written unencrypted. */
  readonly password?: string;
  /** The friendly name in the PKCS#12 file (p12 only). */
  readonly name?: string;
}

const MODE_KEY = 0o600;
const MODE_CERT = 0o644;

function keyPem(key: KeyObject, password?: string): string {
  return password
    ? (key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: password }) as string)
    : (key.export({ format: 'pem', type: 'pkcs8' }) as string);
}

/**
 * Writes a bundle (what a client is configured with): a PEM folder, a PKCS#12 file or a
 * bundle profile. It holds a private key: key files are written 0600 (certificates 0644,
 * folders 0700, missing parent folders created), atomically, never over an existing file,
 * the key encrypted when a password is given (always for PKCS#12).
 *
 * @param out - the folder (pem) or file (p12, profile) to create; it must not exist
 * @returns the absolute paths of the files written
 * @throws MtlsError `OUTPUT_EXISTS` when `out` exists, `BAD_ARGUMENT` for p12 without a password
 */
export function writeBundle(format: BundleFormat, out: string, b: BundleInput): string[] {
  const target = path.resolve(out);
  if (fs.existsSync(target)) {
    throw new MtlsError('OUTPUT_EXISTS', `${target} exists already`, { hint: 'choose another --out; a bundle is never written over an existing file' });
  }
  const chainPem = b.chain.map((d) => pemEncode('CERTIFICATE', d)).join('');
  const rootPem = pemEncode('CERTIFICATE', b.root);
  let files: FileToWrite[];
  if (format === 'pem') {
    fs.mkdirSync(target, { recursive: true, mode: 0o700 });
    fs.chmodSync(target, 0o700);
    files = [
      { file: path.join(target, 'cert.pem'), data: chainPem, mode: MODE_CERT, exclusive: true },
      { file: path.join(target, 'key.pem'), data: keyPem(b.key, b.password), mode: MODE_KEY, exclusive: true },
      { file: path.join(target, 'ca.pem'), data: rootPem, mode: MODE_CERT, exclusive: true },
    ];
  } else if (format === 'p12') {
    if (!b.password) throw new MtlsError('BAD_ARGUMENT', 'a PKCS#12 bundle needs a password', { hint: 'pass --passphrase-file FILE or set MCP_MTLS_BUNDLE_PASSPHRASE' });
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    files = [{ file: target, data: writePkcs12({ privateKey: b.key, certificates: [...b.chain, b.root], password: b.password, ...(b.name ? { friendlyName: b.name } : {}) }), mode: MODE_KEY, exclusive: true }];
  } else {
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    const text = formatBundleProfile({
      kind: BUNDLE_KIND,
      version: 1,
      ...(b.url ? { url: b.url } : {}),
      ...(b.renewUrl ? { renewUrl: b.renewUrl } : {}),
      ...(b.principal ? { principal: b.principal } : {}),
      ...(b.notAfter ? { notAfter: b.notAfter.toISOString() } : {}),
      certificate: chainPem,
      key: keyPem(b.key, b.password),
      ca: rootPem,
    });
    files = [{ file: target, data: text, mode: MODE_KEY, exclusive: true }];
  }
  writeFilesAtomic(files);
  return files.map((f) => f.file);
}
