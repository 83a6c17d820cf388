/**
 * Verifies an OpenID Connect ID token against the configured providers: the one helper every
 * route that accepts an ID token calls (`POST /login/sign`; token exchange, #23). What it
 * checks, in order (docs/login.md "What the CA checks"):
 *
 * - shape: a compact JWS of at most 16 KiB; `typ` absent or `JWT` (an access token, `at+jwt`,
 *   is not an ID token);
 * - `alg` in an allow-list of asymmetric algorithms (RS*, PS*, ES*, EdDSA): never `none`,
 *   never HMAC (an HS256 token "signed" with the provider's public key is refused before any
 *   key is looked at);
 * - `iss` names a configured provider, exactly (no trailing-slash or case folding);
 * - the signature, with the key of the header's `kid` from that provider's JWKS (fetched from
 *   its discovery document; refetched once for an unknown kid, rate-limited: provider-keys.ts);
 * - `aud` holds one of the accepted audiences (or the one the caller expects); with several
 *   audiences `azp` is required, and when present `azp` must be accepted too;
 * - `exp` in the future and `iat` in the past, `nbf` (if any) reached, with 60 s of skew; `iat`
 *   at most `maxAgeSeconds` (600) ago: an ID token is traded right after sign-in;
 * - no claim that only access tokens carry (`client_id`, `scope`, `scp`, `token_use` other
 *   than `id`, a `typ` claim other than `ID`; Entra's `azpacr`, `idtyp`, `appid`, `appidacr`,
 *   Okta's `cid`, Auth0's `gty`): an access token whose `aud` is the client id is
 *   a signed JWT for the same audience, and many providers' access tokens are typ JWT;
 * - `sub` present; `nonce`: when the token carries one, the caller's must equal it; when the
 *   caller sends one (code + PKCE), the token must carry it.
 *
 * It does not record the use: the caller does, in its own transaction, with {@link replayKey}.
 */
import crypto from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { LoginProvider, LoginProviders } from './providers.js';
import { OidcRefused } from './refused.js';

/** Asymmetric JWS algorithms accepted in ID tokens (RFC 7518, RFC 8037). */
export const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export const CLOCK_SKEW_SECONDS = 60;
export const MAX_TOKEN_BYTES = 16 * 1024;

export interface VerifyIdTokenOptions {
  /** the audience(s) to accept instead of the provider's configured `audiences` (token exchange) */
  readonly audience?: string | readonly string[];
  /** the nonce the client sent; compared when the token carries one */
  readonly nonce?: string;
  /** the longest time since `iat` (default 600 s) */
  readonly maxAgeSeconds?: number;
  /** the current time (default: now) */
  readonly now?: Date;
}

export interface VerifiedIdToken {
  readonly provider: LoginProvider;
  readonly claims: JWTPayload & { sub: string; exp: number };
  /** the IdP's subject (`sub`): for the audit line */
  readonly subject: string;
  /** until when the token could be accepted (exp or iat + the age limit, plus skew): how long its replay record must be kept */
  readonly expiresAt: Date;
  /** the key its one use is recorded under (see {@link replayKey}) */
  readonly replayKey: string;
}

/**
 * The key an ID token's use is recorded under: a hash of the issuer and the signed part of the
 * token (header and payload), not of the whole string. The signature's encoding is not unique
 * (base64url's spare bits, ECDSA's s and n-s), so a used token re-encoded would otherwise pass
 * as new; the signed part cannot change without breaking the signature.
 */
export function replayKey(issuer: string, token: string): string {
  const signed = token.slice(0, token.lastIndexOf('.'));
  return `oidc:${crypto.createHash('sha256').update(issuer).update('\n').update(signed).digest('hex')}`;
}

const refuse = (code: ConstructorParameters<typeof OidcRefused>[0], message: string, hint: string, who: { provider?: string; idpSubject?: string } = {}) => new OidcRefused(code, message, hint, who);
const SIGN_IN_AGAIN = 'sign in again (mcp-mtls login) and send the new ID token at once';

/** Verifies `token` (see the module comment); throws {@link OidcRefused} saying why not. */
export async function verifyIdToken(providers: LoginProviders, token: string, options: VerifyIdTokenOptions = {}): Promise<VerifiedIdToken> {
  if (token.length > MAX_TOKEN_BYTES || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
    throw refuse('OIDC_TOKEN_INVALID', 'the bearer token is not an ID token (a compact JWS of at most 16 KiB)', 'send the id_token of the sign-in, not the access token');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    throw refuse('OIDC_TOKEN_INVALID', 'the ID token cannot be decoded', 'send the id_token of the sign-in unchanged');
  }
  if (typeof header.alg !== 'string' || !(ID_TOKEN_ALGORITHMS as readonly string[]).includes(header.alg)) {
    throw refuse('OIDC_TOKEN_INVALID', `the ID token's algorithm ${JSON.stringify(header.alg ?? null)} is not accepted (only asymmetric signatures: ${ID_TOKEN_ALGORITHMS.join(', ')})`, 'configure the provider to sign ID tokens with RS256 or ES256');
  }
  if (header.typ !== undefined && !/^(application\/)?jwt$/i.test(String(header.typ))) {
    throw refuse('OIDC_TOKEN_INVALID', `the token's typ is ${JSON.stringify(header.typ)}: not an ID token`, 'send the id_token of the sign-in, not the access token');
  }
  // the unverified iss only picks the provider whose keys must then verify the whole token
  const provider = typeof unverified.iss === 'string' ? providers.byIssuer(unverified.iss) : undefined;
  if (!provider) {
    throw refuse('OIDC_ISSUER', `the ID token's issuer ${JSON.stringify(unverified.iss ?? null)} is not a provider this CA accepts`, `sign in with a provider of GET /login (${providers.list.map((p) => p.issuer).join(', ')})`);
  }
  const audiences = options.audience === undefined ? provider.audiences : typeof options.audience === 'string' ? [options.audience] : options.audience;
  const who = { provider: provider.name, ...(typeof unverified.sub === 'string' ? { idpSubject: unverified.sub } : {}) };
  let claims: JWTPayload;
  try {
    ({ payload: claims } = await jwtVerify(token, (h, t) => provider.keys.key(h, t), {
      algorithms: [...ID_TOKEN_ALGORITHMS],
      issuer: provider.issuer,
      audience: [...audiences],
      clockTolerance: CLOCK_SKEW_SECONDS,
      maxTokenAge: options.maxAgeSeconds ?? 600,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      ...(options.now ? { currentDate: options.now } : {}),
    }));
  } catch (e) {
    throw joseRefusal(e, provider, audiences, who);
  }
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (aud.length > 1 && claims.azp === undefined) throw refuse('OIDC_AUDIENCE', 'the ID token has several audiences and no azp (authorized party)', 'ask for the ID token with this CA\'s client id only', who);
  if (claims.azp !== undefined && !audiences.includes(claims.azp as string)) {
    throw refuse('OIDC_AUDIENCE', `the ID token was issued to ${JSON.stringify(claims.azp)} (azp), not to ${audiences.join(', ')}`, `sign in with the client id of GET /login (${provider.clientId})`, who);
  }
  const marker = accessTokenMarker(claims);
  if (marker) throw refuse('OIDC_TOKEN_INVALID', `the token carries ${marker}: it is an access token, not an ID token`, 'send the id_token of the sign-in, not the access token', who);
  if (typeof claims.sub !== 'string' || claims.sub === '') throw refuse('OIDC_TOKEN_INVALID', 'the ID token has no subject (sub)', SIGN_IN_AGAIN, who);
  checkNonce(claims.nonce, options.nonce, who);
  // the record is needed while the token could be accepted: until exp, or iat + the age limit, whichever is first (plus the skew)
  const acceptableUntil = Math.min(claims.exp as number, (claims.iat as number) + (options.maxAgeSeconds ?? 600)) + CLOCK_SKEW_SECONDS;
  return { provider, claims: claims as VerifiedIdToken['claims'], subject: claims.sub, expiresAt: new Date(acceptableUntil * 1000), replayKey: replayKey(provider.issuer, token) };
}

/**
 * What says a signed JWT is an access token, whatever its header's `typ` (many providers' access
 * tokens are typ JWT, and one whose `aud` is the client id would otherwise pass): claims no ID
 * token carries (OIDC Core 2) and access tokens do: `client_id` (RFC 9068 2.2: required there;
 * an ID token names its client in `azp`), `scope` (RFC 9068, Keycloak, Auth0), `scp` (Entra,
 * Okta), `token_use` other than `id` (Cognito), a `typ` claim other than `ID` (Keycloak's
 * access tokens say `Bearer`). The claim named, or undefined.
 */
function accessTokenMarker(claims: JWTPayload): string | undefined {
  // and the claims only some providers' access tokens carry: Entra's app-only tokens (roles, no
  // scp: azpacr, idtyp; v1: appid, appidacr), Okta's cid, Auth0's gty (client credentials)
  for (const c of ['client_id', 'scope', 'scp', 'azpacr', 'idtyp', 'appidacr', 'appid', 'cid', 'gty'] as const) if (claims[c] !== undefined) return `a ${c} claim (${c})`;
  if (claims.token_use !== undefined && claims.token_use !== 'id') return `token_use ${JSON.stringify(claims.token_use)} (token_use)`;
  if (claims.typ !== undefined && (typeof claims.typ !== 'string' || claims.typ.toUpperCase() !== 'ID')) return `a typ claim ${JSON.stringify(claims.typ)} (typ)`;
  return undefined;
}

function checkNonce(inToken: unknown, sent: string | undefined, who: { provider?: string; idpSubject?: string }): void {
  // a token without a nonce (a flow that had none: the device flow) binds nothing; a thief of
  // such a token would simply not send the header. But a caller that sends one says its flow
  // put it in the token: a token without it is not that flow's ID token (an access token is not)
  if (inToken === undefined) {
    if (sent !== undefined) throw refuse('OIDC_NONCE', 'the Mcp-Mtls-Nonce header was sent but the ID token carries no nonce: it is not the ID token of that sign-in', 'send the id_token of the sign-in that used this nonce, not the access token', who);
    return;
  }
  if (sent === undefined) throw refuse('OIDC_NONCE', 'the ID token carries a nonce: send it in the Mcp-Mtls-Nonce header', 'send the nonce of the sign-in with the token', who);
  const a = Buffer.from(String(inToken));
  const b = Buffer.from(sent);
  if (typeof inToken !== 'string' || a.length !== b.length || !crypto.timingSafeEqual(a, b)) throw refuse('OIDC_NONCE', 'the nonce sent does not match the ID token\'s', 'send the nonce of the sign-in that produced this token', who);
}

/** jose's error as the refusal a client gets (never the token; the claims named are the client's own). */
function joseRefusal(e: unknown, provider: LoginProvider, audiences: readonly string[], signedWho: { provider?: string; idpSubject?: string }): unknown {
  if (e instanceof OidcRefused) return e;
  const err = e as { code?: string; claim?: string; reason?: string; message?: string };
  // jose checks the claims only once the signature verified: a claim error's `sub` is the
  // provider's word; before that (key, algorithm, signature, shape) it is anyone's, and the
  // audit line must not say that "alice" tried when a forger wrote sub: alice
  const who = err.code === 'ERR_JWT_EXPIRED' || err.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' ? signedWho : { provider: provider.name };
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return err.claim === 'iat'
        ? refuse('OIDC_EXPIRED', 'the ID token was issued too long ago (iat): it is traded right after sign-in', SIGN_IN_AGAIN, who)
        : refuse('OIDC_EXPIRED', 'the ID token has expired (exp)', SIGN_IN_AGAIN, who);
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (err.claim === 'aud') return refuse('OIDC_AUDIENCE', `the ID token is not for this CA: its audience is not ${audiences.join(', ')}`, `sign in with the client id of GET /login (${provider.clientId})`, who);
      if (err.claim === 'iss') return refuse('OIDC_ISSUER', `the ID token's issuer is not ${provider.issuer}`, 'sign in with a provider of GET /login', who);
      if (err.claim === 'nbf' || err.claim === 'iat') return refuse('OIDC_TOKEN_INVALID', `the ID token is not valid yet (${err.claim} in the future beyond ${CLOCK_SKEW_SECONDS} s of skew)`, 'check the clocks of the CA and the identity provider', who);
      return refuse('OIDC_TOKEN_INVALID', `the ID token lacks or has a bad ${err.claim ?? 'claim'}`, SIGN_IN_AGAIN, who);
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return refuse('OIDC_TOKEN_INVALID', `the ID token is signed by a key ${provider.name} does not publish (kid unknown)`, SIGN_IN_AGAIN, who);
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refuse('OIDC_TOKEN_INVALID', 'the ID token\'s signature does not verify with the provider\'s key', SIGN_IN_AGAIN, who);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refuse('OIDC_TOKEN_INVALID', 'the ID token\'s algorithm or key type is not accepted', 'configure the provider to sign ID tokens with RS256 or ES256', who);
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return refuse('OIDC_TOKEN_INVALID', 'the ID token names no kid and the provider publishes several keys', SIGN_IN_AGAIN, who);
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JWK_INVALID':
    case 'ERR_JWKS_INVALID':
      return refuse('OIDC_TOKEN_INVALID', 'the ID token is malformed', SIGN_IN_AGAIN, who);
    default:
      return e;
  }
}
