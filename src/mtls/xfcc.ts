/**
 * x-forwarded-client-cert in Envoy's format (identity.md "Forwarded identity"): written by the
 * gateway for its upstream ({@link formatXfcc}); read by the upstream helper
 * (trust-forwarded.ts) only from the gateway.
 */
import crypto from 'node:crypto';
import { MtlsError } from '../errors.js';
import { pemDecodeAll, pemEncode } from '../x509/pem.js';
import type { Identity } from '../identity/identity.js';

/** The header name, `x-forwarded-client-cert` (lowercase, as Node presents incoming headers). */
export const XFCC = 'x-forwarded-client-cert';

/**
 * The x-forwarded-client-cert value the gateway sends upstream for a client, in Envoy's
 * format: `Hash=<SHA-256 hex>;Cert="<url-encoded PEM>";URI=<principal>`.
 *
 * @param der - the client certificate (DER) that `identity` was decoded from
 * @throws MtlsError `CERT_INVALID` when `der` is not that certificate (its SHA-256 is not
 *   `identity.fingerprint`): the header never pairs one identity with another certificate
 */
export function formatXfcc(identity: Identity, der: Uint8Array): string {
  const hash = crypto.createHash('sha256').update(der).digest('hex');
  if (hash !== identity.fingerprint) {
    throw new MtlsError('CERT_INVALID', `the certificate to forward (SHA-256 ${hash}) is not the one ${identity.principal} was authenticated with (${identity.fingerprint})`, { hint: 'forward the certificate of the verified handshake' });
  }
  return `Hash=${hash};Cert="${encodeURIComponent(pemEncode('CERTIFICATE', der))}";URI=${identity.principal}`;
}

/** The certificate DER of the first element of an XFCC header, or undefined when it has none. */
export function certFromXfcc(value: string): Buffer | undefined {
  return xfccFirstElement(value).cert;
}

/** The `Cert=` (decoded to DER) and `Hash=` (lowercase hex) of the first element of an XFCC header, each undefined when absent or unreadable. */
export function xfccFirstElement(value: string): { cert?: Buffer; hash?: string } {
  const first = value.split(',')[0] ?? '';
  const h = /(?:^|;)Hash=([0-9A-Fa-f]+)(?=;|$)/.exec(first);
  const m = /(?:^|;)Cert="([^"]*)"/.exec(first);
  let cert: Buffer | undefined;
  try {
    if (m) cert = pemDecodeAll(decodeURIComponent(m[1] as string)).find((b) => b.label === 'CERTIFICATE')?.der;
  } catch {
    cert = undefined;
  }
  return { ...(cert ? { cert } : {}), ...(h ? { hash: (h[1] as string).toLowerCase() } : {}) };
}
