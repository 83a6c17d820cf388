/**
 * Certificates made in memory with the CA's own profiles (src/ca/profiles.ts), for tests that
 * need a chain shaped for the case (a CA the server was not given, an intermediate that ends
 * before its leaf, an attacker's self-made CA) without a CA folder or the CLI. Every certificate
 * is valid from an hour before `start`; its end is given in hours after `start`, so that a test
 * moving its clock past one end knows which certificate it expired. Keys are EC P-256.
 */
import crypto from 'node:crypto';
import { clientFields, intermediateFields, rootFields, type IssuerInfo } from '../../src/ca/profiles.js';
import { normalizeClaims } from '../../src/identity/encode.js';
import { randomSerial, signCertificate } from '../../src/x509/certificate.js';
import { createSigner, generateKey, keyIdentifier, type GeneratedKey } from '../../src/x509/keys.js';

export const HOUR = 3_600_000;

/** A CA certificate and what signing under it needs. */
export interface MemoryCa {
  readonly der: Buffer;
  readonly key: GeneratedKey;
  readonly issuer: IssuerInfo;
}

const signerOf = (k: GeneratedKey) => createSigner(crypto.createPrivateKey({ key: k.pkcs8, format: 'der', type: 'pkcs8' }));

export function memoryCertificates(start: number) {
  const validity = (hours: number) => ({ serial: randomSerial(), notBefore: new Date(start - HOUR), notAfter: new Date(start + hours * HOUR) });
  const ca = (key: GeneratedKey, fields: ReturnType<typeof rootFields>, signer: GeneratedKey): MemoryCa => ({
    der: signCertificate(fields, signerOf(signer)),
    key,
    issuer: { subjectName: fields.subjectName, keyId: keyIdentifier(key.spki), notAfter: fields.notAfter },
  });
  return {
    /** a self-signed root; `organization` tells apart two roots of the same name */
    root(name: string, hours: number, organization?: string): MemoryCa {
      const key = generateKey('ec-p256');
      return ca(key, rootFields({ name, ...(organization ? { organization } : {}), ...validity(hours), spki: key.spki }), key);
    },
    /** a CA under `parent` (pathLen 0) */
    intermediate(parent: MemoryCa, name: string, hours: number): MemoryCa {
      const key = generateKey('ec-p256');
      return ca(key, intermediateFields(parent.issuer, { name, ...validity(hours), spki: key.spki }), parent.key);
    },
    /** a client certificate for spiffe://acme.test/user/<id>, no teams or roles, signed by `issuer` (its own end may pass the issuer's) */
    leaf(issuer: MemoryCa, id: string, hours: number): Buffer {
      const claims = normalizeClaims({ trustDomain: 'acme.test', kind: 'user', id, teams: [], roles: [] });
      return signCertificate(clientFields(issuer.issuer, { ...validity(hours), spki: generateKey('ec-p256').spki, keyType: 'ec-p256', claims }), signerOf(issuer.key));
    },
  };
}
