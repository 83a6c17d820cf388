/**
 * Writing a bundle (what a client is configured with): a PEM folder, a PKCS#12 file or a
 * bundle profile. It holds a private key: written 0600 (folder 0700), never over an
 * existing file, the key encrypted when a password is given (always for PKCS#12).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { MtlsError } from '../errors.js';
import { writeFilesAtomic, type FileToWrite } from '../util/atomic-file.js';
import { pemEncode } from '../x509/pem.js';
import { writePkcs12 } from '../x509/pkcs12.js';
import { BUNDLE_KIND, formatBundleProfile } from './profile.js';

export type BundleFormat = 'pem' | 'p12' | 'profile';
export const BUNDLE_FORMATS: readonly BundleFormat[] = ['pem', 'p12', 'profile'];

export interface BundleInput {
  /** leaf then intermediate */
  readonly chain: readonly Buffer[];
  readonly root: Buffer;
  readonly key: KeyObject;
  readonly url?: string;
  readonly principal?: string;
  readonly notAfter?: Date;
  /** encrypts the key (required for p12) */
  readonly password?: string;
  readonly name?: string;
}

const MODE_KEY = 0o600;
const MODE_CERT = 0o644;

function keyPem(key: KeyObject, password?: string): string {
  return password
    ? (key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: password }) as string)
    : (key.export({ format: 'pem', type: 'pkcs8' }) as string);
}

/** Writes the bundle; returns the files written. */
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
