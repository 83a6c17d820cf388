/**
 * The delegation grant (docs/delegation.md): a person (or service) lets one actor act for it,
 * signed with the key of its own mcp-mtls client certificate. A JWS (RFC 7515, compact) whose
 * protected header carries the signer's chain (`x5c`: leaf, intermediate) and whose payload
 * names delegator, actor, lifetime and what is delegated:
 *
 *   header  { alg: ES256 | ES384 | EdDSA | RS256, typ: "mcp-mtls-delegation+jws", x5c: [...] }
 *   payload { v: 1, iss: <delegator principal>, aud: <actor principal>, iat, exp, jti,
 *             teams?: [...], roles?: [...],    (absent: all the delegator's)
 *             tools?: [...] }                  (profile v1.2: tool globs the actor is limited to; absent: no limit)
 *
 * Why a JWS: one well-kept library (jose) writes and checks it, the algorithm is pinned to the
 * certificate's key type, and the chain travels with it, so the CA needs nothing but the grant.
 * The CA (src/ca/serve/delegate.ts) decides whether the certificate is its own and not revoked.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { compactVerify, CompactSign, decodeProtectedHeader } from 'jose';
import { MtlsError } from '../errors.js';
import { decodeIdentity } from '../identity/decode.js';
import type { Identity } from '../identity/identity.js';
import { assertTeamOrRole, isValidToolGlob, MAX_DELEGATED_TOOLS, toolGlobsTooLarge } from '../identity/names.js';
import { parseCertificate } from '../x509/certificate.js';
import { keyTypeOf, keyTypeOfSpki, publicKeyFromSpki, type KeyType } from '../x509/keys.js';

export const GRANT_TYPE = 'mcp-mtls-delegation+jws';
/** A grant is for hours or days, not for ever: the delegator's certificate (24h by default) caps it too. */
export const MAX_GRANT_MS = 30 * 24 * 3600_000;
/** Bytes: a grant with a P-384 or RSA chain is a few KiB. */
export const MAX_GRANT_BYTES = 16 * 1024;
const SKEW_S = 60;

const ALG: Record<KeyType, string> = { 'ec-p256': 'ES256', 'ec-p384': 'ES384', ed25519: 'EdDSA', 'rsa-2048': 'RS256', 'rsa-3072': 'RS256' };

/** What a grant says, once its signature and shape are checked ({@link readGrant}). */
export interface Grant {
  /** who delegates: read from the signing certificate (profile v1), which must be `iss` */
  readonly delegator: Identity;
  /** the signing certificate, DER (the CA checks it is its own and not revoked) */
  readonly certificate: Buffer;
  /** the actor's principal URI (`aud`) */
  readonly actor: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly id: string;
  /** what the grant delegates; undefined: all the delegator's */
  readonly teams?: readonly string[];
  readonly roles?: readonly string[];
  /** profile v1.2: the tool globs (the policy's syntax) the actor may call for the delegator; undefined: no limit */
  readonly tools?: readonly string[];
}

/** Options of {@link signGrant}. */
export interface SignGrantOptions {
  /** the signer's certificate chain (DER), leaf first: an mcp-mtls client certificate */
  readonly chain: readonly Buffer[];
  /** the leaf's private key */
  readonly key: KeyObject;
  /** the actor's principal URI, e.g. spiffe://acme.test/service/chat-platform */
  readonly actor: string;
  /** ms; capped by the leaf's notAfter */
  readonly ttlMs: number;
  readonly teams?: readonly string[];
  readonly roles?: readonly string[];
  /** profile v1.2: limit the actor to these tool globs (the policy's syntax, e.g. `read_*`), at most 32 */
  readonly tools?: readonly string[];
  readonly now?: Date;
}

/** The tool globs, checked, sorted and unique; throws `what`'s error naming the bad one. */
export function checkToolGlobs(tools: readonly string[], fail: (message: string) => Error): string[] {
  const out = [...new Set(tools)].sort();
  if (out.length === 0 || out.length > MAX_DELEGATED_TOOLS) throw fail(`a delegation limited to tools names 1 to ${MAX_DELEGATED_TOOLS} tool globs (${out.length} given)`);
  for (const g of out) if (!isValidToolGlob(g)) throw fail(`"${g}" is not a tool glob (a tool name or a pattern of the policy's syntax: read_*, {read,list}_repo; 1-128 printable ASCII characters)`);
  const tooLarge = toolGlobsTooLarge(out);
  if (tooLarge) throw fail(tooLarge);
  return out;
}

/** Signs a delegation grant with the signer's own certificate key (`mcp-mtls delegate`). */
export async function signGrant(o: SignGrantOptions): Promise<string> {
  const leaf = o.chain[0];
  if (!leaf) throw new MtlsError('BAD_ARGUMENT', 'no certificate to sign the grant with');
  const me = decodeIdentity(leaf);
  if (me.actingFor) throw new MtlsError('DELEGATION_REFUSED', 'a delegated certificate cannot delegate further (profile v1.1: one hop)', { hint: "sign with the person's own certificate" });
  const now = o.now ?? new Date();
  const exp = Math.min(now.getTime() + o.ttlMs, me.notAfter.getTime());
  if (exp <= now.getTime()) throw new MtlsError('CERT_EXPIRED', 'the certificate signing the grant has expired', { hint: 'renew it first (mcp-mtls renew)' });
  o.teams?.forEach((t) => assertTeamOrRole(t, 'team'));
  o.roles?.forEach((r) => assertTeamOrRole(r, 'role'));
  const tools = o.tools && checkToolGlobs(o.tools, (m) => new MtlsError('BAD_NAME', m, { hint: 'e.g. --tool read_repo --tool "list_*"' }));
  const alg = ALG[keyTypeOf(o.key)];
  const payload = {
    v: 1,
    iss: me.principal,
    aud: o.actor,
    iat: Math.floor(now.getTime() / 1000),
    exp: Math.floor(exp / 1000),
    jti: crypto.randomBytes(16).toString('hex'),
    ...(o.teams ? { teams: [...new Set(o.teams)].sort() } : {}),
    ...(o.roles ? { roles: [...new Set(o.roles)].sort() } : {}),
    ...(tools ? { tools } : {}),
  };
  return new CompactSign(Buffer.from(JSON.stringify(payload)))
    .setProtectedHeader({ alg, typ: GRANT_TYPE, x5c: o.chain.map((c) => c.toString('base64')) })
    .sign(o.key);
}

const refused = (message: string, hint = 'ask the delegator for a new grant (mcp-mtls delegate)') => new MtlsError('DELEGATION_REFUSED', message, { hint });

const isNames = (v: unknown): v is string[] => Array.isArray(v) && v.length <= 200 && v.every((x) => typeof x === 'string');

/**
 * Checks a grant's signature against the certificate it carries, its shape and its dates, and
 * returns what it says. Does NOT decide whether the certificate is trusted: the caller checks it
 * is one this CA issued (byte for byte) and not revoked.
 *
 * @throws MtlsError `DELEGATION_REFUSED` naming what is wrong
 */
export async function readGrant(jws: string, options: { trustDomain: string; now: Date }): Promise<Grant> {
  if (typeof jws !== 'string' || jws.length > MAX_GRANT_BYTES || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(jws)) throw refused('the grant is not a compact JWS');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    throw refused('the grant header is not readable');
  }
  if (header.typ !== GRANT_TYPE) throw refused(`the grant's typ is ${JSON.stringify(header.typ)}, not ${GRANT_TYPE}`);
  if (header.crit !== undefined || header.b64 !== undefined) throw refused('the grant uses JWS extensions (crit, b64) that are not accepted');
  const x5c = header.x5c;
  if (!Array.isArray(x5c) || x5c.length < 1 || x5c.length > 3 || !x5c.every((c) => typeof c === 'string')) throw refused('the grant carries no certificate chain (x5c)');
  const certificate = Buffer.from(x5c[0] as string, 'base64');
  let delegator: Identity;
  let publicKey: KeyObject;
  let expectedAlg: string;
  try {
    const parsed = parseCertificate(certificate);
    delegator = decodeIdentity(certificate, { trustDomains: [options.trustDomain] });
    expectedAlg = ALG[keyTypeOfSpki(parsed.spki)];
    publicKey = publicKeyFromSpki(parsed.spki);
  } catch (e) {
    throw refused(`the grant's certificate is not an mcp-mtls client certificate of ${options.trustDomain}: ${(e as Error).message}`);
  }
  if (delegator.actingFor) throw refused('the grant is signed with a delegated certificate: a delegation cannot be delegated further (one hop)');
  if (header.alg !== expectedAlg) throw refused(`the grant's alg ${String(header.alg)} does not match its certificate's key (${expectedAlg})`);
  let payload: Record<string, unknown>;
  try {
    const v = await compactVerify(jws, publicKey, { algorithms: [expectedAlg] });
    payload = JSON.parse(Buffer.from(v.payload).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw refused('the grant signature does not verify with its certificate');
  }
  if (payload === null || typeof payload !== 'object' || payload.v !== 1) throw refused('the grant is not a version 1 delegation grant');
  if (payload.iss !== delegator.principal) throw refused(`the grant names ${String(payload.iss)} as delegator, but is signed by ${delegator.principal}`);
  const { iat, exp, aud, jti } = payload;
  if (typeof aud !== 'string' || typeof jti !== 'string' || typeof iat !== 'number' || typeof exp !== 'number' || !Number.isInteger(iat) || !Number.isInteger(exp)) throw refused('the grant lacks aud, jti, iat or exp');
  const now = options.now.getTime() / 1000;
  if (iat > now + SKEW_S) throw refused('the grant is issued in the future: check the clocks');
  if (exp <= now) throw refused(`the grant expired at ${new Date(exp * 1000).toISOString()}`);
  if ((exp - iat) * 1000 > MAX_GRANT_MS) throw refused('the grant is valid for more than 30 days');
  if (payload.teams !== undefined && !isNames(payload.teams)) throw refused('the grant\'s teams are not a list of names');
  if (payload.roles !== undefined && !isNames(payload.roles)) throw refused('the grant\'s roles are not a list of names');
  const tools = payload.tools === undefined ? undefined : isNames(payload.tools) ? checkToolGlobs(payload.tools, (m) => refused(`the grant's tools: ${m}`)) : undefined;
  if (payload.tools !== undefined && !tools) throw refused('the grant\'s tools are not a list of tool globs');
  return {
    delegator,
    certificate,
    actor: aud,
    issuedAt: new Date(iat * 1000),
    expiresAt: new Date(exp * 1000),
    id: jti,
    ...(payload.teams ? { teams: payload.teams as string[] } : {}),
    ...(payload.roles ? { roles: payload.roles as string[] } : {}),
    ...(tools ? { tools } : {}),
  };
}
