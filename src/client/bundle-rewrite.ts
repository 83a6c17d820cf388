/**
 * Replacing a bundle on disk with renewed credentials, so that a reader never finds a key
 * and a certificate that do not belong together:
 *
 * - a bundle profile or a PKCS#12 file is one file: written beside it, fsynced, renamed over.
 * - a PEM folder (cert.pem, key.pem, ca.pem) holds two files that change together on a
 *   rekey, and no two renames are atomic together. The folder is switched (once) to
 *   generations: cert.pem, key.pem and ca.pem become symlinks to current/<name>, and
 *   `current` is a symlink to a hidden .gen-<id>/ folder. The first switch points at a copy
 *   of the files as they are (each rename is content-identical), and every renewal then
 *   writes a new generation and renames one symlink: the key and the certificate change in
 *   the same instant. loadBundle reads all three files from the generation `current` points
 *   to; the previous generation is kept until the next renewal, for a reader that resolved it
 *   just before. Without a new key only cert.pem changes: one rename, no symlinks.
 *
 * Modes as everywhere: keys 0600, certificates 0644, private folders 0700.
 */
import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle } from '../bundle/load.js';
import { BUNDLE_KIND, formatBundleProfile, parseBundleProfile } from '../bundle/profile.js';
import { MtlsError } from '../errors.js';
import { fsyncDir, writeFileAtomic, writeFilesAtomic } from '../util/atomic-file.js';
import { parseCertificate } from '../x509/certificate.js';
import { privateKeyPem } from '../x509/keys.js';
import { pemEncode } from '../x509/pem.js';
import { writePkcs12 } from '../x509/pkcs12.js';

const MODE_KEY = 0o600;
const MODE_CERT = 0o644;
const CURRENT = 'current';

/** What a renewal produced, to write over the bundle. */
export interface RenewedCredentials {
  /** leaf then intermediates */
  readonly chain: readonly Buffer[];
  readonly key: KeyObject;
  /** false when the CA certified the same public key again: the key file is left alone */
  readonly keyChanged: boolean;
}

/** True when the bundle's key is stored encrypted (then a new key needs the passphrase to be written). */
export function bundleKeyEncrypted(bundle: Pick<Bundle, 'source'>): boolean {
  const { file, format } = bundle.source;
  if (format === 'p12') return true;
  try {
    const text = format === 'pem' ? fs.readFileSync(path.join(file, 'key.pem'), 'utf8') : fs.readFileSync(file, 'utf8');
    return text.includes('ENCRYPTED PRIVATE KEY');
  } catch {
    return false;
  }
}

const keyText = (key: KeyObject, passphrase: string | undefined): string =>
  privateKeyPem(key.export({ format: 'der', type: 'pkcs8' }), passphrase);

/** Writes the renewed credentials over the bundle they renew (see the module comment). */
export function rewriteBundle(bundle: Pick<Bundle, 'source' | 'ca'>, next: RenewedCredentials, options: { passphrase?: string } = {}): void {
  const { file, format } = bundle.source;
  const chainPem = next.chain.map((d) => pemEncode('CERTIFICATE', d)).join('');
  if (format === 'p12') {
    if (!options.passphrase) throw new MtlsError('BUNDLE_PASSWORD', `${file} is a PKCS#12 file: it is rewritten only with its passphrase`, { hint: 'pass the bundle passphrase to the renewer' });
    const data = writePkcs12({ privateKey: next.key, certificates: [...next.chain, ...bundle.ca], password: options.passphrase });
    writeFileAtomic(file, data, { mode: MODE_KEY });
    return;
  }
  const encrypted = bundleKeyEncrypted(bundle);
  if (next.keyChanged && encrypted && !options.passphrase) {
    throw new MtlsError('BUNDLE_PASSWORD', `the key in ${file} is encrypted: a new key is written only with the passphrase`, { hint: 'pass the bundle passphrase to the renewer, or renew without a new key (rekey: false)' });
  }
  if (format === 'profile') {
    const profile = parseBundleProfile(fs.readFileSync(file, 'utf8'), file);
    const text = formatBundleProfile({
      ...profile,
      kind: BUNDLE_KIND,
      version: 1,
      notAfter: parseCertificate(next.chain[0] as Buffer).notAfter.toISOString(),
      certificate: chainPem,
      key: next.keyChanged ? keyText(next.key, encrypted ? options.passphrase : undefined) : profile.key,
    });
    writeFileAtomic(file, text, { mode: MODE_KEY });
    return;
  }
  rewritePemFolder(file, chainPem, next.keyChanged ? keyText(next.key, encrypted ? options.passphrase : undefined) : undefined);
}

function isGenerational(dir: string): boolean {
  try {
    return fs.readlinkSync(path.join(dir, 'cert.pem')) === path.join(CURRENT, 'cert.pem') && fs.lstatSync(path.join(dir, CURRENT)).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Points `link` at `target` in one rename (a symlink written beside it first). */
function swapSymlink(link: string, target: string): void {
  const tmp = path.join(path.dirname(link), `.${crypto.randomBytes(8).toString('hex')}.lnk`);
  try {
    fs.symlinkSync(target, tmp);
    fs.renameSync(tmp, link);
  } catch (cause) {
    fs.rmSync(tmp, { force: true });
    throw new MtlsError('IO_ERROR', `cannot replace ${link} with a symlink: ${(cause as Error).message}`, {
      cause,
      hint: 'a PEM folder bundle gets a new key through symlinks; use a bundle profile, or renew without a new key (rekey: false)',
    });
  }
}

function writeGeneration(dir: string, files: { cert: string; key: string; ca: string }): string {
  const name = `.gen-${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`;
  const gen = path.join(dir, name);
  fs.mkdirSync(gen, { mode: 0o700 });
  fs.chmodSync(gen, 0o700);
  writeFilesAtomic([
    { file: path.join(gen, 'cert.pem'), data: files.cert, mode: MODE_CERT, exclusive: true },
    { file: path.join(gen, 'key.pem'), data: files.key, mode: MODE_KEY, exclusive: true },
    { file: path.join(gen, 'ca.pem'), data: files.ca, mode: MODE_CERT, exclusive: true },
  ]);
  return name;
}

function rewritePemFolder(dir: string, chainPem: string, newKeyPem: string | undefined): void {
  const read = (name: string) => fs.readFileSync(path.join(dir, name), 'utf8');
  const generational = isGenerational(dir);
  if (!generational && newKeyPem === undefined) {
    writeFileAtomic(path.join(dir, 'cert.pem'), chainPem, { mode: MODE_CERT }); // the key is unchanged: one rename
    return;
  }
  if (!generational) {
    // switch to generations with a copy of what is there: every rename below is content-identical
    const first = writeGeneration(dir, { cert: read('cert.pem'), key: read('key.pem'), ca: read('ca.pem') });
    swapSymlink(path.join(dir, CURRENT), first);
    for (const name of ['ca.pem', 'key.pem', 'cert.pem']) swapSymlink(path.join(dir, name), path.join(CURRENT, name));
    fsyncDir(dir);
  }
  const previous = fs.readlinkSync(path.join(dir, CURRENT));
  const next = writeGeneration(dir, { cert: chainPem, key: newKeyPem ?? read('key.pem'), ca: read('ca.pem') });
  swapSymlink(path.join(dir, CURRENT), next);
  fsyncDir(dir);
  // older generations go; the previous one stays, for a reader that resolved `current` just before
  for (const name of fs.readdirSync(dir)) {
    if (/^\.gen-[0-9a-z-]+$/.test(name) && name !== next && name !== previous) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}
