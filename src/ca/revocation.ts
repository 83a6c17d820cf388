/**
 * Revoking certificates and keeping the CRLs fresh. Every step runs inside the store's
 * lock, so concurrent `revoke` runs each get their own, strictly increasing cRLNumber and
 * no revocation is lost. The revocation record is the commit point; the CRL written right
 * after it is derived state (a crash in between is repaired by the next `crl`, which sees
 * an active revocation missing from the CRL and re-signs).
 */
import fs from 'node:fs';
import { MtlsError } from '../errors.js';
import { decodeKeyIdentifier, parseCertificate } from '../x509/certificate.js';
import { parseCrl, REVOCATION_REASONS, type RevocationReason } from '../x509/crl.js';
import { keyIdentifier, type Signer } from '../x509/keys.js';
import { OID } from '../x509/oids.js';
import { readCertificates } from '../x509/pem.js';
import { actor, type Authority } from './authority.js';
import { intermediateSigner, rootSigner as rootKeySigner } from './ca-keys.js';
import { buildCrl, crlEntries, crlState, DEFAULT_CRL_TTL, isDue, type CrlIssuer, type CrlState } from './crl-signing.js';
import { parseDuration } from '../util/duration.js';
import { statusAt, type IssuedRecord, type RevokedRecord, type StoreLookups, type StoreTransaction } from './store/store.js';
import { assertPrincipalId, type PrincipalKind } from '../identity/names.js';
import { parsePrincipalUri, principalUri } from '../identity/principal.js';

export function parseReason(s: string): RevocationReason {
  if (s in REVOCATION_REASONS && s !== 'cACompromise') return s as RevocationReason;
  throw new MtlsError('BAD_ARGUMENT', `unknown revocation reason "${s}"`, {
    hint: 'use one of: unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation',
  });
}

/** A serial in lowercase hex, from a serial typed by a person or a certificate file. */
export function resolveSerial(target: string): string {
  if (fs.existsSync(target)) return parseCertificate(readCertificates(fs.readFileSync(target))[0] as Buffer).serial;
  const hex = target.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,40}$/.test(hex)) {
    throw new MtlsError('FILE_NOT_FOUND', `${target} is neither a certificate file nor a serial number`, { hint: 'see `mcp-mtls list` for serials' });
  }
  return hex;
}

/** What StoreLookups.lookup found for `serial`, or NOT_FOUND when the index holds no issuance of it. */
export function foundIssued(found: { issued?: IssuedRecord; revoked?: RevokedRecord }, serial: string, dir: string): { issued: IssuedRecord; revoked?: RevokedRecord } {
  const { issued, revoked } = found;
  if (!issued) {
    throw new MtlsError('NOT_FOUND', `no certificate with serial ${serial} was issued by the CA in ${dir}`, { hint: 'see `mcp-mtls list` for serials' });
  }
  return revoked ? { issued, revoked } : { issued };
}

/**
 * A serial this CA issued whose record is gone (`tidy` removes certificates that expired; they
 * stay retired): it cannot be revoked, and revoking it no longer reaches its renewals, so the
 * error names the renewal the index still holds (revoking that one revokes its own renewals).
 */
async function tidiedError(tx: StoreLookups, serial: string): Promise<MtlsError> {
  const next = await tx.successorOf(serial);
  let newest = next;
  for (let n = next, i = 0; n && i < 10_000; n = await tx.successorOf(n.serial), i++) newest = n;
  const renewal = next
    ? `; it was renewed as ${next.serial}, which is still in the index: revoke ${next.serial} (that revokes its renewals too${newest && newest !== next ? `, up to ${newest.serial}` : ''})`
    : '; the index holds no renewal of it: if its key is compromised, revoke the certificates of the same principal that still use it (`mcp-mtls list`)';
  return new MtlsError('NOT_FOUND', `certificate ${serial} was issued by this CA, but its record is no longer in the index (\`mcp-mtls tidy\` removed it after it expired)${renewal}`, {
    hint: next ? `mcp-mtls revoke ${next.serial}` : 'an expired certificate is refused anyway; see `mcp-mtls list` for the valid ones',
    details: { serial, tidied: true, ...(next ? { renewedAs: next.serial } : {}) },
  });
}

function intermediateIssuer(ca: Authority): CrlIssuer {
  return { subjectName: ca.issuer.subjectName, keyId: ca.issuer.keyId };
}

function rootIssuer(ca: Authority): CrlIssuer {
  const ski = ca.root.extensions.get(OID.subjectKeyIdentifier);
  const keyId = ski ? Buffer.from(decodeKeyIdentifier(OID.subjectKeyIdentifier, ski.value) as string, 'hex') : keyIdentifier(ca.root.spki);
  return { subjectName: ca.root.subjectName, keyId };
}

function crlTtlMs(ca: Authority, ttlMs?: number): number {
  return ttlMs ?? parseDuration(ca.config.defaults.crlTtl ?? DEFAULT_CRL_TTL, 'crlTtl');
}

/**
 * Signs and stores the intermediate's CRL. `number` comes from tx.nextCrlNumber, drawn before
 * `index` was read (in a database store drawing it serialises CRL signing across processes).
 */
async function signIntermediateCrl(ca: Authority, tx: StoreTransaction, number: bigint, signer: Signer, ttlMs?: number): Promise<Buffer> {
  const now = ca.now();
  const nextUpdate = new Date(Math.min(now.getTime() + crlTtlMs(ca, ttlMs), ca.intermediate.notAfter.getTime()));
  const entries = crlEntries(await tx.activeRevocations(now));
  const der = buildCrl(intermediateIssuer(ca), signer, { number, now, nextUpdate: new Date(Math.floor(nextUpdate.getTime() / 1000) * 1000), entries });
  await tx.writeCrl('intermediate', der);
  return der;
}

/** The root's CRL: no revoked intermediates yet; valid until the intermediate expires (the root key goes offline). */
export async function signRootCrl(ca: Authority, tx: StoreTransaction, signer: Signer): Promise<Buffer> {
  const der = buildCrl(rootIssuer(ca), signer, { number: await tx.nextCrlNumber('root'), now: ca.now(), nextUpdate: ca.intermediate.notAfter, entries: [] });
  await tx.writeCrl('root', der);
  return der;
}

/** A certificate revoked on its own account (not as a renewal or delegation of another), with what its audit line adds. */
interface Root {
  readonly issued: IssuedRecord;
  readonly audit?: Readonly<Record<string, string>>;
}

/**
 * Revokes `roots` and what follows from each, inside `tx`: (for every reason but `superseded`) the
 * certificates that renewed it, and renewed those; the delegated certificates granted with any of
 * them; and (but not for `superseded`) those exchanged with any of them as the actor. Skips what is
 * revoked already. `records[i]` is roots[i]'s revocation for the roots not revoked before.
 */
async function revokeWalk(tx: StoreTransaction, roots: readonly Root[], reason: RevocationReason, by: string, now: Date): Promise<{ records: RevokedRecord[]; alsoRevoked: string[] }> {
  const revokedAt = new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString();
  const records: RevokedRecord[] = [];
  const alsoRevoked: string[] = [];
  const done = new Set<string>();
  const revoke = async (rec: IssuedRecord, fields: Readonly<Record<string, string>>, also: boolean) => {
    const r: RevokedRecord = { op: 'revoke', serial: rec.serial, reason, revokedAt };
    await tx.commitRevocation(r, { time: now.toISOString(), event: 'cert.revoke', actor: by, serial: rec.serial, reason, ...fields, type: rec.type, ...(rec.principal ? { principal: rec.principal } : { id: rec.id }), ...(rec.actingFor ? { actingFor: rec.actingFor } : {}) });
    records.push(r);
    done.add(rec.serial);
    if (also) alsoRevoked.push(rec.serial);
  };
  const chains: string[] = [];
  for (const root of roots) {
    if (done.has(root.issued.serial) || (await tx.lookup(root.issued.serial)).revoked) continue;
    await revoke(root.issued, root.audit ?? {}, records.length > 0);
    chains.push(root.issued.serial);
  }
  // `superseded` is what replacing a certificate says (renew --revoke-old): its successor stays
  for (const start of reason === 'superseded' ? [] : [...chains]) {
    for (let from = start, next = await tx.successorOf(from), i = 0; next && i < 100_000; from = next.serial, next = await tx.successorOf(from), i++) {
      if (done.has(next.serial) || (await tx.lookup(next.serial)).revoked) continue;
      await revoke(next, { renewedFrom: from }, true);
      chains.push(next.serial);
    }
  }
  // revoking a person revokes what they delegated: every delegated certificate granted with a
  // serial revoked here (whatever the reason: a superseded certificate no longer vouches either);
  // and revoking an actor (a compromised platform) revokes the delegated certificates it was given
  // (but not when `superseded`: the same holder replaced its certificate, as for renewals above)
  for (const from of chains) {
    const actorOf = reason === 'superseded' ? [] : await tx.exchangedWith(from);
    for (const d of [...(await tx.delegatedFrom(from)), ...actorOf]) {
      if (done.has(d.serial) || (await tx.lookup(d.serial)).revoked) continue;
      await revoke(d, (d as { actorSerial?: string }).actorSerial === from ? { actorSerial: from } : { delegatedFrom: from }, true);
    }
  }
  return { records, alsoRevoked };
}

/**
 * The still-valid certificates that `serial` renewed from (its `renewedFrom`, and theirs, ...) that
 * certify the same public key as `serial`: a renewal that kept the key is the same key, so a
 * keyCompromise of one is a compromise of each. The DER is read from the store (never rewritten).
 */
async function sameKeyPredecessors(ca: Authority, tx: StoreTransaction, serial: string, now: Date): Promise<IssuedRecord[]> {
  const der = await ca.store.readIssued(serial);
  if (!der) return [];
  const spki = parseCertificate(der).spki;
  const out: IssuedRecord[] = [];
  const seen = new Set([serial]);
  let from = (await tx.lookup(serial)).issued?.renewedFrom;
  for (let i = 0; from && !seen.has(from) && i < 10_000; i++) {
    seen.add(from);
    const { issued, revoked } = await tx.lookup(from);
    if (!issued) break; // tidied: expired, refused anyway
    const theirs = await ca.store.readIssued(from);
    if (!revoked && statusAt(issued, undefined, now) === 'valid' && theirs && Buffer.from(parseCertificate(theirs).spki).equals(Buffer.from(spki))) out.push(issued);
    from = issued.renewedFrom;
  }
  return out;
}

/** What {@link revokePrincipal} did. */
export interface RevokePrincipalResult {
  readonly principal: string;
  /** the principal's own certificates revoked (valid before; across renewals), in the order issued */
  readonly certificates: readonly IssuedRecord[];
  /** the certificates revoked with them (renewals recorded since, what they delegated, the delegated certificates acting for the principal however obtained: with a grant or an ID token), in order */
  readonly alsoRevoked: readonly string[];
  readonly reason: RevocationReason;
  readonly revokedAt: string;
  /** the ids of the principal's enrollment tokens not used yet, removed: they enroll nobody now */
  readonly tokensDropped: readonly string[];
  readonly crlNumber: string;
}

/**
 * The principal URI that `who` names for this CA: `user/ID`, `service/ID` or the whole
 * `spiffe://<trust-domain>/<kind>/<id>` of this CA's trust domain.
 */
export function resolvePrincipal(ca: Authority, who: string): { uri: string; kind: PrincipalKind; id: string } {
  const short = /^(user|service)\/(.+)$/.exec(who);
  if (short) {
    const kind = short[1] as PrincipalKind;
    const id = assertPrincipalId(short[2] as string, kind);
    return { uri: principalUri(ca.config.trustDomain, kind, id), kind, id };
  }
  const p = parsePrincipalUri(who);
  if (p && p.trustDomain === ca.config.trustDomain) return { uri: who, kind: p.kind, id: p.id };
  throw new MtlsError('BAD_ARGUMENT', p ? `${who} is of the trust domain ${p.trustDomain}, not this CA's (${ca.config.trustDomain})` : `"${who}" is not a principal: name it user/ID or service/ID`, {
    hint: 'e.g. --principal user/bob, or --principal service/chat-platform',
  });
}

/**
 * Revokes every currently valid certificate of one principal (their own, across renewals),
 * everything each one delegated or was given as an actor, and every valid delegated certificate
 * acting for the principal (profile v1.1), also one a platform obtained with the principal's ID
 * token (no certificate of theirs signed a grant for it), in one locked step with one re-signed
 * CRL: what to do when a person leaves or a workload is retired, since online renewal leaves the
 * renewed certificate valid. Records the principal's revocation in the same transaction (the
 * store's {@link StoreTransaction.recordPrincipalRevocation}): `ca serve` refuses its ID tokens
 * issued until then at /login/sign and POST /delegate (PRINCIPAL_REVOKED), and removes its
 * enrollment tokens not used yet. Refuses `superseded` (nothing replaces them). A principal with
 * no valid certificate (none ever, or all revoked or expired) is revoked all the same: its
 * record and its tokens are what stop it then.
 */
export async function revokePrincipal(ca: Authority, who: string, reason: RevocationReason, by: string = actor()): Promise<RevokePrincipalResult> {
  const { uri, kind, id } = resolvePrincipal(ca, who);
  if (reason === 'superseded') {
    throw new MtlsError('BAD_ARGUMENT', `revoking every certificate of ${uri} as superseded would leave nothing that supersedes them`, { hint: 'use another reason, e.g. --reason affiliationChanged or cessationOfOperation' });
  }
  const signer = await intermediateSigner(ca);
  return ca.store.transaction(async (tx) => {
    const number = await tx.nextCrlNumber('intermediate'); // first: serialises with other revocations
    const now = ca.now();
    // the principal's record first, before reading what to revoke: an ID token for it issued (iat)
    // until now is refused from the commit on (ca/serve/principal-revoked.ts), and a database
    // store's issuance that checked it before has committed and is found below, or waits for this
    const revokedAt = new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString();
    await tx.recordPrincipalRevocation({ principal: uri, revokedAt, reason });
    // and its enrollment tokens not used yet, before reading what to revoke (see dropUnusedTokens)
    const tokensDropped = await tx.dropUnusedTokens(kind, id);
    if (tokensDropped.length) await tx.appendAudit(tokensDropped.map((tokenId) => ({ time: now.toISOString(), event: 'token.drop', actor: by, tokenId, principal: uri, reason })));
    const own = (await tx.listIssued({ ...(kind === 'user' ? { user: id } : { service: id }), type: 'client', status: 'valid', now })).filter((r) => r.issued.principal === uri && !r.revoked);
    // the delegated certificates acting for the principal, however obtained: with a grant one of
    // its certificates signed (their delegatedFrom, also reached by the walk) or with its ID token
    // (no delegatedFrom: only actingFor says whose they are)
    const actingFor = (await tx.listIssued({ actingFor: uri, type: 'client', status: 'valid', now })).filter((r) => !r.revoked);
    const roots = [...own, ...actingFor].map((r) => ({ issued: r.issued, audit: { revokedPrincipal: uri } }));
    const { records } = await revokeWalk(tx, roots, reason, by, now);
    const mine = new Set(own.map((r) => r.issued.serial));
    const done = new Set(records.map((r) => r.serial));
    const crl = await signIntermediateCrl(ca, tx, number, signer);
    return {
      principal: uri,
      certificates: own.map((r) => r.issued).filter((r) => done.has(r.serial)),
      alsoRevoked: records.map((r) => r.serial).filter((s) => !mine.has(s)),
      reason,
      revokedAt: records[0]?.revokedAt ?? revokedAt,
      tokensDropped,
      crlNumber: String(parseCrl(crl).number),
    };
  });
}

/** What {@link revokeCertificate} did: the revocation it recorded and the CRL that now lists it. */
export interface RevokeResult {
  /** the revocation as recorded: serial, reason, revokedAt (ISO 8601, whole seconds) */
  readonly record: RevokedRecord;
  /** the CA's record of the certificate revoked */
  readonly issued: IssuedRecord;
  /** the cRLNumber of the intermediate's CRL re-signed with it, in decimal */
  readonly crlNumber: string;
  /** the certificates that renewed it (and renewed those, ...), with keyCompromise those it renewed from that certify the same key, and those delegated with any of them (profile v1.1), revoked with it, in order */
  readonly alsoRevoked: readonly string[];
}

/**
 * Revokes one certificate, and (for every reason but `superseded`) the certificates that renewed
 * it, and those that renewed them: online renewal keeps a key holder's chain going, so revoking
 * the serial the operator knows must end that chain too. Re-signs the intermediate's CRL, all in
 * one locked step. `by` is who asks, for the audit lines (default: the OS user; the console passes the operator's principal).
 */
export async function revokeCertificate(ca: Authority, serial: string, reason: RevocationReason, by: string = actor()): Promise<RevokeResult> {
  const signer = await intermediateSigner(ca);
  return ca.store.transaction(async (tx) => {
    const number = await tx.nextCrlNumber('intermediate'); // first: serialises with other revocations
    const found = await tx.lookup(serial);
    if (!found.issued && (await tx.serialExists(serial))) throw await tidiedError(tx, serial);
    const { issued, revoked } = foundIssued(found, serial, ca.layout.dir);
    if (revoked) {
      throw new MtlsError('ALREADY_REVOKED', `certificate ${serial} (${issued.principal ?? issued.id}) was already revoked at ${revoked.revokedAt} (${revoked.reason})`, {
        hint: 'nothing to do; `mcp-mtls list --status revoked` shows every revoked certificate',
      });
    }
    const now = ca.now();
    // a keyCompromise is of the key: the certificates this one renewed from that still certify the same key go too
    const sameKey = reason === 'keyCompromise' ? await sameKeyPredecessors(ca, tx, serial, now) : [];
    const roots: Root[] = [{ issued }, ...sameKey.map((p) => ({ issued: p, audit: { sameKeyAs: serial } }))];
    const { records, alsoRevoked } = await revokeWalk(tx, roots, reason, by, now);
    const record = records[0] as RevokedRecord;
    const crl = await signIntermediateCrl(ca, tx, number, signer); // its lookups see the revocations just committed
    return { record, issued, crlNumber: String(parseCrl(crl).number), alsoRevoked };
  });
}

/**
 * What {@link writeCrls} did, per CRL: `signed` whether this run signed a new one, `der` the CRL
 * now stored (DER, new or not), `state` its number, dates and whether it is due or expired.
 */
export interface CrlRunResult {
  readonly intermediate: { readonly signed: boolean; readonly der: Buffer; readonly state: CrlState };
  /** `note`: set when the root CRL is due but the root key is offline (what to do, for a person) */
  readonly root: { readonly signed: boolean; readonly der: Buffer; readonly state: CrlState; readonly note?: string };
}

/**
 * `mcp-mtls crl`: re-signs the intermediate's CRL (always, or with `ifDue` only once two
 * thirds of its validity passed), and the root's when the root key is here. Asks for no key
 * when nothing is due.
 */
export async function writeCrls(ca: Authority, options: { ifDue?: boolean; ttlMs?: number } = {}): Promise<CrlRunResult> {
  const rootKeyHere = fs.existsSync(ca.layout.rootKey);
  const due = async (which: 'root' | 'intermediate') => {
    const stored = await ca.store.readCrl(which);
    if (!stored) return true;
    return !options.ifDue || isDue(parseCrl(stored), ca.now(), which === 'intermediate' ? crlEntries(await ca.store.activeRevocations(ca.now())) : undefined);
  };
  const interSigner = (await due('intermediate')) ? await intermediateSigner(ca) : undefined;
  const rootSigner = rootKeyHere && (await due('root')) ? await rootKeySigner(ca) : undefined;
  return ca.store.transaction(async (tx) => {
    const interNumber = interSigner ? await tx.nextCrlNumber('intermediate') : undefined; // before reading the index
    const now = ca.now();
    const active = crlEntries(await tx.activeRevocations(now)); // after nextCrlNumber: every earlier revocation
    const interSigned = interSigner ? await signIntermediateCrl(ca, tx, interNumber as bigint, interSigner, options.ttlMs) : undefined;
    const rootSigned = rootSigner ? await signRootCrl(ca, tx, rootSigner) : undefined;
    const interDer = interSigned ?? ((await tx.readCrl('intermediate')) as Buffer);
    const rootDer = rootSigned ?? (await tx.readCrl('root'));
    if (!rootDer) {
      throw new MtlsError('CA_KEY_MISSING', 'there is no root CRL and the root key is offline', { hint: 'bring private/root.key back once and run `mcp-mtls crl`' });
    }
    const rootState = crlState(parseCrl(rootDer), now);
    return {
      intermediate: { signed: interSigned !== undefined, der: interDer, state: crlState(parseCrl(interDer), now, active) },
      root: {
        signed: rootSigned !== undefined,
        der: rootDer,
        state: rootState,
        ...(!rootKeyHere && rootState.due ? { note: `the root key is offline and the root CRL is due (valid until ${rootState.nextUpdate}): bring the root key back and run \`mcp-mtls crl\`` } : {}),
      },
    };
  });
}

/** How long each stored CRL has left (for `ca status`, `expiring`, `list --json`). */
export async function crlStatus(ca: Authority): Promise<{ root?: CrlState; intermediate?: CrlState }> {
  const now = ca.now();
  const out: { root?: CrlState; intermediate?: CrlState } = {};
  const root = await ca.store.readCrl('root');
  const inter = await ca.store.readCrl('intermediate');
  if (root) out.root = crlState(parseCrl(root), now);
  if (inter) out.intermediate = crlState(parseCrl(inter), now, crlEntries(await ca.store.activeRevocations(now)));
  return out;
}
