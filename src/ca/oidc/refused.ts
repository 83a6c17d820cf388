/** Why an ID token or a sign-in is refused: a stable code, the HTTP status, and a next step. */
import { MtlsError } from '../../errors.js';

/**
 * The codes of /login/sign refusals (docs/ca-serve.md): the token (`OIDC_TOKEN_INVALID`: shape,
 * algorithm, signature, key, typ, nbf/iat), `OIDC_ISSUER`, `OIDC_AUDIENCE` (aud, azp),
 * `OIDC_EXPIRED` (exp, or signed in too long ago), `OIDC_NONCE`, `OIDC_REPLAY` (used before),
 * `OIDC_PRINCIPAL` (the principal claim is missing or breaks the id rules), `OIDC_NO_GROUPS`
 * (requireMappedGroup), `OIDC_PROVIDER_UNAVAILABLE` (discovery or JWKS cannot be fetched: 503),
 * `PRINCIPAL_REVOKED` (the principal was revoked after the token was issued: 403, ca/serve/principal-revoked.ts).
 */
export type OidcRefusalCode =
  | 'OIDC_TOKEN_REQUIRED'
  | 'OIDC_TOKEN_INVALID'
  | 'OIDC_ISSUER'
  | 'OIDC_AUDIENCE'
  | 'OIDC_EXPIRED'
  | 'OIDC_NONCE'
  | 'OIDC_REPLAY'
  | 'OIDC_PRINCIPAL'
  | 'OIDC_NO_GROUPS'
  | 'OIDC_PROVIDER_UNAVAILABLE'
  | 'PRINCIPAL_REVOKED';

const STATUS: Record<OidcRefusalCode, number> = {
  OIDC_TOKEN_REQUIRED: 401,
  OIDC_TOKEN_INVALID: 401,
  OIDC_ISSUER: 401,
  OIDC_AUDIENCE: 401,
  OIDC_EXPIRED: 401,
  OIDC_NONCE: 401,
  OIDC_REPLAY: 401,
  OIDC_PRINCIPAL: 403,
  OIDC_NO_GROUPS: 403,
  OIDC_PROVIDER_UNAVAILABLE: 503,
  PRINCIPAL_REVOKED: 403,
};

/**
 * An ID token or sign-in refused. An MtlsError so that the stores pass it through their
 * transaction unchanged (the replay check runs inside the issuing transaction). The message
 * never holds the token; it may name claims (issuer, audience) the client sent itself.
 */
export class OidcRefused extends MtlsError {
  readonly status: number;
  constructor(
    readonly refusal: OidcRefusalCode,
    message: string,
    hint: string,
    /** the IdP's subject and provider, when known, for the audit line */
    readonly who: { provider?: string; idpSubject?: string } = {},
  ) {
    super('OIDC_REFUSED', message, { hint });
    this.status = STATUS[refusal];
  }
}
