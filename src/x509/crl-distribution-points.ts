/**
 * Reading the cRLDistributionPoints extension (RFC 5280 4.2.1.13): the http(s) URLs where a
 * certificate's issuer publishes its CRL. The writer is `crlDistributionPoints` in extensions.ts.
 */
import { children, contentOf, readWhole, TAG } from './der.js';
import type { ParsedCertificate } from './certificate.js';
import { OID } from './oids.js';

/**
 * The full-name URIs of the distribution points that cover every reason and are the issuer's own
 * (no cRLIssuer: indirect CRLs are not supported). Malformed values give no URL, never an error:
 * a distribution point is a hint, not part of a certificate's validity.
 */
export function decodeCrlDistributionPoints(value: Uint8Array): string[] {
  const out: string[] = [];
  try {
    for (const dp of children(value, readWhole(value, TAG.SEQUENCE))) {
      const parts = children(value, dp);
      if (parts.some((p) => p.tag === 0xa1 || p.tag === 0x81 || p.tag === 0xa2)) continue; // reasons or cRLIssuer
      const name = parts.find((p) => p.tag === 0xa0); // distributionPoint [0] DistributionPointName
      const fullName = name ? children(value, name).find((p) => p.tag === 0xa0) : undefined; // fullName [0] GeneralNames
      if (!fullName) continue;
      for (const gn of children(value, fullName)) if (gn.tag === 0x86) out.push(contentOf(value, gn).toString('latin1'));
    }
  } catch {
    return out;
  }
  return out;
}

/** The CRL URLs a parsed certificate names, if any. */
export function crlUrlsOf(cert: ParsedCertificate): string[] {
  const ext = cert.extensions.get(OID.cRLDistributionPoints);
  return ext ? decodeCrlDistributionPoints(ext.value) : [];
}
