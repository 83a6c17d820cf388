/**
 * SHA-256 in hex, the fingerprint of certificates and the key of caches keyed by bytes. One-shot
 * `crypto.hash` (Node >= 20.12) where present: it makes no Hash object, which `createHash` does,
 * and a connection's fingerprint is on every handshake's path.
 */
import crypto from 'node:crypto';

const oneShot = (crypto as { hash?: (algorithm: string, data: crypto.BinaryLike, encoding: 'hex') => string }).hash;

export const sha256Hex: (data: crypto.BinaryLike) => string = oneShot
  ? (data) => oneShot('sha256', data, 'hex')
  : (data) => crypto.createHash('sha256').update(data).digest('hex');
