/**
 * PKCS#12 (RFC 7292) files as current OpenSSL writes them: certificates in a PBES2
 * (PBKDF2-HMAC-SHA256, AES-256-CBC) encrypted SafeContents, the key in a
 * pkcs8ShroudedKeyBag (the same PBES2), and an HMAC-SHA256 MAC over the whole.
 *
 * Written here rather than with node-forge: forge cannot read EC keys or certificates and
 * its PKCS#12 writer is RSA-only, while this project issues EC, RSA and Ed25519 keys. The
 * pieces are standard and small; each is checked against `openssl pkcs12` in the tests.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { MtlsError } from '../errors.js';
import {
  bytesOf,
  children,
  contentOf,
  decodeOid,
  expectTag,
  explicitDer,
  implicitPrimitiveDer,
  integerHex,
  nullDer,
  octetDer,
  oidDer,
  readWhole,
  seq,
  setOf,
  smallIntDer,
  TAG,
  tlv,
  type Tlv,
} from './der.js';

const P12 = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** OpenSSL 3's defaults for `pkcs12 -export`. */
const ITERATIONS = 2048;

export interface Pkcs12Contents {
  /** leaf first, then the rest of the chain as stored */
  readonly certificates: Buffer[];
  readonly privateKey: KeyObject;
}

// ------------------------------------------------------------------ writing

function pbes2Params(salt: Buffer, iv: Buffer, iterations: number): Buffer {
  return seq(
    oidDer(P12.pbes2),
    seq(seq(oidDer(P12.pbkdf2), seq(octetDer(salt), smallIntDer(iterations), seq(oidDer(P12.hmacWithSha256), nullDer()))), seq(oidDer(P12.aes256Cbc), octetDer(iv))),
  );
}

function pbes2Encrypt(password: string, plaintext: Buffer): { algorithm: Buffer; ciphertext: Buffer } {
  const salt = crypto.randomBytes(16);
  const iv = crypto.randomBytes(16);
  const key = crypto.pbkdf2Sync(Buffer.from(password, 'utf8'), salt, ITERATIONS, 32, 'sha256');
  const cipher = crypto.createCipheriv('aes-256-cbc', key, iv);
  return { algorithm: pbes2Params(salt, iv, ITERATIONS), ciphertext: Buffer.concat([cipher.update(plaintext), cipher.final()]) };
}

/** RFC 7292 appendix B.2 key derivation with SHA-256 (u = 32, v = 64), for the MAC key (ID 3). */
export function pkcs12Kdf(password: string, salt: Buffer, id: number, iterations: number, length: number): Buffer {
  const u = 32;
  const v = 64;
  const pass = Buffer.from(`${password}\0`, 'utf16le').swap16(); // BMPString with a terminating NUL
  const fill = (b: Buffer) => (b.length === 0 ? Buffer.alloc(0) : Buffer.alloc(v * Math.ceil(b.length / v), b));
  const I = Buffer.concat([fill(salt), fill(pass)]);
  const D = Buffer.alloc(v, id);
  const out: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let A = crypto.createHash('sha256').update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = crypto.createHash('sha256').update(A).digest();
    out.push(A);
    const B = Buffer.alloc(v, A);
    for (let j = 0; j < I.length; j += v) {
      // I_j = (I_j + B + 1) mod 2^(8v)
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = (I[j + k] as number) + (B[k] as number) + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, length);
}

const bmpString = (s: string) => tlv(0x1e, Buffer.from(s, 'utf16le').swap16());
const attribute = (oid: string, value: Buffer) => seq(oidDer(oid), setOf([value]));

/**
 * A PKCS#12 file holding the key and the chain (leaf first). The leaf and key carry the
 * same localKeyId (SHA-1 of the leaf), which is how readers pair them.
 */
export function writePkcs12(p: { privateKey: KeyObject; certificates: readonly Buffer[]; password: string; friendlyName?: string }): Buffer {
  if (!p.password) throw new MtlsError('BAD_ARGUMENT', 'a PKCS#12 file needs a non-empty password');
  const leaf = p.certificates[0];
  if (!leaf) throw new MtlsError('BAD_ARGUMENT', 'no certificate to put in the PKCS#12 file');
  const localKeyId = crypto.createHash('sha1').update(leaf).digest();
  const leafAttrs = setOf([attribute(P12.localKeyId, octetDer(localKeyId)), ...(p.friendlyName ? [attribute(P12.friendlyName, bmpString(p.friendlyName))] : [])]);
  const certBags = p.certificates.map((der, i) =>
    seq(oidDer(P12.certBag), explicitDer(0, seq(oidDer(P12.x509Certificate), explicitDer(0, octetDer(der)))), ...(i === 0 ? [leafAttrs] : [])),
  );
  const certs = pbes2Encrypt(p.password, seq(...certBags));
  const encryptedData = seq(
    oidDer(P12.encryptedData),
    explicitDer(0, seq(smallIntDer(0), seq(oidDer(P12.data), certs.algorithm, implicitPrimitiveDer(0, certs.ciphertext)))),
  );
  const shrouded = p.privateKey.export({ format: 'der', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: p.password });
  const keyBag = seq(oidDer(P12.pkcs8ShroudedKeyBag), explicitDer(0, shrouded), leafAttrs);
  const keyData = seq(oidDer(P12.data), explicitDer(0, octetDer(seq(keyBag))));
  const authSafe = seq(encryptedData, keyData);
  const macSalt = crypto.randomBytes(16);
  const macKey = pkcs12Kdf(p.password, macSalt, 3, ITERATIONS, 32);
  const mac = crypto.createHmac('sha256', macKey).update(authSafe).digest();
  return seq(
    smallIntDer(3),
    seq(oidDer(P12.data), explicitDer(0, octetDer(authSafe))),
    seq(seq(seq(oidDer(P12.sha256), nullDer()), octetDer(mac)), octetDer(macSalt), smallIntDer(ITERATIONS)),
  );
}

// ------------------------------------------------------------------ reading

function invalid(what: string, cause?: unknown): MtlsError {
  return new MtlsError('BUNDLE_INVALID', `not a usable PKCS#12 file: ${what}`, { cause, hint: 'export it again (`mcp-mtls bundle --format p12`, or openssl pkcs12 -export)' });
}

function wrongPassword(): MtlsError {
  return new MtlsError('BUNDLE_PASSWORD', 'wrong password for the PKCS#12 file', { hint: 'check --passphrase-file or MCP_MTLS_BUNDLE_PASSPHRASE' });
}

const oidOf = (buf: Buffer, t: Tlv | undefined, what: string) => decodeOid(contentOf(buf, expectTag(t, TAG.OID, what)));

function pbes2Decrypt(buf: Buffer, alg: Tlv, ciphertext: Buffer, password: string): Buffer {
  const [oidT, paramsT] = children(buf, alg);
  const scheme = oidOf(buf, oidT, 'encryption algorithm');
  if (scheme !== P12.pbes2) {
    throw new MtlsError('BUNDLE_INVALID', `the PKCS#12 file uses legacy encryption (${scheme})`, {
      hint: 're-export it with current OpenSSL defaults: openssl pkcs12 -in OLD -nodes | openssl pkcs12 -export -out NEW',
    });
  }
  const [kdfT, encT] = children(buf, expectTag(paramsT, TAG.SEQUENCE, 'PBES2 params'));
  const [kdfOid, kdfParams] = children(buf, expectTag(kdfT, TAG.SEQUENCE, 'kdf'));
  if (oidOf(buf, kdfOid, 'kdf') !== P12.pbkdf2) throw invalid('unsupported key derivation');
  const kp = children(buf, expectTag(kdfParams, TAG.SEQUENCE, 'PBKDF2 params'));
  const salt = contentOf(buf, expectTag(kp[0], TAG.OCTET_STRING, 'salt'));
  const iterations = parseInt(integerHex(contentOf(buf, expectTag(kp[1], TAG.INTEGER, 'iterations'))), 16);
  if (!(iterations >= 1 && iterations <= 10_000_000)) throw invalid('unreasonable PBKDF2 iteration count');
  let hash = 'sha1';
  for (const extra of kp.slice(2)) {
    if (extra.tag === TAG.SEQUENCE) {
      const prf = oidOf(buf, children(buf, extra)[0], 'prf');
      hash = prf === P12.hmacWithSha256 ? 'sha256' : prf === '1.2.840.113549.2.11' ? 'sha512' : prf === '1.2.840.113549.2.7' ? 'sha1' : '';
      if (!hash) throw invalid(`unsupported PBKDF2 PRF ${prf}`);
    }
  }
  const [encOid, ivT] = children(buf, expectTag(encT, TAG.SEQUENCE, 'encryption scheme'));
  if (oidOf(buf, encOid, 'cipher') !== P12.aes256Cbc) throw invalid('unsupported cipher (expected AES-256-CBC)');
  const iv = contentOf(buf, expectTag(ivT, TAG.OCTET_STRING, 'iv'));
  const key = crypto.pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, hash);
  try {
    const d = crypto.createDecipheriv('aes-256-cbc', key, iv);
    return Buffer.concat([d.update(ciphertext), d.final()]);
  } catch {
    throw wrongPassword();
  }
}

/** Reads a PKCS#12 file: verifies the MAC (wrong password), decrypts certificates and the key. */
export function readPkcs12(der: Uint8Array, password: string): Pkcs12Contents {
  const buf = Buffer.from(der);
  let authSafe: Buffer;
  let macParts: Tlv[] | undefined;
  try {
    const [versionT, authT, macT] = children(buf, readWhole(buf, TAG.SEQUENCE));
    if (integerHex(contentOf(buf, expectTag(versionT, TAG.INTEGER, 'version'))) !== '03') throw new Error('version is not 3');
    const [ctype, content] = children(buf, expectTag(authT, TAG.SEQUENCE, 'authSafe'));
    if (oidOf(buf, ctype, 'content type') !== P12.data) throw new Error('authSafe is not data (public-key integrity mode is not supported)');
    authSafe = contentOf(buf, expectTag(children(buf, expectTag(content, 0xa0, 'content'))[0], TAG.OCTET_STRING, 'authSafe content'));
    macParts = macT ? children(buf, expectTag(macT, TAG.SEQUENCE, 'macData')) : undefined;
  } catch (e) {
    if (e instanceof MtlsError && e.code === 'BUNDLE_INVALID') throw e;
    throw invalid((e as Error).message, e);
  }
  if (!macParts) throw invalid('no MAC: the file cannot be checked for tampering');
  // MAC first: a wrong password is reported as such, before any decryption
  const [digestInfo, saltT, iterT] = macParts;
  const [digAlg, digestT] = children(buf, expectTag(digestInfo, TAG.SEQUENCE, 'DigestInfo'));
  const macHash = oidOf(buf, children(buf, expectTag(digAlg, TAG.SEQUENCE, 'digest algorithm'))[0], 'digest');
  const macSalt = contentOf(buf, expectTag(saltT, TAG.OCTET_STRING, 'macSalt'));
  const macIter = iterT ? parseInt(integerHex(contentOf(buf, expectTag(iterT, TAG.INTEGER, 'iterations'))), 16) : 1;
  if (macHash !== P12.sha256) throw invalid(`MAC digest ${macHash} is not supported (expected SHA-256)`);
  if (!(macIter >= 1 && macIter <= 10_000_000)) throw invalid('unreasonable MAC iteration count');
  const expected = crypto.createHmac('sha256', pkcs12Kdf(password, macSalt, 3, macIter, 32)).update(authSafe).digest();
  const actual = contentOf(buf, expectTag(digestT, TAG.OCTET_STRING, 'mac'));
  if (expected.length !== actual.length || !crypto.timingSafeEqual(expected, actual)) throw wrongPassword();

  const certificates: { der: Buffer; localKeyId?: string }[] = [];
  let key: { der: Buffer; localKeyId?: string } | undefined;
  try {
    for (const ci of children(authSafe, readWhole(authSafe, TAG.SEQUENCE))) {
      const [typeT, contentT] = children(authSafe, ci);
      const type = oidOf(authSafe, typeT, 'ContentInfo type');
      const inner = children(authSafe, expectTag(contentT, 0xa0, 'content'))[0];
      let safeContents: Buffer;
      if (type === P12.data) {
        safeContents = contentOf(authSafe, expectTag(inner, TAG.OCTET_STRING, 'data'));
      } else if (type === P12.encryptedData) {
        const [, eci] = children(authSafe, expectTag(inner, TAG.SEQUENCE, 'EncryptedData'));
        const [, alg, enc] = children(authSafe, expectTag(eci, TAG.SEQUENCE, 'EncryptedContentInfo'));
        if (!enc || (enc.tag !== 0x80 && enc.tag !== 0xa0)) throw new Error('no encrypted content');
        const ciphertext = enc.tag === 0x80 ? contentOf(authSafe, enc) : Buffer.concat(children(authSafe, enc).map((c) => contentOf(authSafe, c)));
        safeContents = pbes2Decrypt(authSafe, expectTag(alg, TAG.SEQUENCE, 'algorithm'), ciphertext, password);
      } else {
        continue;
      }
      for (const bag of children(safeContents, readWhole(safeContents, TAG.SEQUENCE))) {
        const [bagIdT, valueT, attrsT] = children(safeContents, bag);
        const bagId = oidOf(safeContents, bagIdT, 'bagId');
        const value = children(safeContents, expectTag(valueT, 0xa0, 'bagValue'))[0] as Tlv;
        let localKeyId: string | undefined;
        if (attrsT) {
          for (const attr of children(safeContents, attrsT)) {
            const [aid, vals] = children(safeContents, attr);
            if (oidOf(safeContents, aid, 'attribute') === P12.localKeyId) localKeyId = contentOf(safeContents, children(safeContents, vals!)[0]!).toString('hex');
          }
        }
        if (bagId === P12.certBag) {
          const [certType, certValue] = children(safeContents, value);
          if (oidOf(safeContents, certType, 'certId') !== P12.x509Certificate) continue;
          const certDer = contentOf(safeContents, expectTag(children(safeContents, expectTag(certValue, 0xa0, 'certValue'))[0], TAG.OCTET_STRING, 'certificate'));
          certificates.push({ der: Buffer.from(certDer), ...(localKeyId ? { localKeyId } : {}) });
        } else if (bagId === P12.pkcs8ShroudedKeyBag) {
          if (key) throw new Error('more than one private key');
          key = { der: Buffer.from(bytesOf(safeContents, value)), ...(localKeyId ? { localKeyId } : {}) };
        }
      }
    }
  } catch (e) {
    if (e instanceof MtlsError) throw e;
    throw invalid((e as Error).message, e);
  }
  if (!key) throw invalid('no private key in the file');
  let privateKey: KeyObject;
  try {
    privateKey = crypto.createPrivateKey({ key: key.der, format: 'der', type: 'pkcs8', passphrase: password });
  } catch (e) {
    throw invalid('the private key cannot be decrypted or read', e);
  }
  if (certificates.length === 0) throw invalid('no certificate in the file');
  // the leaf is the certificate paired with the key; the others follow in file order
  const leafIndex = Math.max(0, certificates.findIndex((c) => key?.localKeyId !== undefined && c.localKeyId === key.localKeyId));
  const ordered = [certificates[leafIndex] as { der: Buffer }, ...certificates.filter((_, i) => i !== leafIndex)];
  return { certificates: ordered.map((c) => c.der), privateKey };
}
