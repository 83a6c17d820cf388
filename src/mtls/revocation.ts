/**
 * Revocation for servers: the serials of the loaded, signature-verified CRLs, in memory,
 * checked by the authentication step after the handshake. Not OpenSSL's `crl` option: it
 * re-processes the whole CRL on every full handshake (+0.3 ms at 10k entries, +2.7 ms and
 * 37 MiB per context at 100k) and turns a CRL past its nextUpdate into an outage. Here an
 * expired CRL still applies (the revocations in it are still true) and is reported loudly.
 */
import crypto from 'node:crypto';
import { MtlsError } from '../errors.js';
import { parseCertificate } from '../x509/certificate.js';
import { caKeyOf, nameOfCaKey } from './ca-key.js';
import { parseCrl, verifyCrlSignature } from '../x509/crl.js';
import { looksLikePem, pemDecodeAll } from '../x509/pem.js';

/** One loaded CRL, for people, health checks and metrics (see {@link RevocationState.crls}). */
export interface CrlInfo {
  /** The subject of the CA certificate that signed it, as Node's `X509Certificate.subject` gives it (`CN=...` lines). */
  readonly issuer: string;
  /** Its cRLNumber in decimal; undefined when the CRL has none. */
  readonly number: string | undefined;
  readonly thisUpdate: Date;
  /** When a fresh CRL is due; undefined when the CRL names none. Past it, the CRL still applies and is warned about. */
  readonly nextUpdate: Date | undefined;
  /** How many distinct serials it revokes. */
  readonly entries: number;
  /** where it came from: the URL it was fetched from; absent for CRLs given as files or buffers */
  readonly source?: string;
  /** a newer CRL of the same CA is loaded as well: its serials still count, its expiry is not warned about */
  readonly superseded?: boolean;
}

/**
 * The revocation data a server checks clients against: the revoked serials of every loaded,
 * signature-verified CRL. Built by {@link buildRevocation}; read from a running server with
 * `MtlsServer.revocation()`; passed to `createAuthenticator` and {@link crlWarnings}.
 * Immutable: reloading builds a new one.
 */
export interface RevocationState {
  /**
   * CA key -> revoked serials (lowercase hex): the union of all CRLs that CA signed. The CA key
   * is the signing certificate's subject name (DER, hex), "/", the SHA-256 of its public key
   * (SubjectPublicKeyInfo DER, hex), never the name alone: a CA of another tenant can carry the
   * same name, and its CRLs must not revoke this CA's certificates. A CA with a loaded CRL has
   * an entry, empty or not.
   */
  readonly byCa: ReadonlyMap<string, ReadonlySet<string>>;
  /** Every loaded CRL (given as files or fetched), superseded ones included. */
  readonly crls: readonly CrlInfo[];
  /**
   * CAs (by CA key) that named a CRL URL (`crlFromCertificates`) of which no CRL is loaded yet,
   * with those URLs: their certificates are refused (`revocation_unknown`) until one is.
   */
  readonly awaiting?: ReadonlyMap<string, readonly string[]>;
}

export const EMPTY_REVOCATION: RevocationState = { byCa: new Map(), crls: [] };

/** CRL blocks (PEM, several per file allowed) or one DER CRL. */
export function crlDers(data: Uint8Array): Buffer[] {
  if (!looksLikePem(data)) return [Buffer.from(data)];
  return pemDecodeAll(Buffer.from(data).toString('utf8'))
    .filter((b) => b.label === 'X509 CRL' || b.label === 'CRL')
    .map((b) => b.der);
}

/** A CRL whose signature verified against one of the trusted CA certificates. */
export interface VerifiedCrl {
  readonly der: Buffer;
  /** the CA that signed it: its CA key (subject name DER hex / SHA-256 of its public key, ca-key.ts) */
  readonly caKey: string;
  readonly issuerNameHex: string;
  /** the signing CA's subject, for people */
  readonly issuer: string;
  readonly number: bigint | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly serials: ReadonlySet<string>;
  readonly source?: string;
}

export interface CrlVerifier {
  /** every CRL in `data` (PEM or DER), each verified; throws CRL_INVALID when a trusted CA did not sign one */
  verify(data: Uint8Array, source?: string): VerifiedCrl[];
}

/** Prepares the CA certificates (root and intermediates) once; CRLs are then checked against them. */
export function createCrlVerifier(caCertificates: readonly Uint8Array[]): CrlVerifier {
  const cas = caCertificates.map((der) => {
    const x509 = new crypto.X509Certificate(der);
    return { x509, nameHex: issuerNameOf(x509).toString('hex'), caKey: caKeyOf(x509.raw) };
  });
  return {
    verify(data, source) {
      return crlDers(data).map((der) => {
        const crl = parseCrl(der);
        const issuerNameHex = crl.issuerName.toString('hex');
        // the signer is the CA whose key verifies it: among same-named CAs (another tenant's
        // `ca init --name`), the name alone would pick the wrong one
        const signer = cas.find((c) => c.nameHex === issuerNameHex && verifyCrlSignature(crl, c.x509.publicKey));
        if (!signer) {
          throw new MtlsError('CRL_INVALID', 'a CRL is not signed by any trusted CA certificate', { hint: 'load the CRLs of this CA (`mcp-mtls crl --out DIR/`), and its root and intermediate certificates' });
        }
        // each CRL is taken as the whole of its CA's revocations (it supersedes the one before):
        // a delta or partitioned CRL, newer than the full one, would un-revoke what only that one lists
        if (crl.notComplete) {
          throw new MtlsError('CRL_INVALID', `a CRL of ${signer.x509.subject.replaceAll('\n', ', ')} cannot be used: ${crl.notComplete}`, { hint: 'give the CA\'s complete CRL (no delta CRLs, no partitioned CRLs)' });
        }
        return {
          der,
          caKey: signer.caKey,
          issuerNameHex,
          issuer: signer.x509.subject,
          number: crl.number,
          thisUpdate: crl.thisUpdate,
          nextUpdate: crl.nextUpdate,
          serials: crl.revokedSerials(),
          ...(source ? { source } : {}),
        };
      });
    },
  };
}

/** >0 when `a` is newer than `b` (both of one CA): by cRLNumber, or by thisUpdate when one has none. */
export function compareCrls(a: Pick<VerifiedCrl, 'number' | 'thisUpdate'>, b: Pick<VerifiedCrl, 'number' | 'thisUpdate'>): number {
  if (a.number !== undefined && b.number !== undefined) return a.number > b.number ? 1 : a.number < b.number ? -1 : 0;
  return a.thisUpdate.getTime() - b.thisUpdate.getTime();
}

/**
 * The revoked sets of verified CRLs. Several CRLs of one CA (a file and a fetched copy) add up:
 * a serial revoked in any of them is revoked; the older ones are marked superseded.
 */
export function revocationOf(verified: readonly VerifiedCrl[]): RevocationState {
  const byCa = new Map<string, Set<string>>();
  const newest = new Map<string, VerifiedCrl>();
  for (const v of verified) {
    const set = byCa.get(v.caKey) ?? new Set<string>();
    for (const s of v.serials) set.add(s);
    byCa.set(v.caKey, set);
    const n = newest.get(v.caKey);
    if (!n || compareCrls(v, n) > 0) newest.set(v.caKey, v);
  }
  const crls: CrlInfo[] = verified.map((v) => ({
    issuer: v.issuer,
    number: v.number?.toString(),
    thisUpdate: v.thisUpdate,
    nextUpdate: v.nextUpdate,
    entries: v.serials.size,
    ...(v.source ? { source: v.source } : {}),
    ...(newest.get(v.caKey) !== v && compareCrls(newest.get(v.caKey)!, v) > 0 ? { superseded: true } : {}),
  }));
  return { byCa, crls };
}

/**
 * Builds the revoked sets from CRLs, each verified against one of the CA certificates (root
 * or intermediate) that issued it; a CRL no trusted CA signed is refused.
 */
export function buildRevocation(crlFiles: readonly Uint8Array[], caCertificates: readonly Uint8Array[]): RevocationState {
  const verifier = createCrlVerifier(caCertificates);
  return revocationOf(crlFiles.flatMap((f) => verifier.verify(f)));
}

/** The subject Name DER of a certificate (what a CRL it signs names as issuer). */
const issuerNameOf = (cert: crypto.X509Certificate): Buffer => parseCertificate(cert.raw).subjectName;

/** Whether the CA with this CA key (ca-key.ts) revoked `serial`. */
export function isRevoked(state: RevocationState, caKey: string, serial: string): boolean {
  return state.byCa.get(caKey)?.has(serial) ?? false;
}

/** Whether a CRL of some CA with this subject name (DER hex) is loaded, whatever its key. */
export function hasCrlNamed(state: RevocationState, nameHex: string): boolean {
  for (const k of state.byCa.keys()) if (nameOfCaKey(k) === nameHex) return true;
  return false;
}

/** CRLs past (or within `withinMs` of) their nextUpdate: to log, expose in health, and alert on. */
export function crlWarnings(state: RevocationState, now: Date, withinMs = 86_400_000): string[] {
  const out: string[] = [];
  for (const c of state.crls) {
    if (!c.nextUpdate || c.superseded) continue;
    const left = c.nextUpdate.getTime() - now.getTime();
    if (left <= 0) out.push(`the CRL of ${c.issuer} (#${c.number}) expired at ${c.nextUpdate.toISOString()}: it still applies, but fetch a fresh one (mcp-mtls crl)${c.source ? `; it came from ${c.source}` : ''}`);
    else if (left <= withinMs) out.push(`the CRL of ${c.issuer} (#${c.number}) expires at ${c.nextUpdate.toISOString()}, in ${Math.round(left / 60_000)} minutes`);
  }
  return out;
}
