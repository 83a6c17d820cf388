/**
 * Internal: the signers of an open CA's keys. Not reachable from the package (src/api/ exports
 * nothing from here): no public export may sign anything but what the issuance stages
 * (authority.ts) and the CRL writer (revocation.ts) build. `Authority` grants its keys here
 * when it is constructed; the modules that sign (and the tests, which forge certificates on
 * purpose) ask for them by instance. A WeakMap, so that an `Authority` object carries no
 * property or method through which a holder could reach a key.
 */
import { MtlsError } from '../errors.js';
import type { Signer } from '../x509/keys.js';

/** How an Authority loads its keys (private methods of its own, handed over at construction). */
export interface KeyAccess {
  /** the intermediate's signer, read (and decrypted) once, then kept */
  readonly intermediate: () => Promise<Signer>;
  /** the root's signer, read anew at each call (the root key is normally offline) */
  readonly root: () => Promise<Signer>;
}

const ACCESS = new WeakMap<object, KeyAccess>();

/** Called once by the Authority constructor; a second grant for the same object is refused. */
export function grantKeys(ca: object, access: KeyAccess): void {
  if (ACCESS.has(ca)) throw new Error('internal error: CA keys granted twice');
  ACCESS.set(ca, access);
}

function accessOf(ca: object): KeyAccess {
  const access = ACCESS.get(ca);
  if (!access) throw new MtlsError('CA_NOT_FOUND', 'not an Authority opened with Authority.open', { hint: 'open the CA folder with Authority.open(dir)' });
  return access;
}

/**
 * The intermediate's signer (certificates, the intermediate's CRL).
 *
 * @throws MtlsError `CA_KEY_MISSING`, `CA_KEY_LOCKED` (encrypted without a passphrase, or a
 *   wrong one), `KEY_INVALID`
 */
export function intermediateSigner(ca: object): Promise<Signer> {
  return accessOf(ca).intermediate();
}

/**
 * The root's signer (the root's CRL). Read anew at each call, not kept.
 *
 * @throws MtlsError `CA_KEY_MISSING` when private/root.key is not there, else as {@link intermediateSigner}
 */
export function rootSigner(ca: object): Promise<Signer> {
  return accessOf(ca).root();
}
