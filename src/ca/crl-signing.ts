/**
 * Which CRLs the CA signs, with what in them, and when they are due.
 *
 * - The intermediate's CRL lists revoked client and server certificates until they expire
 *   (RFC 5280 allows dropping expired entries; short-lived certificates keep it short).
 * - The root's CRL lists revoked intermediates (none, until an intermediate is retired). It
 *   is signed at `ca init` to last until the intermediate expires, because the root key is
 *   meant to go offline and Node checks a CRL for every CA in the chain.
 * - A CRL is due once two thirds of its validity have passed (`crl --if-due`, from cron).
 */
import { MtlsError } from '../errors.js';
import { parseCrl, signCrl, type CrlEntry, type ParsedCrl, type RevocationReason } from '../x509/crl.js';
import type { Signer } from '../x509/keys.js';
import type { IndexRecord, RevokedRecord } from './store/store.js';

export const DEFAULT_CRL_TTL = '7d';

export interface CrlIssuer {
  readonly subjectName: Uint8Array;
  readonly keyId: Uint8Array;
}

/** CRL entries of revocation records (StoreLookups.activeRevocations gives the ones a CRL lists). */
export function crlEntries(revoked: readonly RevokedRecord[]): CrlEntry[] {
  return revoked.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revokedAt), reason: r.reason as RevocationReason }));
}

/** Revoked certificates still inside their validity at `now`, oldest revocation first, from a whole index (tidy; the stores answer StoreLookups.activeRevocations without one). */
export function activeRevocations(index: readonly IndexRecord[], now: Date): CrlEntry[] {
  const notAfter = new Map<string, number>();
  for (const r of index) if (r.op === 'issue') notAfter.set(r.serial, Date.parse(r.notAfter));
  const out: CrlEntry[] = [];
  for (const r of index) {
    if (r.op !== 'revoke') continue;
    const end = notAfter.get(r.serial);
    if (end === undefined || end < now.getTime()) continue;
    out.push({ serial: r.serial, revokedAt: new Date(r.revokedAt), reason: r.reason as RevocationReason });
  }
  return out;
}

export function nextCrlNumber(previous: Buffer | undefined): bigint {
  if (!previous) return 1n;
  const crl = parseCrl(previous);
  if (crl.number === undefined) {
    throw new MtlsError('STORE_CORRUPT', 'the stored CRL has no cRLNumber', { hint: 'restore crl/ from backup' });
  }
  return crl.number + 1n;
}

export function buildCrl(issuer: CrlIssuer, signer: Signer, p: { number: bigint; now: Date; nextUpdate: Date; entries: readonly CrlEntry[] }): Buffer {
  const thisUpdate = new Date(Math.floor(p.now.getTime() / 1000) * 1000);
  return signCrl({ issuerName: issuer.subjectName, issuerKeyId: issuer.keyId, number: p.number, thisUpdate, nextUpdate: p.nextUpdate, entries: p.entries }, signer);
}

export interface CrlState {
  readonly number: string;
  readonly thisUpdate: string;
  readonly nextUpdate: string;
  readonly entries: number;
  /** ms until nextUpdate (negative: expired) */
  readonly remainingMs: number;
  readonly due: boolean;
  readonly expired: boolean;
}

/** Two thirds of the validity passed, or the CRL is missing an active revocation. */
export function isDue(crl: ParsedCrl, now: Date, active?: readonly CrlEntry[]): boolean {
  const start = crl.thisUpdate.getTime();
  const end = crl.nextUpdate?.getTime() ?? start;
  if (now.getTime() >= start + ((end - start) * 2) / 3) return true;
  if (active) {
    const listed = new Set(crl.entries.map((e) => e.serial));
    if (active.some((e) => !listed.has(e.serial))) return true;
  }
  return false;
}

export function crlState(crl: ParsedCrl, now: Date, active?: readonly CrlEntry[]): CrlState {
  const next = crl.nextUpdate ?? crl.thisUpdate;
  return {
    number: String(crl.number ?? 0n),
    thisUpdate: crl.thisUpdate.toISOString(),
    nextUpdate: next.toISOString(),
    entries: crl.entries.length,
    remainingMs: next.getTime() - now.getTime(),
    due: isDue(crl, now, active),
    expired: next.getTime() <= now.getTime(),
  };
}
