/** The Identity a verified client certificate stands for (identity.md, reader rule 5). */
import type { PrincipalKind } from './names.js';

export interface Identity {
  /** spiffe://acme.test/user/alice */
  readonly principal: string;
  readonly trustDomain: string;
  readonly kind: PrincipalKind;
  readonly id: string;
  readonly teams: readonly string[];
  readonly roles: readonly string[];
  readonly email?: string;
  /** lowercase hex, no leading zeros beyond one byte */
  readonly serial: string;
  /** SHA-256 of the certificate DER, lowercase hex */
  readonly fingerprint: string;
  readonly notAfter: Date;
}

/** What the CA is asked to put into a client certificate. */
export interface ClientClaims {
  readonly trustDomain: string;
  readonly kind: PrincipalKind;
  readonly id: string;
  readonly teams: readonly string[];
  readonly roles: readonly string[];
  readonly email?: string;
}
