/**
 * Key generation, key import and signing for every key type the CA supports.
 *
 * EC keys are generated through ECDH and encoded to PKCS#8/SPKI here: OpenSSL's
 * `generateKeyPairSync` plus DER export costs ~210 µs per P-256 key, ECDH ~40 µs, and
 * issuance throughput (thousands of short-lived certificates) is dominated by it.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { MtlsError } from '../errors.js';
import {
  bitStringDer,
  children,
  contentOf,
  decodeOid,
  expectTag,
  explicitDer,
  nullDer,
  octetDer,
  oidDer,
  readWhole,
  seq,
  smallIntDer,
  TAG,
} from './der.js';
import { OID } from './oids.js';
import { pemEncode } from './pem.js';

export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'ed25519'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export function parseKeyType(s: string): KeyType {
  if ((KEY_TYPES as readonly string[]).includes(s)) return s as KeyType;
  throw new MtlsError('BAD_KEY_TYPE', `unknown key type "${s}"`, {
    hint: `use one of: ${KEY_TYPES.join(', ')}`,
  });
}

/** A freshly generated key pair, already encoded. */
export interface GeneratedKey {
  readonly type: KeyType;
  /** PKCS#8 PrivateKeyInfo, unencrypted DER */
  readonly pkcs8: Buffer;
  /** SubjectPublicKeyInfo DER */
  readonly spki: Buffer;
}

const EC_CURVES = {
  'ec-p256': { curve: 'prime256v1', oid: OID.prime256v1, size: 32 },
  'ec-p384': { curve: 'secp384r1', oid: OID.secp384r1, size: 48 },
} as const;

function ecAlgorithm(curveOid: string): Buffer {
  return seq(oidDer(OID.ecPublicKey), oidDer(curveOid));
}

export function generateKey(type: KeyType): GeneratedKey {
  if (type === 'ec-p256' || type === 'ec-p384') {
    const { curve, oid, size } = EC_CURVES[type];
    const ecdh = crypto.createECDH(curve);
    const point = ecdh.generateKeys();
    // getPrivateKey() drops leading zero bytes; RFC 5915 wants the fixed curve size.
    const raw = ecdh.getPrivateKey();
    const priv = raw.length === size ? raw : Buffer.concat([Buffer.alloc(size - raw.length), raw]);
    const algorithm = ecAlgorithm(oid);
    const ecPrivateKey = seq(smallIntDer(1), octetDer(priv), explicitDer(1, bitStringDer(point)));
    return {
      type,
      pkcs8: seq(smallIntDer(0), algorithm, octetDer(ecPrivateKey)),
      spki: seq(algorithm, bitStringDer(point)),
    };
  }
  const pair =
    type === 'ed25519'
      ? crypto.generateKeyPairSync('ed25519')
      : crypto.generateKeyPairSync('rsa', { modulusLength: type === 'rsa-2048' ? 2048 : 3072 });
  return {
    type,
    pkcs8: pair.privateKey.export({ format: 'der', type: 'pkcs8' }),
    spki: pair.publicKey.export({ format: 'der', type: 'spki' }),
  };
}

/** The key type of a public or private key, or an error naming what is unsupported. */
export function keyTypeOf(key: KeyObject): KeyType {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (details.namedCurve === 'prime256v1') return 'ec-p256';
      if (details.namedCurve === 'secp384r1') return 'ec-p384';
      break;
    case 'rsa':
      if (details.modulusLength === 2048) return 'rsa-2048';
      if (details.modulusLength === 3072) return 'rsa-3072';
      break;
    case 'ed25519':
      return 'ed25519';
  }
  const size = details.namedCurve ?? (details.modulusLength ? `${details.modulusLength} bits` : '');
  throw new MtlsError('KEY_INVALID', `unsupported key: ${key.asymmetricKeyType ?? 'unknown'}${size ? ` (${size})` : ''}`, {
    hint: `supported key types: ${KEY_TYPES.join(', ')}`,
  });
}

/**
 * The key type of a SubjectPublicKeyInfo, read from its DER (algorithm, curve, modulus
 * size, point length). Used on the issuance path instead of crypto.createPublicKey, which
 * costs more than signing the certificate; keys from CSRs were already loaded and checked
 * by verifyCsr.
 */
export function keyTypeOfSpki(spki: Uint8Array): KeyType {
  const unsupported = (what: string) =>
    new MtlsError('KEY_INVALID', `unsupported public key: ${what}`, { hint: `supported key types: ${KEY_TYPES.join(', ')}` });
  const outer = readWhole(spki, TAG.SEQUENCE);
  const [alg, bits] = children(spki, outer);
  const algItems = children(spki, expectTag(alg, TAG.SEQUENCE, 'SPKI algorithm'));
  const oid = decodeOid(contentOf(spki, expectTag(algItems[0], TAG.OID, 'algorithm OID')));
  const key = contentOf(spki, expectTag(bits, TAG.BIT_STRING, 'SPKI key'));
  if (key[0] !== 0) throw unsupported('unused bits in the key');
  const point = key.subarray(1);
  if (oid === OID.ed25519) {
    if (point.length !== 32 || algItems.length !== 1) throw unsupported('malformed Ed25519 key');
    return 'ed25519';
  }
  if (oid === OID.ecPublicKey) {
    const curve = decodeOid(contentOf(spki, expectTag(algItems[1], TAG.OID, 'named curve')));
    if (curve === OID.prime256v1 && point.length === 65 && point[0] === 4) return 'ec-p256';
    if (curve === OID.secp384r1 && point.length === 97 && point[0] === 4) return 'ec-p384';
    throw unsupported(`EC curve ${curve} or a compressed point`);
  }
  if (oid === OID.rsaEncryption) {
    const [modulus] = children(point, readWhole(point, TAG.SEQUENCE));
    const m = contentOf(point, expectTag(modulus, TAG.INTEGER, 'RSA modulus'));
    const mag = m[0] === 0 ? m.subarray(1) : m;
    const bitsLen = mag.length === 0 ? 0 : (mag.length - 1) * 8 + (32 - Math.clz32(mag[0] as number));
    if (bitsLen === 2048) return 'rsa-2048';
    if (bitsLen === 3072) return 'rsa-3072';
    throw unsupported(`RSA key of ${bitsLen} bits`);
  }
  throw unsupported(`algorithm ${oid}`);
}

export const isRsa = (t: KeyType): boolean => t === 'rsa-2048' || t === 'rsa-3072';

/** How a key of this type signs: the AlgorithmIdentifier to write and the hash to use. */
interface SignatureScheme {
  readonly algorithmDer: Buffer;
  readonly hash: string | null;
}

const SCHEMES: Record<KeyType, SignatureScheme> = {
  'ec-p256': { algorithmDer: seq(oidDer(OID.ecdsaWithSha256)), hash: 'sha256' },
  'ec-p384': { algorithmDer: seq(oidDer(OID.ecdsaWithSha384)), hash: 'sha384' },
  'rsa-2048': { algorithmDer: seq(oidDer(OID.sha256WithRsa), nullDer()), hash: 'sha256' },
  'rsa-3072': { algorithmDer: seq(oidDer(OID.sha256WithRsa), nullDer()), hash: 'sha256' },
  ed25519: { algorithmDer: seq(oidDer(OID.ed25519)), hash: null },
};

/** Signs with one private key; built once per CA key and reused for every issuance. */
export interface Signer {
  readonly keyType: KeyType;
  /** AlgorithmIdentifier DER for the signature (certificate, CRL or CSR) */
  readonly algorithmDer: Buffer;
  sign(data: Uint8Array): Buffer;
}

export function createSigner(privateKey: KeyObject): Signer {
  const keyType = keyTypeOf(privateKey);
  const { algorithmDer, hash } = SCHEMES[keyType];
  return { keyType, algorithmDer, sign: (data) => crypto.sign(hash, data, privateKey) };
}

/** Maps a signature AlgorithmIdentifier to the hash crypto.verify needs, or refuses it. */
export function hashForSignatureAlgorithm(algorithmOid: string): string | null {
  switch (algorithmOid) {
    case OID.ecdsaWithSha256:
    case OID.sha256WithRsa:
      return 'sha256';
    case OID.ecdsaWithSha384:
      return 'sha384';
    case OID.ed25519:
      return null;
  }
  throw new MtlsError('CSR_INVALID', `unsupported signature algorithm ${algorithmOid}`, {
    hint: 'sign with ECDSA (P-256/P-384), RSA PKCS#1 v1.5 with SHA-256, or Ed25519',
  });
}

/** The subjectPublicKey BIT STRING content (without the unused-bits octet) of an SPKI. */
export function subjectPublicKeyBits(spki: Uint8Array): Buffer {
  const outer = readWhole(spki, TAG.SEQUENCE);
  const [alg, bits] = children(spki, outer);
  expectTag(alg, TAG.SEQUENCE, 'SPKI algorithm');
  const b = contentOf(spki, expectTag(bits, TAG.BIT_STRING, 'SPKI key'));
  return b.subarray(1);
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Uint8Array): Buffer {
  return crypto.createHash('sha1').update(subjectPublicKeyBits(spki)).digest();
}

/** The algorithm OID of an SPKI (for messages and checks). */
export function spkiAlgorithm(spki: Uint8Array): string {
  const outer = readWhole(spki, TAG.SEQUENCE);
  const alg = expectTag(children(spki, outer)[0], TAG.SEQUENCE, 'SPKI algorithm');
  return decodeOid(contentOf(spki, expectTag(children(spki, alg)[0], TAG.OID, 'algorithm OID')));
}

/**
 * The DER header of an EC SubjectPublicKeyInfo with an uncompressed point, per curve: what
 * comes before the point's 0x04 in `seq(ecAlgorithm(oid), bitStringDer(point))`.
 */
const EC_SPKI_HEADERS = (Object.keys(EC_CURVES) as (keyof typeof EC_CURVES)[]).map((type) => {
  const { oid, size } = EC_CURVES[type];
  const spki = seq(ecAlgorithm(oid), bitStringDer(Buffer.concat([Buffer.from([4]), Buffer.alloc(2 * size)])));
  return { type, size, header: spki.subarray(0, spki.length - 1 - 2 * size) };
});

/**
 * The public key of a SubjectPublicKeyInfo, as crypto.createPublicKey reads it from DER (an
 * invalid key or an EC point off its curve throws Node's error), at about half the cost for
 * P-256 and P-384: OpenSSL 3's DER decoder costs more than verifying a signature (~480 against
 * ~200 µs here), so an SPKI that is byte for byte the one encoding of an uncompressed EC key
 * (no parameters but the named curve, nothing after the point) is imported from its
 * coordinates as a JWK, which OpenSSL checks to be on the curve all the same. Anything else
 * goes to the DER decoder.
 */
export function importSpki(spki: Uint8Array): KeyObject {
  const der = Buffer.isBuffer(spki) ? spki : Buffer.from(spki);
  for (const { type, size, header } of EC_SPKI_HEADERS) {
    if (der.length !== header.length + 1 + 2 * size || der[header.length] !== 4 || !der.subarray(0, header.length).equals(header)) continue;
    const x = der.subarray(header.length + 1, header.length + 1 + size).toString('base64url');
    const y = der.subarray(header.length + 1 + size).toString('base64url');
    return crypto.createPublicKey({ key: { kty: 'EC', crv: type === 'ec-p256' ? 'P-256' : 'P-384', x, y }, format: 'jwk' });
  }
  return crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/** {@link importSpki}, its failure as KEY_INVALID. */
export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  try {
    return importSpki(spki);
  } catch (cause) {
    throw new MtlsError('KEY_INVALID', 'the public key cannot be read', { cause });
  }
}

export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  return pub.export({ format: 'der', type: 'spki' });
}

/**
 * PEM text of a private key: PKCS#8, or with a passphrase an EncryptedPrivateKeyInfo
 * (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC). Node's own export fixes PBKDF2 at 2,048
 * iterations, far below current guidance for keys at rest (OWASP: 600,000 for
 * PBKDF2-HMAC-SHA256), so the CA's keys are encrypted here; OpenSSL and Node read them.
 */
export function privateKeyPem(pkcs8: Uint8Array, passphrase?: string, iterations = 600_000): string {
  if (passphrase === undefined) return pemEncode('PRIVATE KEY', pkcs8);
  const salt = crypto.randomBytes(16);
  const iv = crypto.randomBytes(16);
  const key = crypto.pbkdf2Sync(Buffer.from(passphrase, 'utf8'), salt, iterations, 32, 'sha256');
  const cipher = crypto.createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  const algorithm = seq(
    oidDer('1.2.840.113549.1.5.13'), // PBES2
    seq(
      seq(oidDer('1.2.840.113549.1.5.12'), seq(octetDer(salt), smallIntDer(iterations), seq(oidDer('1.2.840.113549.2.9'), nullDer()))), // PBKDF2, hmacWithSHA256
      seq(oidDer('2.16.840.1.101.3.4.1.42'), octetDer(iv)), // aes-256-cbc
    ),
  );
  return pemEncode('ENCRYPTED PRIVATE KEY', seq(algorithm, octetDer(encrypted)));
}
