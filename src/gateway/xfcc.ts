/**
 * x-forwarded-client-cert, Envoy's format (identity.md "Forwarded identity"):
 * `Hash=<sha256 hex>;Cert="<url-encoded PEM>";URI=<principal>`. Written by the gateway for
 * its upstream; read by the upstream helper (trust-forwarded.ts) only from the gateway.
 */
import { pemDecodeAll, pemEncode } from '../x509/pem.js';
import type { Identity } from '../identity/identity.js';

export const XFCC = 'x-forwarded-client-cert';

export function formatXfcc(identity: Identity, der: Uint8Array): string {
  return `Hash=${identity.fingerprint};Cert="${encodeURIComponent(pemEncode('CERTIFICATE', der))}";URI=${identity.principal}`;
}

/** The certificate DER of the first element of an XFCC header, or undefined when it has none. */
export function certFromXfcc(value: string): Buffer | undefined {
  const first = value.split(',')[0] ?? '';
  const m = /(?:^|;)Cert="([^"]*)"/.exec(first);
  if (!m) return undefined;
  try {
    return pemDecodeAll(decodeURIComponent(m[1] as string)).find((b) => b.label === 'CERTIFICATE')?.der;
  } catch {
    return undefined;
  }
}
