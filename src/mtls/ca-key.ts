/**
 * What identifies a CA for revocation: its subject name AND its public key, never the name
 * alone. Anyone can run `mcp-mtls ca init --name "acme.test MCP CA"` and get CAs whose names
 * equal acme's; only acme holds acme's keys. So CRLs are filed under the key that verifies
 * their signature, a leaf's revocation is looked up under the key that verifies the leaf, and
 * an intermediate's under the key of the root that verifies it (revocation.ts, authenticate.ts).
 */
import crypto from 'node:crypto';
import { parseCertificate } from '../x509/certificate.js';
import { sha256Hex } from '../util/sha256.js';

/**
 * The key a CA's revocation data is filed under: its subject name (DER, hex), "/", the SHA-256
 * of its SubjectPublicKeyInfo (hex). A CA certificate re-issued for the same key and name (a
 * renewed intermediate) is the same CA; a same-named CA with another key is another CA.
 */
export function caKeyOf(der: Uint8Array): string {
  const parsed = parseCertificate(Buffer.from(der));
  return `${parsed.subjectName.toString('hex')}/${sha256Hex(parsed.spki)}`;
}

/** The subject name (DER, hex) part of a CA key. */
export const nameOfCaKey = (caKey: string): string => caKey.slice(0, caKey.indexOf('/'));

/**
 * The CA names that more than one key carries among `caCertificates` (subject, for people, and
 * how many keys): worth a warning, since nobody but the holder of one of those keys can tell
 * them apart by name. Revocation stays per key, so they do not mix.
 */
export function namesakes(caCertificates: readonly Uint8Array[]): { readonly nameHex: string; readonly subject: string; readonly keys: number }[] {
  const byName = new Map<string, { subject: string; keys: Set<string> }>();
  for (const der of caCertificates) {
    const key = caKeyOf(der);
    const nameHex = nameOfCaKey(key);
    const entry = byName.get(nameHex) ?? { subject: new crypto.X509Certificate(der).subject.replaceAll('\n', ', '), keys: new Set<string>() };
    entry.keys.add(key);
    byName.set(nameHex, entry);
  }
  return [...byName].filter(([, e]) => e.keys.size > 1).map(([nameHex, e]) => ({ nameHex, subject: e.subject, keys: e.keys.size }));
}
