/**
 * One-time enrollment tokens: an operator creates one for a principal (`mcp-mtls token create`),
 * hands the secret to the workload, and the workload trades it once for a certificate over
 * `POST /sign` (ca serve) with a CSR of its own key.
 *
 * - The secret is `mcpt_<id>_<43 base64url chars>` (256 random bits); `id` is public (16 hex,
 *   for listing and audit). The store keeps sha256(secret) only: whoever reads the store
 *   cannot enroll.
 * - Claims (principal, teams, roles, email) and the certificate lifetime come from the token,
 *   never from the CSR, whose public key (after its signature is checked) is all that is used.
 * - Consumption is atomic across processes and happens inside the issuing transaction, after
 *   the certificate is signed and right before it is recorded: a request refused earlier (bad
 *   CSR, a claim the profile refuses) leaves the token usable. (The folder store writes the
 *   used token with the issuance's journal, before the index line: a failure before that
 *   leaves the token usable, one after it, e.g. a full disk, still uses the token up; a
 *   database store rolls both back.) Its `token.use` audit line is written with the
 *   certificate's `cert.issue`, in the same append or statement.
 */
import crypto from 'node:crypto';
import { MtlsError } from '../errors.js';
import { normalizeClaims } from '../identity/encode.js';
import type { ClientClaims } from '../identity/identity.js';
import { verifyCsr } from '../x509/csr.js';
import { actor, type Authority, type IssuedCertificate } from './authority.js';
import { parseDuration } from '../util/duration.js';
import { sha256Hex } from '../util/sha256.js';
import { checkClientClaims, checkTtlLimit } from './limits.js';
import type { EnrollmentToken, Store, StoredToken } from './store/store.js';
import { storedCopyFor } from './stored-copy.js';

export const TOKEN_PREFIX = 'mcpt_';
const TOKEN_RE = /^mcpt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** sha256 hex of the whole secret string (what the store keeps). */
export const tokenHash = (secret: string): string => sha256Hex(secret);

/** The public id and hash of a presented secret, or undefined when it is not shaped like one. */
export function parseToken(secret: string): { id: string; hash: string } | undefined {
  const m = TOKEN_RE.exec(secret);
  return m ? { id: m[1] as string, hash: tokenHash(secret) } : undefined;
}

/** The claims and lifetimes of an enrollment token to create ({@link createEnrollmentToken}). */
export interface TokenRequest extends Omit<ClientClaims, 'trustDomain'> {
  /** how long the token may be used */
  readonly ttlMs: number;
  /** lifetime of the certificate it enrolls, as a duration ('24h'); the CA default when absent. At most `limits.client.maxTtl` (checked at creation) */
  readonly certTtl?: string;
  /** who creates it, for the record and the audit line (default: the OS user running this; the console passes the operator's principal) */
  readonly createdBy?: string;
}

/** A new enrollment token: the secret (shown once, never stored) and its stored record. */
export interface CreatedToken {
  /** the secret: shown once, never stored */
  readonly secret: string;
  readonly token: EnrollmentToken;
}

/**
 * Validates the claims as `issue client` does, and the certificate lifetime, teams and roles
 * against config.yaml's `limits:` (else `LIMIT_EXCEEDED`, nothing stored), stores the token's
 * hash, audits, and returns the secret.
 */
export async function createEnrollmentToken(ca: Authority, request: TokenRequest): Promise<CreatedToken> {
  const claims = normalizeClaims({ trustDomain: ca.config.trustDomain, kind: request.kind, id: request.id, teams: request.teams, roles: request.roles, ...(request.email ? { email: request.email } : {}) });
  if (ca.config.nameConstraints.enabled && claims.id.includes('.')) {
    throw new MtlsError('PROFILE_VIOLATION', `under name constraints an id cannot contain a dot ("${claims.id}")`, { hint: 'choose an id without dots' });
  }
  if (!(request.ttlMs > 0)) throw new MtlsError('BAD_DURATION', 'the token lifetime must be positive', { hint: 'e.g. --ttl 15m' });
  // the issuance limits are checked now, not only when the token is used: a token that could
  // never enroll is not handed out (the issuance checks them again, config.yaml may change)
  checkClientClaims(ca.config, claims);
  const certTtl = request.certTtl ?? ca.config.defaults.clientTtl;
  checkTtlLimit(ca.config, 'client', { ms: parseDuration(certTtl, request.certTtl !== undefined ? '--cert-ttl' : 'defaults.clientTtl'), text: certTtl, from: request.certTtl !== undefined ? 'request' : 'default' });
  if (request.certTtl !== undefined) {
    const certMs = parseDuration(request.certTtl, '--cert-ttl');
    if (ca.now().getTime() + certMs > ca.intermediate.notAfter.getTime()) {
      throw new MtlsError('TTL_EXCEEDS_ISSUER', `a certificate of ${request.certTtl} would end after the intermediate CA (${ca.intermediate.notAfter.toISOString()})`, { hint: 'choose a shorter --cert-ttl' });
    }
  }
  const id = crypto.randomBytes(8).toString('hex');
  const secret = `${TOKEN_PREFIX}${id}_${crypto.randomBytes(32).toString('base64url')}`;
  const now = ca.now();
  const token: EnrollmentToken = {
    id,
    hash: tokenHash(secret),
    claims: { id: claims.id, kind: claims.kind, teams: claims.teams, roles: claims.roles, ...(claims.email ? { email: claims.email } : {}) },
    ...(request.certTtl !== undefined ? { certTtl: request.certTtl } : {}),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + request.ttlMs).toISOString(),
    createdBy: request.createdBy ?? actor(),
  };
  await ca.store.transaction(async (tx) => {
    await tx.putToken(token);
    await tx.appendAudit([{ time: now.toISOString(), event: 'token.create', actor: token.createdBy, tokenId: id, principal: claims.principal, teams: claims.teams, roles: claims.roles, expiresAt: token.expiresAt, ...(token.certTtl ? { certTtl: token.certTtl } : {}) }]);
  });
  return { secret, token };
}

/** Where a token stands: still usable, used (it enrolled a certificate), or past its expiry unused. */
export type TokenStatus = 'unused' | 'used' | 'expired';

/** A token as `token list` shows it: its record without the hash, its principal and status. */
export interface TokenListEntry extends Omit<StoredToken, 'hash'> {
  readonly principal: string;
  readonly status: TokenStatus;
}

/** Every token with its status; never the hash, never a secret. */
export async function listTokens(ca: Authority): Promise<TokenListEntry[]> {
  const now = ca.now().getTime();
  return (await ca.store.readTokens()).map(({ hash: _hash, ...t }) => ({
    ...t,
    principal: `spiffe://${ca.config.trustDomain}/${t.claims.kind}/${t.claims.id}`,
    status: t.usedAt !== undefined ? 'used' : Date.parse(t.expiresAt) <= now ? 'expired' : 'unused',
  }));
}

export type TokenRefusal = 'malformed' | 'unknown' | 'used' | 'expired';

/**
 * A token that cannot enroll; `reason` goes to the audit log and the metrics, never the secret.
 * An MtlsError (TOKEN_REFUSED), so that stores pass it through their transaction unchanged.
 */
export class TokenRefused extends MtlsError {
  constructor(
    readonly reason: TokenRefusal,
    readonly tokenId: string | undefined,
  ) {
    super(
      'TOKEN_REFUSED',
      reason === 'expired'
        ? 'the enrollment token has expired'
        : reason === 'used'
          ? 'the enrollment token was used already (a token enrolls once)'
          : 'the enrollment token is not valid',
      { hint: reason === 'malformed' || reason === 'unknown' ? 'check the token you were given (mcpt_...)' : 'ask the operator for a new enrollment token (mcp-mtls token create)' },
    );
  }
}

/**
 * Token records by hash, for a long-running server. A token's claims never change once created,
 * so a record once read is kept; whether the token is still usable is decided by consumeToken
 * inside the issuing transaction, never by this copy. A hash not seen yet re-reads the store
 * (a read that starts after the request came, one at a time, shared by every request waiting),
 * so a token created a moment ago by `token create` on another host is found.
 */
export class TokenDirectory {
  readonly #store: Store;
  readonly #byHash = new Map<string, StoredToken>();
  #inFlight: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #lastRead = 0;
  /** the shortest time between two full reads of the tokens (ms) */
  static readonly RELOAD_MS = 1000;

  constructor(store: Store) {
    this.#store = store;
  }

  async find(hash: string): Promise<StoredToken | undefined> {
    const hit = this.#byHash.get(hash);
    if (hit) return hit;
    // a read already running (for another request) may bring it: a token created before that
    // read started is in it. Only a hash still unknown after it waits for a read of its own,
    // one that starts after this request came (and at most one per RELOAD_MS): otherwise every
    // request of a burst after a start would wait for that second, rate-limited read
    if (this.#inFlight) {
      await this.#inFlight.catch(() => undefined);
      const found = this.#byHash.get(hash);
      if (found) return found;
    }
    await this.#reload();
    return this.#byHash.get(hash);
  }

  /** a token seen used (here or by the store's refusal): later replays are refused without signing */
  markUsed(hash: string, at: Date): void {
    const t = this.#byHash.get(hash);
    if (t && t.usedAt === undefined) this.#byHash.set(hash, { ...t, usedAt: at.toISOString() });
  }

  #reload(): Promise<void> {
    if (!this.#inFlight) {
      this.#inFlight = this.#read().finally(() => (this.#inFlight = undefined));
      return this.#inFlight;
    }
    // a read already running may have started before the token existed: queue one more, shared
    this.#queued ??= this.#inFlight
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#reload();
      });
    return this.#queued;
  }

  async #read(): Promise<void> {
    // at most one full read per RELOAD_MS: a flood of made-up tokens (anyone can send one) then
    // costs one read a second, not one per request; a token made a moment ago waits at most that
    const wait = this.#lastRead + TokenDirectory.RELOAD_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    this.#lastRead = Date.now();
    for (const t of await this.#store.readTokens()) this.#byHash.set(t.hash, t);
  }
}

/**
 * Issues a client certificate for the CSR's public key with the token's claims, and uses the
 * token up in the same transaction. Throws TokenRefused (nothing issued, token unchanged),
 * a CSR_* MtlsError (token unchanged), or what the issuance throws. `directory` saves the
 * read of every token per request (ca serve); without it the store is read each time.
 */
export async function enrollWithToken(ca: Authority, secret: string, csr: Uint8Array, directory?: TokenDirectory): Promise<{ issued: IssuedCertificate; token: EnrollmentToken; replayed: boolean }> {
  const parsed = parseToken(secret);
  if (!parsed) throw new TokenRefused('malformed', undefined);
  // the claims are read first (tokens are immutable) so that the certificate can be built and
  // signed; the authoritative, atomic check is consumeToken inside the issuing transaction
  const stored = directory ? await directory.find(parsed.hash) : (await ca.store.readTokens()).find((t) => t.hash === parsed.hash);
  if (!stored || stored.id !== parsed.id) throw new TokenRefused('unknown', parsed.id);
  if (stored.usedAt === undefined && Date.parse(stored.expiresAt) <= ca.now().getTime()) throw new TokenRefused('expired', parsed.id);
  const { spki } = verifyCsr(csr); // proof of possession; its names and extensions are ignored
  if (stored.usedAt !== undefined) return { issued: await replayOrRefuse(ca, parsed, spki), token: stripUse(stored), replayed: true };
  const c = stored.claims;
  let issued: IssuedCertificate;
  try {
    issued = await ca.issueClient(
      { kind: c.kind, id: c.id, teams: c.teams, roles: c.roles, ...(c.email ? { email: c.email } : {}), spki, ...(stored.certTtl ? { ttlMs: parseDuration(stored.certTtl, 'certTtl') } : {}) },
      {
        beforeCommit: async (tx, certs) => {
          const r = await tx.consumeToken(parsed.hash, ca.now(), certs[0]?.record.serial);
          if ('refused' in r) {
            if (r.refused === 'used') directory?.markUsed(parsed.hash, ca.now());
            throw new TokenRefused(r.refused, parsed.id);
          }
          // written with the certificate's own audit line, in the issuance's commit
          return [{ event: 'token.use', tokenId: parsed.id, principal: certs[0]?.record.principal, serial: certs[0]?.record.serial }];
        },
      },
    );
  } catch (e) {
    // used a moment ago (by a request racing this one, or by this client before its answer was lost)
    if (e instanceof TokenRefused && e.reason === 'used') return { issued: await replayOrRefuse(ca, parsed, spki), token: stripUse(stored), replayed: true };
    throw e;
  }
  directory?.markUsed(parsed.hash, ca.now());
  return { issued, token: stripUse(stored), replayed: false };
}

const stripUse = ({ usedAt: _u, usedFor: _f, ...token }: StoredToken): EnrollmentToken => token;

/**
 * A used token, presented again with a CSR for the same public key, before the token's expiry:
 * the certificate it enrolled, again. This is what makes a retry safe when the answer to the first
 * request was lost (a CA replica killed between its commit and its answer, a dropped
 * connection): the requester holds the token secret and proves possession of the same key, and
 * nothing new is signed. Anything else (another key, a revoked or expired certificate) is
 * refused as `used`, as before.
 */
async function replayOrRefuse(ca: Authority, parsed: { id: string; hash: string }, spki: Uint8Array): Promise<IssuedCertificate> {
  const now = ca.now();
  const token = (await ca.store.readTokens()).find((t) => t.hash === parsed.hash);
  const serial = token?.usedFor;
  const copy = serial && Date.parse(token.expiresAt) > now.getTime() ? await storedCopyFor(ca, serial, spki) : undefined;
  if (!copy) throw new TokenRefused('used', parsed.id);
  await ca.store.transaction((tx) => tx.appendAudit([{ time: now.toISOString(), event: 'token.replay', actor: actor(), tokenId: parsed.id, principal: copy.record.principal, serial }]));
  return copy;
}
