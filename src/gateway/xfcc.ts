/**
 * x-forwarded-client-cert in Envoy's format (identity.md "Forwarded identity"): written by the
 * gateway for its upstream ({@link formatXfcc}); read by the upstream helper
 * (trust-forwarded.ts) only from the gateway.
 */
import { pemDecodeAll, pemEncode } from '../x509/pem.js';
import type { Identity } from '../identity/identity.js';

/** The header name, `x-forwarded-client-cert` (lowercase, as Node presents incoming headers). */
export const XFCC = 'x-forwarded-client-cert';

/**
 * The x-forwarded-client-cert value the gateway sends upstream for a client, in Envoy's
 * format: `Hash=<SHA-256 hex>;Cert="<url-encoded PEM>";URI=<principal>`.
 *
 * @param der - the client certificate (DER) that `identity` was decoded from
 */
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
