import type { PrincipalKind } from './names.js';

/**
 * The identity a verified client certificate stands for (identity.md, reader rule 5): what
 * the server hands each request and what a policy decides on. {@link decodeIdentity} builds
 * it from a certificate and returns it frozen.
 */
export interface Identity {
  /** The principal URI, the certificate's one URI SAN: `spiffe://acme.test/user/alice`. */
  readonly principal: string;
  /** The trust domain of {@link Identity.principal}, e.g. `acme.test`. */
  readonly trustDomain: string;
  readonly kind: PrincipalKind;
  /** The id of {@link Identity.principal}, e.g. `alice`. */
  readonly id: string;
  /** Team names, sorted and unique; empty when the certificate names none. */
  readonly teams: readonly string[];
  /** Role names (`admin`, not the role URI), sorted and unique; empty when none. */
  readonly roles: readonly string[];
  /** The certificate's first rfc822Name SAN, when it has one. */
  readonly email?: string;
  /** The certificate serial number: lowercase hex, no leading zeros beyond one byte. */
  readonly serial: string;
  /** SHA-256 of the certificate DER, lowercase hex. */
  readonly fingerprint: string;
  /** When the certificate expires. Decoding does not check it: the TLS layer does. */
  readonly notAfter: Date;
}

/** What the CA is asked to put into a client certificate. */
export interface ClientClaims {
  readonly trustDomain: string;
  readonly kind: PrincipalKind;
  readonly id: string;
  /** Team names, in any order. */
  readonly teams: readonly string[];
  /** Role names (not URIs), in any order. */
  readonly roles: readonly string[];
  /** Put into the certificate as an rfc822Name SAN; plain ASCII, at most 254 characters. */
  readonly email?: string;
}
