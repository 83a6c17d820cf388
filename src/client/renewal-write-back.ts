/**
 * Writing each renewal over the bundle file it came from (bundle-rewrite.ts does the atomic
 * write), with the passphrase that file needs: a PKCS#12 file is always encrypted, and a new
 * key goes into an encrypted PEM bundle encrypted. A missing passphrase is found at start,
 * not at the first renewal hours later; a passphrase callback is asked once, at the first
 * write that needs it.
 */
import type { Bundle } from '../bundle/load.js';
import { MtlsError } from '../errors.js';
import { bundleKeyEncrypted, rewriteBundle, type RenewedCredentials } from './bundle-rewrite.js';

/** The bundle passphrase, or what returns it. */
export type BundleWritePassphrase = string | (() => string | Promise<string>);

/** Writes renewed credentials over the bundle file. */
export interface BundleWriteBack {
  /** throws what rewriteBundle throws (or the passphrase callback) */
  write(current: Bundle, next: RenewedCredentials): Promise<void>;
}

/**
 * The write-back for `bundle`, renewed with a new key or not (`rekey`). Throws MtlsError
 * `BUNDLE_PASSWORD` when the file cannot be rewritten without a passphrase that was not given.
 */
export function createBundleWriteBack(bundle: Bundle, options: { readonly rekey: boolean; readonly passphrase: BundleWritePassphrase | undefined }): BundleWriteBack {
  const fmt = bundle.source.format;
  const needsPassphrase = fmt === 'p12' || (options.rekey && bundleKeyEncrypted(bundle));
  if (needsPassphrase && options.passphrase === undefined) {
    throw new MtlsError('BUNDLE_PASSWORD', `${bundle.source.file} ${fmt === 'p12' ? 'is a PKCS#12 file' : 'holds an encrypted key'}: renewing it needs the bundle passphrase`, {
      hint: 'pass passphrase (the CLI reads --passphrase-file or MCP_MTLS_BUNDLE_PASSPHRASE), or use rekey: false for an encrypted PEM bundle',
    });
  }
  let passphrase: string | undefined;
  const getPassphrase = async (): Promise<string | undefined> => {
    if (!needsPassphrase) return undefined; // asked only when the write needs it
    if (passphrase === undefined && options.passphrase !== undefined) passphrase = typeof options.passphrase === 'string' ? options.passphrase : await options.passphrase();
    return passphrase;
  };
  return {
    async write(current, next) {
      const secret = await getPassphrase();
      rewriteBundle(current, next, secret !== undefined ? { passphrase: secret } : {});
    },
  };
}
