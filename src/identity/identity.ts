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
  /**
   * Profile v1.1: the principal this certificate's holder acts for (a delegated certificate,
   * docs/delegation.md), with the teams and roles delegated to it. The top-level fields stay the
   * holder's (the actor: the URI SAN), whose own teams and roles a delegated certificate does
   * not carry (empty). Policy decides a delegated call on `actingFor` and restricts it by the
   * actor. Absent for an ordinary certificate, and when the reader does not accept delegation.
   */
  readonly actingFor?: DelegatedPrincipal;
  /** Profile v1.1: the actor chain of a delegated certificate, the holder first: `[principal]` (one hop in v1.1). */
  readonly actors?: readonly string[];
}

/** Who a delegated certificate acts for ({@link Identity.actingFor}). */
export interface DelegatedPrincipal {
  /** The delegator's principal URI: `spiffe://acme.test/user/bob`. */
  readonly principal: string;
  readonly trustDomain: string;
  readonly kind: PrincipalKind;
  readonly id: string;
  /** What the delegation grants of the delegator's teams (at most the delegator's), sorted. */
  readonly teams: readonly string[];
  /** What the delegation grants of the delegator's roles, sorted. */
  readonly roles: readonly string[];
  /**
   * Profile v1.2: the tool globs (the policy's glob syntax) the delegation is limited to, sorted;
   * a delegated call to any other tool is denied (rule `delegation-grant`). Absent: no limit
   * beyond the policy's.
   */
  readonly tools?: readonly string[];
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
  /**
   * Profile v1.1: a delegated certificate for the principal (the actor) acting for this one.
   * `teams` and `roles` above are then the delegated ones (qualified by the delegator in the
   * certificate); the actor's own are not carried.
   */
  readonly actingFor?: {
    readonly kind: PrincipalKind;
    readonly id: string;
    /** Profile v1.2: the tool globs the delegation is limited to (absent: no limit) */
    readonly tools?: readonly string[];
  };
}
