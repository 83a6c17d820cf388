/**
 * `ca serve` POST /delegate: token exchange for delegated certificates (RFC 8693 in spirit;
 * docs/delegation.md). The actor authenticates with its own client certificate (checked as
 * /renew checks it: this CA's, byte for byte in the store, not revoked) and presents the
 * delegator's proof: a delegation grant (src/delegation/grant.ts) signed with the delegator's own
 * certificate, or an ID token from a configured identity provider (config.yaml `login.providers`,
 * verified by src/ca/oidc) whose audience is the actor's own client id (`delegation.actors[].clientId`),
 * so one platform never exchanges a token another platform received; an ID token is used once. The CA answers with a certificate for the actor's key (or a CSR's) that acts for
 * the delegator (identity profile v1.1).
 *
 * Checked, in order, each refusal with its own code (and audited by the server with actor and
 * delegator): the actor is configured (config.yaml `delegation.actors`) and not itself delegated;
 * the grant verifies, names this actor, and its certificate is this CA's own, valid and not
 * revoked; the delegator is among those the actor may act for; the grant asks for no team or
 * role the delegator lacks. Teams and roles are the grant's (default: all the delegator's) cut to
 * the actor's maximum; the lifetime is the one asked (default 1h) cut at the configured caps, the
 * delegator's certificate, the grant and the intermediate. The delegator's serial is recorded
 * (`delegatedFrom`), and the actor's (`actorSerial`): revoking either revokes the delegated
 * certificate (revocation.ts), and the issuing transaction re-checks neither is revoked. A
 * delegated certificate never outlives the actor's own certificate.
 */
import type { IncomingMessage } from 'node:http';
import { MtlsError, isMtlsError } from '../../errors.js';
import { checkToolGlobs, readGrant, type Grant } from '../../delegation/grant.js';
import { compilePatterns, isPattern } from '../../util/glob.js';
import type { Identity } from '../../identity/identity.js';
import { principalUri } from '../../identity/principal.js';
import { parseDuration } from '../../util/duration.js';
import { verifyCsr } from '../../x509/csr.js';
import { parseCertificate } from '../../x509/certificate.js';
import { parseCrl } from '../../x509/crl.js';
import type { Authority, IssuedCertificate } from '../authority.js';
import { mayActFor, type DelegationActorConfig } from '../delegation-config.js';
import { HttpError, readBody } from './http.js';
import type { RenewPeer } from './peer.js';
import { oidcHttpError } from './login.js';
import { mapClaims } from '../oidc/claims-mapping.js';
import { loginProviders, type LoginProviders } from '../oidc/providers.js';
import { OidcRefused } from '../oidc/refused.js';
import { verifyIdToken } from '../oidc/verify-id-token.js';
import { refuseRevokedPrincipal } from './principal-revoked.js';
import type { StoreTransaction } from '../store/store.js';

/** Default and ceiling of a delegated certificate's lifetime when config.yaml says nothing. */
export const DEFAULT_DELEGATION_TTL_MS = 3600_000;
/** The shortest lifetime a request may ask for (`ttl`): short-lived is the point, but not shorter than a round trip or two. */
export const MIN_DELEGATION_TTL_MS = 10_000;

/** The body of POST /delegate (JSON). */
export interface DelegateRequest {
  /** a delegation grant (`mcp-mtls delegate`) */
  readonly grant?: string;
  /** or: an ID token the actor received for the delegator (its audience: the actor's clientId) */
  readonly idToken?: string;
  /** a PKCS#10 CSR (PEM) for the key the delegated certificate certifies; default the actor's own key */
  readonly csr?: string;
  /** the lifetime asked for, e.g. `30m` (default 1h; capped) */
  readonly ttl?: string;
  /**
   * profile v1.2, with an ID token: the tool globs (the policy's syntax) to limit the delegated
   * certificate to; with a grant the grant says it (`mcp-mtls delegate --tool`). Default: the
   * actor's configured maximum (`delegation.actors[].tools`), else no limit.
   */
  readonly tools?: readonly string[];
}

const refuse = (code: string, message: string, hint?: string) => new HttpError(403, code, message, hint);

/** The body as a {@link DelegateRequest}, or 400. */
export async function readDelegateBody(req: IncomingMessage): Promise<DelegateRequest> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const body = await readBody(req);
  if (type !== 'application/json') throw new HttpError(400, 'BAD_CONTENT_TYPE', 'POST /delegate takes JSON: {"grant": "...", "csr"?: "PEM", "ttl"?: "1h"}', 'send Content-Type: application/json');
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', 'the body is not JSON');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'BAD_REQUEST', 'the body is not a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['grant', 'idToken', 'csr', 'ttl', 'tools'].includes(k)) throw new HttpError(400, 'BAD_REQUEST', `unknown field "${k}"`, 'send grant or idToken, and optionally csr, ttl and tools');
  if (o.tools !== undefined) {
    if (!Array.isArray(o.tools) || !o.tools.every((t) => typeof t === 'string')) throw new HttpError(400, 'BAD_REQUEST', 'tools must be a list of tool globs', 'e.g. "tools": ["read_*", "list_issues"]');
    checkToolGlobs(o.tools as string[], (m) => new HttpError(400, 'BAD_REQUEST', `tools: ${m}`));
    if (o.grant !== undefined) throw new HttpError(400, 'BAD_REQUEST', 'tools come from the grant when the proof is a grant', 'the delegator signs a grant with `mcp-mtls delegate --tool GLOB`');
  }
  for (const k of ['grant', 'idToken', 'csr', 'ttl'] as const) if (o[k] !== undefined && typeof o[k] !== 'string') throw new HttpError(400, 'BAD_REQUEST', `${k} must be a string`);
  if ((o.grant === undefined) === (o.idToken === undefined)) throw new HttpError(400, 'PROOF_REQUIRED', 'POST /delegate needs the delegator\'s proof: exactly one of "grant" and "idToken"', 'have the person sign a grant with `mcp-mtls delegate --to <actor>`, or send the ID token of their sign-in');
  return o as DelegateRequest;
}

/** The config.yaml entry for this actor, or 403. */
function actorEntry(ca: Authority, actor: Identity): DelegationActorConfig {
  const entry = ca.config.delegation?.actors.find((a) => a.actor === `${actor.kind}/${actor.id}`);
  if (!entry) throw refuse('ACTOR_NOT_ALLOWED', `${actor.principal} may not act for anyone here (config.yaml delegation.actors names no ${actor.kind}/${actor.id})`, 'ask the operator to configure the actor in config.yaml delegation.actors');
  return entry;
}

/** The grant, verified, for this actor, signed by a certificate this CA issued, valid and not (yet) revoked. */
async function checkedGrant(ca: Authority, jws: string, actor: Identity, note: Record<string, unknown>): Promise<Grant> {
  let grant: Grant;
  try {
    grant = await readGrant(jws, { trustDomain: ca.config.trustDomain, now: ca.now() });
  } catch (e) {
    if (isMtlsError(e, 'DELEGATION_REFUSED')) throw refuse('GRANT_INVALID', e.message, e.hint);
    throw e;
  }
  Object.assign(note, { delegator: grant.delegator.principal, delegatorSerial: grant.delegator.serial, grantId: grant.id });
  if (grant.actor !== actor.principal) throw refuse('GRANT_INVALID', `the grant is for ${grant.actor}, not for ${actor.principal}`, 'a grant is exchanged only by the actor it names');
  const [stored, crlDer] = await Promise.all([ca.store.readIssued(grant.delegator.serial), ca.store.readCrl('intermediate')]);
  if (!stored || !stored.equals(grant.certificate)) throw refuse('GRANT_INVALID', `the grant's certificate (${grant.delegator.serial}) is not one this CA issued`, 'sign the grant with a certificate of this CA');
  const cert = parseCertificate(grant.certificate);
  const now = ca.now();
  if (now < cert.notBefore || now > cert.notAfter) throw refuse('GRANT_INVALID', `the grant's certificate ${grant.delegator.serial} is not valid now (valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})`, 'renew it and sign a new grant');
  if (crlDer && parseCrl(crlDer).revokedSerials().has(grant.delegator.serial)) throw refuse('DELEGATOR_REVOKED', `the grant's certificate ${grant.delegator.serial} (${grant.delegator.principal}) is revoked`, 'the delegator needs a new certificate, then a new grant');
  return grant;
}

/** At most `allowed` (undefined: anything), and never anything the delegator lacks. */
function narrowed(what: 'team' | 'role', asked: readonly string[] | undefined, has: readonly string[], allowed: readonly string[] | undefined): string[] {
  const want = asked ?? has;
  const extra = want.filter((t) => !has.includes(t));
  if (extra.length > 0) throw refuse('GRANT_EXCEEDS_DELEGATOR', `the grant asks for ${what}${extra.length > 1 ? 's' : ''} ${extra.join(', ')} that the delegator does not have`, `a delegation grants at most the delegator's own ${what}s`);
  return want.filter((t) => allowed === undefined || allowed.includes(t));
}

/**
 * Profile v1.2: the tool globs of the delegated certificate. Asked for (the grant's, or the
 * ID-token request's): each must lie within the actor's maximum when config.yaml sets one: one
 * of its globs exactly, or a tool name (no pattern) one of them matches; else refused (glob
 * inclusion is not decided beyond that). Not asked: the actor's maximum, or no limit.
 */
function toolsFor(asked: readonly string[] | undefined, allowed: readonly string[] | undefined): string[] | undefined {
  if (asked === undefined) return allowed ? [...allowed].sort() : undefined;
  if (allowed === undefined) return [...asked];
  const within = compilePatterns(allowed);
  const outside = asked.filter((g) => !allowed.includes(g) && (isPattern(g) || !within(g)));
  if (outside.length > 0) throw refuse('TOOLS_EXCEED_ACTOR', `the delegation asks for tools ${outside.join(', ')} beyond what config.yaml lets this actor have (${allowed.join(', ')})`, 'ask for tool names or globs among the actor\'s delegation.actors[].tools');
  return [...asked];
}

/** Runs the exchange for an authenticated actor; `note` collects the audit fields. */
export async function delegateForPeer(ca: Authority, peer: RenewPeer, req: IncomingMessage, note: Record<string, unknown>): Promise<IssuedCertificate> {
  const actor = peer.identity;
  note.actor = actor.principal;
  const request = await readDelegateBody(req);
  if (actor.actingFor) throw refuse('DELEGATION_CHAIN', `${actor.principal} authenticated with a delegated certificate (for ${actor.actingFor.principal}): a delegation cannot be delegated further`, 'authenticate with the actor\'s own certificate');
  const entry = actorEntry(ca, actor);
  const proof = request.grant !== undefined ? await grantProof(ca, request.grant, actor, note) : await idTokenProof(ca, request.idToken as string, entry, note);
  const delegator = proof.delegator;
  if (delegator.principal === actor.principal) throw refuse('GRANT_INVALID', 'an actor cannot act for itself');
  if (!mayActFor(entry, delegator)) {
    throw refuse('DELEGATOR_NOT_ALLOWED', `${actor.principal} may not act for ${delegator.principal} (config.yaml delegation.actors[${entry.actor}].for)`, 'ask the operator, or use an actor that may act for this principal');
  }
  const teams = narrowed('team', proof.teams, delegator.teams, entry.teams);
  const roles = narrowed('role', proof.roles, delegator.roles, entry.roles);
  const tools = toolsFor(proof.tools ?? (request.tools ? checkToolGlobs(request.tools, (m) => new HttpError(400, 'BAD_REQUEST', m)) : undefined), entry.tools);
  const now = ca.now().getTime();
  const capMs = Math.min(entry.maxTtl ? parseDuration(entry.maxTtl, 'maxTtl') : Infinity, ca.config.delegation?.maxTtl ? parseDuration(ca.config.delegation.maxTtl, 'maxTtl') : DEFAULT_DELEGATION_TTL_MS);
  let askedMs = DEFAULT_DELEGATION_TTL_MS;
  if (request.ttl !== undefined) {
    try {
      askedMs = parseDuration(request.ttl, 'ttl');
    } catch (e) {
      throw new HttpError(400, 'BAD_REQUEST', (e as Error).message, 'e.g. "ttl": "30m"');
    }
    if (askedMs < MIN_DELEGATION_TTL_MS) throw new HttpError(400, 'BAD_REQUEST', `ttl ${request.ttl} is shorter than ${MIN_DELEGATION_TTL_MS / 1000}s`, 'ask for 10s or more (the default is 1h)');
  }
  // never past the actor's own certificate either: the delegation is the actor's to hold only while it is itself certified
  const end = Math.min(now + Math.min(askedMs, capMs), proof.notAfter.getTime(), peer.cert.notAfter.getTime(), ca.intermediate.notAfter.getTime() - 1000);
  // an end, not a lifetime (the clock moves on before signing), in whole seconds rounded down: the caps hold
  const notAfter = new Date(Math.floor(end / 1000) * 1000);
  const ttlMs = notAfter.getTime() - now;
  // a short lifetime asked for is given (down to 10s); one the grant, the delegator's or the actor's certificate cuts below a minute is refused
  if (ttlMs < Math.min(60_000, askedMs - 1000)) throw refuse('GRANT_INVALID', 'the grant or the delegator\'s certificate ends within a minute', 'sign a new grant');
  const spki = request.csr ? verifyCsr(Buffer.from(request.csr)).spki : peer.cert.spki;
  Object.assign(note, { teams, roles, ...(tools ? { tools } : {}), key: request.csr ? 'csr' : 'actor' });
  try {
    const issued = await ca.issueClient(
      { kind: actor.kind, id: actor.id, teams, roles, actingFor: { kind: delegator.kind, id: delegator.id, ...(tools ? { tools } : {}) }, spki, spkiFrom: request.csr ? 'csr' : 'reused', ...(proof.serial ? { delegatedFrom: proof.serial } : {}), actorSerial: actor.serial, notAfter },
      {
        beforeCommit: async (tx) => {
          // atomic with the commit: an actor revoked a moment ago (its revocation would not have seen this certificate) gets nothing
          if ((await tx.renewalOf(actor.serial)).revoked) throw new MtlsError('CERT_REVOKED', `the actor's certificate ${actor.serial} (${actor.principal}) is revoked`, { details: { actor: true } });
          await proof.beforeCommit(tx);
        },
      },
    );
    Object.assign(note, { newSerial: issued.record.serial, notAfter: issued.record.notAfter });
    return issued;
  } catch (e) {
    if (isMtlsError(e, 'CERT_REVOKED')) throw e.details?.actor ? new HttpError(403, 'CERT_REVOKED', e.message, 'ask the operator for a new certificate') : refuse('DELEGATOR_REVOKED', e.message, 'the delegator needs a new certificate, then a new grant');
    if (e instanceof OidcRefused) throw oidcHttpError(e, 5);
    throw e;
  }
}

/** Who the proof names and what it allows, whichever kind it is. */
interface Proof {
  readonly delegator: { readonly principal: string; readonly trustDomain: string; readonly kind: 'user' | 'service'; readonly id: string; readonly teams: readonly string[]; readonly roles: readonly string[] };
  /** what the proof asks for (undefined: all the delegator's) */
  readonly teams?: readonly string[];
  readonly roles?: readonly string[];
  /** profile v1.2: the tool globs the grant limits the actor to (undefined: no limit asked) */
  readonly tools?: readonly string[];
  /** the delegated certificate ends by then at the latest */
  readonly notAfter: Date;
  /** the delegator's certificate (a grant): revoking it revokes the delegated one */
  readonly serial?: string;
  readonly beforeCommit: (tx: StoreTransaction) => Promise<void>;
}

async function grantProof(ca: Authority, jws: string, actor: Identity, note: Record<string, unknown>): Promise<Proof> {
  const grant = await checkedGrant(ca, jws, actor, note);
  const d = grant.delegator;
  return {
    delegator: d,
    ...(grant.teams ? { teams: grant.teams } : {}),
    ...(grant.roles ? { roles: grant.roles } : {}),
    ...(grant.tools ? { tools: grant.tools } : {}),
    notAfter: new Date(Math.min(d.notAfter.getTime(), grant.expiresAt.getTime())),
    serial: d.serial,
    beforeCommit: async (tx) => {
      // atomic with the commit: a revocation of the delegator a moment ago wins
      if ((await tx.renewalOf(d.serial)).revoked) throw new MtlsError('CERT_REVOKED', `the delegator's certificate ${d.serial} (${d.principal}) is revoked`);
    },
  };
}

/** The login providers of config.yaml, once per authority (their keys are fetched and kept). */
const PROVIDERS = new WeakMap<Authority, LoginProviders | undefined>();

async function idTokenProof(ca: Authority, token: string, entry: DelegationActorConfig, note: Record<string, unknown>): Promise<Proof> {
  if (!PROVIDERS.has(ca)) PROVIDERS.set(ca, loginProviders(ca.config, ca.layout.dir));
  const providers = PROVIDERS.get(ca);
  if (!providers) throw refuse('ID_TOKEN_NOT_ACCEPTED', 'this CA has no identity providers (config.yaml login.providers)', 'send a delegation grant instead');
  if (!entry.clientId) throw refuse('ID_TOKEN_NOT_ACCEPTED', `config.yaml names no clientId for ${entry.actor}: it cannot exchange ID tokens`, 'the operator sets delegation.actors[].clientId to the actor\'s client id at the provider');
  try {
    // the audience must be this actor's own client id: a token another platform (or the CLI) received is refused
    const verified = await verifyIdToken(providers, token, { audience: entry.clientId, now: ca.now() });
    const mapped = mapClaims(verified.provider, verified.claims);
    const principal = principalUri(ca.config.trustDomain, 'user', mapped.id);
    Object.assign(note, { delegator: principal, provider: verified.provider.name, idpSubject: verified.subject });
    const who = { provider: verified.provider.name, idpSubject: verified.subject };
    const iat = verified.claims.iat as number; // required by verifyIdToken
    await refuseRevokedPrincipal(ca.store, principal, iat, who); // early: no signing for a revoked person's old token
    return {
      delegator: { principal, trustDomain: ca.config.trustDomain, kind: 'user', id: mapped.id, teams: mapped.teams, roles: mapped.roles },
      notAfter: new Date(verified.claims.exp * 1000), // the token's own end (expiresAt adds the clock skew, for the replay record)
      beforeCommit: async (tx) => {
        // again in the issuing transaction: a `revoke --principal` committed meanwhile wins
        await refuseRevokedPrincipal(tx, principal, iat, who);
        if (!(await tx.useOnce(verified.replayKey, verified.expiresAt, ca.now()))) {
          throw new OidcRefused('OIDC_REPLAY', 'this ID token was used already (an ID token is traded once)', 'sign the person in again for a new ID token', { provider: verified.provider.name, idpSubject: verified.subject });
        }
      },
    };
  } catch (e) {
    if (e instanceof OidcRefused) throw oidcHttpError(e, 5);
    throw e;
  }
}
