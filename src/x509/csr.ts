/**
 * PKCS#10 certificate signing requests (RFC 2986): writing one for a key the client keeps,
 * and reading one on the CA side, where only the public key is taken and the signature
 * (proof of possession) is checked. The CA never uses a name or extension the CSR asks for.
 */
import crypto from 'node:crypto';
import { MtlsError } from '../errors.js';
import {
  bitStringDer,
  bytesOf,
  children,
  contentOf,
  decodeOid,
  expectTag,
  integerHex,
  readWhole,
  seq,
  smallIntDer,
  TAG,
  tlv,
} from './der.js';
import { distinguishedName } from './extensions.js';
import { commonNameOf } from './certificate.js';
import { createSigner, hashForSignatureAlgorithm, importSpki, keyTypeOf, type GeneratedKey, type KeyType } from './keys.js';
import { looksLikePem, pemDecodeAll } from './pem.js';

/** A CSR for `key` with subject CN=commonName and no attributes. */
export function createCsr(key: GeneratedKey, commonName: string): Buffer {
  const info = seq(smallIntDer(0), distinguishedName(commonName), key.spki, tlv(0xa0));
  const signer = createSigner(crypto.createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' }));
  return seq(info, signer.algorithmDer, bitStringDer(signer.sign(info)));
}

export interface VerifiedCsr {
  readonly spki: Buffer;
  readonly keyType: KeyType;
  /** the CN the requester put in, for messages only */
  readonly commonName: string | undefined;
}

function bad(message: string, cause?: unknown): MtlsError {
  return new MtlsError('CSR_INVALID', message, {
    cause,
    hint: 'create the request with `mcp-mtls csr --user ID --out DIR` (or openssl req -new) and send the .csr file',
  });
}

/** Reads a CSR from PEM or DER and verifies its self-signature. */
export function verifyCsr(data: Uint8Array): VerifiedCsr {
  let der: Buffer = Buffer.from(data);
  if (looksLikePem(data)) {
    const block = pemDecodeAll(Buffer.from(data).toString('utf8')).find((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
    if (!block) throw bad('no "CERTIFICATE REQUEST" PEM block in the file');
    der = block.der;
  }
  let info;
  let spkiBytes: Buffer;
  let algorithm: string;
  let signature: Buffer;
  let commonName: string | undefined;
  try {
    const [infoT, algT, sigT, ...rest] = children(der, readWhole(der, TAG.SEQUENCE));
    if (rest.length) throw new Error('extra fields');
    info = expectTag(infoT, TAG.SEQUENCE, 'certificationRequestInfo');
    const [versionT, subjectT, spkiT] = children(der, info);
    if (integerHex(contentOf(der, expectTag(versionT, TAG.INTEGER, 'version'))) !== '00') throw new Error('version is not 0');
    commonName = commonNameOf(bytesOf(der, expectTag(subjectT, TAG.SEQUENCE, 'subject')));
    spkiBytes = Buffer.from(bytesOf(der, expectTag(spkiT, TAG.SEQUENCE, 'subjectPKInfo')));
    algorithm = decodeOid(contentOf(der, expectTag(children(der, expectTag(algT, TAG.SEQUENCE, 'signatureAlgorithm'))[0], TAG.OID, 'algorithm')));
    signature = contentOf(der, expectTag(sigT, TAG.BIT_STRING, 'signature')).subarray(1);
  } catch (e) {
    throw bad(`the file is not a valid certificate signing request: ${(e as Error).message}`, e);
  }
  let publicKey;
  try {
    publicKey = importSpki(spkiBytes);
  } catch (e) {
    throw bad('the CSR holds a public key that cannot be read', e);
  }
  const keyType = keyTypeOf(publicKey);
  const hash = hashForSignatureAlgorithm(algorithm);
  let ok = false;
  try {
    ok = crypto.verify(hash, bytesOf(der, info), publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new MtlsError('CSR_BAD_SIGNATURE', 'the CSR signature does not verify: the request was altered or not signed by its key', {
      hint: 'make a new request with `mcp-mtls csr`',
    });
  }
  return { spki: spkiBytes, keyType, commonName };
}
