/**
 * The key a renewal asks the CA to certify. With rekey, a new key and a CSR for it are made
 * once per certificate being renewed and kept across that renewal's retries: a certificate
 * renews once at the CA, and a retry after a lost answer gets that same certificate again only
 * for the same key. A new certificate in use makes the next renewal generate again. The key
 * never leaves the machine; only the CSR is sent.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { Bundle } from '../bundle/load.js';
import { commonNameOf, parseCertificate } from '../x509/certificate.js';
import { createCsr } from '../x509/csr.js';
import { generateKey, keyTypeOf } from '../x509/keys.js';

/** The key the renewed certificate will hold, and the CSR to send (none: the CA certifies the current public key again). */
export interface RenewalKey {
  readonly key: KeyObject;
  readonly csr: Buffer | undefined;
}

/** Hands out the key for each renewal of a bundle (see the module comment). */
export interface RenewalKeys {
  /** the key and CSR for renewing `current` */
  for(current: Bundle): RenewalKey;
}

/** `rekey` false: the current key every time, without a CSR. */
export function createRenewalKeys(rekey: boolean): RenewalKeys {
  let pending: { readonly forLeaf: Buffer; readonly key: KeyObject; readonly csr: Buffer } | undefined;
  return {
    for(current) {
      if (!rekey) return { key: current.key, csr: undefined };
      if (!pending || !pending.forLeaf.equals(current.chain[0]!)) {
        const generated = generateKey(keyTypeOf(current.key));
        pending = {
          forLeaf: current.chain[0]!,
          key: crypto.createPrivateKey({ key: generated.pkcs8, format: 'der', type: 'pkcs8' }),
          csr: createCsr(generated, current.identity?.id ?? commonNameOf(parseCertificate(current.chain[0] as Buffer).subjectName) ?? 'mcp-mtls client'),
        };
      }
      return { key: pending.key, csr: pending.csr };
    },
  };
}
