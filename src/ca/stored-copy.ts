/**
 * A certificate the CA signed before, handed out again: what makes a retry safe when the answer
 * to an enrollment (/sign) or a renewal (/renew) was lost. Only for the same public key the
 * request proves possession of, and only while the certificate is unexpired and not revoked
 * (by the index, which a CRL may lag behind). Nothing new is signed.
 */
import { parseCertificate } from '../x509/certificate.js';
import { pemEncode } from '../x509/pem.js';
import type { Authority, IssuedCertificate } from './authority.js';

export async function storedCopyFor(ca: Authority, serial: string, spki: Uint8Array): Promise<IssuedCertificate | undefined> {
  const der = await ca.store.readIssued(serial);
  const cert = der ? parseCertificate(der) : undefined;
  if (!der || !cert || !Buffer.from(cert.spki).equals(Buffer.from(spki)) || cert.notAfter <= ca.now()) return undefined;
  const { issued: record, revoked } = await ca.store.lookup(serial);
  if (!record || revoked) return undefined;
  return { record, der, chainPem: pemEncode('CERTIFICATE', der) + pemEncode('CERTIFICATE', ca.intermediateDer) };
}
