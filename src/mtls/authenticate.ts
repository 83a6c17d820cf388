/**
 * Authentication: the client certificate of a TLS connection to an Identity, once per
 * connection (identity.md reader rules), cached on the socket. The per-request path is one
 * WeakMap lookup: no ASN.1, no I/O.
 *
 * The handshake completes even for a bad certificate (default mode), so that the client
 * can be told why in a 401 body instead of a bare socket error; OpenSSL's verdict is in
 * `authorizationError`, mapped here to a reason a person can act on.
 */
import crypto from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { isMtlsError } from '../errors.js';
import { checkClientCertificate, identityFromParsed } from '../identity/decode.js';
import type { Identity } from '../identity/identity.js';
import { parseCertificate, type ParsedCertificate } from '../x509/certificate.js';
import { readCertificates } from '../x509/pem.js';
import { OID } from '../x509/oids.js';
import { IdleMap } from '../util/idle-map.js';
import { sha256Hex } from '../util/sha256.js';
import { handshakeCertificateDer } from './handshake-certificate.js';
import { caKeyOf } from './ca-key.js';
import { chainConstraintProblem, UNDERSTOOD_CRITICAL } from './chain-constraints.js';
import { hasCrlNamed, isRevoked, type RevocationState } from './revocation.js';

/**
 * Why a client certificate was refused: a stable code, sent to the client as `error` in the
 * 401 body (see `sendAuthError`). `certificate_required`: none presented; `unknown_ca`: not
 * issued by a trusted CA; `not_a_client_certificate`: no clientAuth, a CA certificate or an
 * unknown critical extension; `invalid_identity`: it breaks the identity profile or its
 * trust domain is not accepted; `revocation_unknown`: whether it is revoked cannot be told yet
 * (no CRL fetched yet from the URL its CA names, or its issuing CA is not among the configured
 * CA certificates while CRLs that could concern it are loaded); the others say what they name.
 */
export type AuthFailureReason =
  | 'certificate_required'
  | 'certificate_expired'
  | 'certificate_not_yet_valid'
  | 'certificate_revoked'
  | 'unknown_ca'
  | 'invalid_signature'
  | 'not_a_client_certificate'
  | 'invalid_identity'
  | 'revocation_unknown';

/** The CA that issued a client certificate: an intermediate (with where it is revoked) or a root. */
export interface IssuerInfo {
  /**
   * The CA key of the issuing CA certificate, the one whose key verifies the client
   * certificate's signature (subject name DER hex / SHA-256 of its public key): the client
   * certificate's revocation is looked up under it, never under the issuer name alone.
   */
  readonly caKey: string;
  /**
   * The issuing intermediate: its serial (lowercase hex), its issuer's name (DER, hex) and the CA
   * key of the configured root whose key verifies it (absent when none does), under which it is revoked.
   */
  readonly intermediate?: { readonly serial: string; readonly issuerNameHex: string; readonly rootCaKey?: string };
  /**
   * Every configured CA certificate from the issuing one up to its root (the first is
   * `intermediate`; more with deeper hierarchies, root -> CA -> CA -> client): its serial, its
   * issuer's name (DER, hex) and the CA key of the configured CA whose key verifies it (absent
   * when none does; the walk stops there), under which it is revoked. Empty for a root.
   */
  readonly chain?: readonly { readonly serial: string; readonly issuerNameHex: string; readonly issuerCaKey?: string }[];
  /** SHA-256 of the root certificate's DER, lowercase hex; absent when the root is not configured. */
  readonly rootFp?: string;
}

/**
 * What {@link Authenticator.authenticate} found: the identity with its issuer (`issuerNameHex`:
 * the certificate's issuer name, DER, hex; `issuer`: undefined when the issuing CA is not
 * among `caCertificates`), or a refusal: `reason`, `message` (a sentence for the client,
 * saying what to do), and the certificate's SHA-256 `fingerprint` and `serial` when known.
 */
export type AuthResult =
  | { readonly ok: true; readonly identity: Identity; readonly issuerNameHex: string; readonly issuer: IssuerInfo | undefined }
  | { readonly ok: false; readonly reason: AuthFailureReason; readonly message: string; readonly fingerprint?: string; readonly serial?: string };

/** OpenSSL verification errors (as Node names them) to the reason a client is told. */
const OPENSSL_REASONS: Record<string, AuthFailureReason> = {
  CERT_HAS_EXPIRED: 'certificate_expired',
  CERT_NOT_YET_VALID: 'certificate_not_yet_valid',
  CERT_REVOKED: 'certificate_revoked',
  CERT_SIGNATURE_FAILURE: 'invalid_signature',
  CERT_UNTRUSTED: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  INVALID_PURPOSE: 'not_a_client_certificate',
  UNHANDLED_CRITICAL_EXTENSION: 'not_a_client_certificate',
  INVALID_EXTENSION: 'invalid_identity',
  INVALID_CA: 'unknown_ca',
};

const MESSAGES: Record<AuthFailureReason, string> = {
  certificate_required: 'no client certificate was presented; connect with your mcp-mtls certificate bundle',
  certificate_expired: 'the client certificate has expired; renew it (mcp-mtls renew) and reconnect',
  certificate_not_yet_valid: 'the client certificate is not valid yet; check the clock of the machine that issued it',
  certificate_revoked: 'the client certificate has been revoked; ask your operator for a new one',
  unknown_ca: 'the client certificate was not issued by a CA this server trusts',
  invalid_signature: 'the client certificate signature does not verify: it was altered',
  not_a_client_certificate: 'the certificate is not a client certificate (extKeyUsage clientAuth, not a CA)',
  invalid_identity: 'the client certificate carries no valid mcp-mtls identity',
  revocation_unknown: 'whether the client certificate is revoked cannot be checked',
};

/**
 * Turns TLS connections into identities: what `createMtlsMiddleware({ authenticator })` takes
 * (the interface of v1; implement it to authenticate otherwise). {@link createAuthenticator}
 * makes the standard one, a {@link ForwardedAuthenticator}.
 */
export interface Authenticator {
  /**
   * The identity of a TLS connection, computed once and cached on it. Every call re-checks
   * expiry and revocation, so a connection whose certificate expires or is revoked fails from
   * then on. The certificate is the one the handshake verified (handshake-certificate.ts).
   *
   * @throws MtlsError `TLS_RENEGOTIATION_ALLOWED` for a TLS 1.2 socket whose server may let
   *   clients renegotiate and whose certificate was not captured at the handshake: create the
   *   server with `mtlsServerOptions`, or `captureHandshakes(server)` before it listens
   */
  authenticate(socket: TLSSocket): AuthResult;
  /**
   * The identity of a client certificate that a trusted proxy forwarded (DER), with the same
   * reasons as {@link authenticate}: the TLS layer verified nothing here, so the chain is
   * checked first: the issuing CA must be among `caCertificates`, or be one of `chain` (the CA
   * certificates the proxy forwarded with it, as a client sends its intermediate in a handshake)
   * signed by one of them; by signature up to a configured root, every certificate on the way a
   * CA within its validity. Then the very checks a handshake certificate gets
   * (identity profile, trust domains, tenant roots, expiry, revocation). Computed once per
   * distinct certificate and chain sent with it (a bounded cache keyed by the SHA-256 of their DER); expiry and
   * revocation are re-checked on every call, against the revocation data in effect then.
   */
  authenticateCertificate(der: Uint8Array, chain?: readonly Uint8Array[]): AuthResult;
  /** Swaps in new revocation data; cached results are re-checked against it. */
  setRevocation(state: RevocationState): void;
}

/**
 * An {@link Authenticator} whose forwarded-certificate answers the trusted-proxy reader may keep
 * (one entry per header value, trusted-proxies.ts): what {@link createAuthenticator} returns. A
 * hand-written {@link Authenticator} needs none of this: {@link forwardedAuthenticator} gives it
 * defaults that keep nothing, so it is asked on every request.
 */
export interface ForwardedAuthenticator extends Authenticator {
  /**
   * {@link authenticateCertificate} without its cache, for a caller that keeps its own (the
   * trusted-proxy reader keeps one entry per header value, trusted-proxies.ts): the verified
   * result before expiry and revocation (apply {@link current}), `until` (ms) after which it must
   * be verified again (the first CA certificate on its chain expires), and whether it may be kept
   * at all by a caller that keys by the exact certificate and chain (not a refusal that may pass
   * later: not valid yet, revocation not known yet; unknown_ca is kept, it holds for that chain).
   */
  verifyForwarded(der: Uint8Array, chain?: readonly Uint8Array[]): { readonly result: AuthResult; readonly until: number; readonly keep: boolean };
  /** A kept result as it stands now: refused once expired or revoked (itself or a CA above it), as of the revocation data in effect. */
  current(result: AuthResult): AuthResult;
  /**
   * Counts {@link setRevocation} calls: while it is unchanged, {@link current} of a kept result
   * changes only by its clock (the identity's notAfter), so a caller may keep `current`'s answer
   * until the revision changes or that time passes.
   */
  revision(): number;
  /** The authenticator's clock (`clock` option), ms since the epoch. */
  now(): number;
}

/** What {@link createAuthenticator} made, and their verifyForwarded (see {@link forwardedAuthenticator}). */
const STANDARD = new WeakSet<object>();
const STANDARD_VERIFY = new WeakSet<object>();

/**
 * `authenticator` itself when it is a {@link ForwardedAuthenticator}; else one that asks it on
 * every forwarded request (`verifyForwarded` is its `authenticateCertificate`, never kept), so
 * that an authenticator written against the v1 interface works behind trusted proxies with no
 * check skipped: its own answer, whatever it is, is the one used, each time.
 */
export function forwardedAuthenticator(authenticator: Authenticator): ForwardedAuthenticator {
  const a = authenticator as Partial<ForwardedAuthenticator>;
  // an object made from createAuthenticator's (`{ ...base, authenticateCertificate: mine }`,
  // Object.create(base) with an override: the v1 way to add a check) has base's verifyForwarded,
  // which answers for base alone: its own authenticateCertificate is asked instead
  const borrowed = typeof a.verifyForwarded === 'function' && STANDARD_VERIFY.has(a.verifyForwarded) && !STANDARD.has(authenticator);
  if (!borrowed && typeof a.verifyForwarded === 'function' && typeof a.current === 'function' && typeof a.revision === 'function' && typeof a.now === 'function') return authenticator as ForwardedAuthenticator;
  return {
    authenticate: (socket) => authenticator.authenticate(socket),
    authenticateCertificate: (der, chain) => authenticator.authenticateCertificate(der, chain),
    setRevocation: (state) => authenticator.setRevocation(state),
    verifyForwarded: (der, chain) => ({ result: authenticator.authenticateCertificate(der, chain), until: 0, keep: false }),
    current: (result) => result, // never kept: always the answer just given
    revision: () => 0,
    now: () => Date.now(),
  };
}

/** Options of {@link createAuthenticator}. */
export interface AuthenticatorOptions {
  /** Accepted trust domains; undefined accepts any trust domain the CA issues. */
  readonly trustDomains?: readonly string[];
  /**
   * Whether delegated certificates (profile v1.1, docs/delegation.md) are read as such (default
   * true): false sees their holder (the actor) alone, without the delegator's teams or roles.
   */
  readonly delegation?: boolean;
  /** The revocation data (CRLs) at start; replace it with {@link Authenticator.setRevocation}. Without it, nothing is revoked. */
  readonly revocation?: RevocationState;
  /**
   * With several trusted roots (tenants): the root that must anchor each trust domain, so one
   * tenant's CA cannot issue another tenant's principals. Trust domain -> root certificate (PEM or DER).
   * When set, a trust domain not listed is refused, and the roots and intermediates must be in
   * `caCertificates`.
   */
  readonly trustDomainRoots?: Readonly<Record<string, string | Buffer>>;
  /**
   * The CA certificates (DER) a client's issuer is found among (roots and intermediates: the
   * configured CAs and the server's own chain), for intermediate revocation and tenant roots.
   * While any intermediate is revoked, a client whose issuer is not among them is refused.
   */
  readonly caCertificates?: readonly Buffer[];
  /** The clock for expiry checks; default the system clock. */
  readonly clock?: () => Date;
  /**
   * Sees each client certificate that passed the TLS chain check and the identity profile, once
   * per connection, already parsed, with its issuing CA (undefined when not among
   * `caCertificates`), e.g. to learn its CRL URL. A string returned refuses the connection
   * (`revocation_unknown`, the string as detail).
   */
  readonly onCertificate?: (cert: ParsedCertificate, issuer: IssuerInfo | undefined) => string | void;
}

/** Extensions a verifier must understand when critical (RFC 5280 4.2); anything else critical makes a certificate unusable. */
const UNDERSTOOD = UNDERSTOOD_CRITICAL;

function unknownCriticalExtension(der: Buffer): string | undefined {
  try {
    for (const [oid, ext] of parseCertificate(der).extensions) if (ext.critical && !UNDERSTOOD.has(oid)) return oid;
  } catch {
    return undefined;
  }
  return undefined;
}

function failure(reason: AuthFailureReason, detail?: string, fingerprint?: string, serial?: string): AuthResult {
  return { ok: false, reason, message: detail ? `${MESSAGES[reason]} (${detail})` : MESSAGES[reason], ...(fingerprint ? { fingerprint } : {}), ...(serial ? { serial } : {}) };
}

/**
 * The authenticator behind {@link createMtlsServer} and {@link createMtlsMiddleware}, for
 * servers built otherwise: turns the client certificate of a TLS connection into an
 * {@link Identity}, once per connection. It relies on the TLS layer for the chain check (it
 * reads `socket.authorized` and maps OpenSSL's `authorizationError` to an
 * {@link AuthFailureReason}), so the server must request certificates and trust the CA, as
 * `mtlsServerOptions` sets up. Then it applies the identity profile, expiry, revocation and
 * tenant roots.
 */
export function createAuthenticator(options: AuthenticatorOptions = {}): ForwardedAuthenticator {
  let revocation = options.revocation;
  const clock = options.clock ?? (() => new Date());
  const nowMs = options.clock ? () => options.clock!().getTime() : Date.now;
  let revision = 0;
  const cache = new WeakMap<TLSSocket, AuthResult>();
  // The CA certificates a client's certificate may hang from, each with the fingerprint of its
  // root. Node exposes no verified chain for a server's peer (getPeerCertificate(true) has no
  // issuerCertificate there, and a resumed session has no chain at all), so the issuer is found
  // among the configured certificates: same subject as the leaf's issuer, and its key verifies
  // the leaf's signature (a same-named CA of another tenant does not).
  const fp = sha256Hex;
  const cas = (options.caCertificates ?? []).map((der) => ({ x509: new crypto.X509Certificate(der), parsed: parseCertificate(der) }));
  const roots = cas.filter((c) => c.x509.issuer === c.x509.subject);
  const rootKeys = roots.map((r) => caKeyOf(r.x509.raw));
  // each CA certificate's issuer by signature, not by name (a same-named CA of another tenant did
  // not sign it), roots first; followed up to a root, so that every CA certificate above a
  // client's is checked for revocation under the key that signed it, however deep the hierarchy
  const isRoot = (c: (typeof cas)[number]) => roots.includes(c);
  const parentOf = (c: (typeof cas)[number]) => (isRoot(c) ? undefined : [...roots, ...cas.filter((p) => !isRoot(p))].find((p) => p !== c && c.x509.checkIssued(p.x509) && c.x509.verify(p.x509.publicKey)));
  const issuers: (IssuerInfo & { key: crypto.KeyObject; nameHex: string; path: readonly (typeof cas)[number][] })[] = cas.map((c) => {
    const { x509, parsed } = c;
    const nameHex = parsed.subjectName.toString('hex');
    const caKey = caKeyOf(x509.raw);
    if (isRoot(c)) return { caKey, key: x509.publicKey, nameHex, chain: [], rootFp: fp(x509.raw), path: [c] };
    const chain: { serial: string; issuerNameHex: string; issuerCaKey?: string }[] = [];
    const seen = new Set<(typeof cas)[number]>();
    let cur: (typeof cas)[number] | undefined = c;
    while (cur && !isRoot(cur) && !seen.has(cur) && chain.length < 16) {
      seen.add(cur);
      const parent = parentOf(cur);
      chain.push({ serial: cur.parsed.serial, issuerNameHex: cur.parsed.issuerName.toString('hex'), ...(parent ? { issuerCaKey: caKeyOf(parent.x509.raw) } : {}) });
      cur = parent;
    }
    const top = cur && isRoot(cur) ? cur : undefined;
    const first = chain[0]!;
    const intermediate = { serial: first.serial, issuerNameHex: first.issuerNameHex, ...(chain.length === 1 && top ? { rootCaKey: caKeyOf(top.x509.raw) } : {}) };
    return { caKey, key: x509.publicKey, nameHex, intermediate, chain, ...(top ? { rootFp: fp(top.x509.raw) } : {}), path: [...seen, ...(top ? [top] : [])] };
  });
  // every configured certificate of one CA key (a renewed intermediate, or a cross-certificate
  // for that key by another root, even another tenant's): revoked on any of its paths is revoked,
  // whatever order the certificates are listed in
  const sameKey = new Map<string, (typeof issuers)[number][]>();
  for (const i of issuers) sameKey.set(i.caKey, [...(sameKey.get(i.caKey) ?? []), i]);
  const pathsOf = (issuer: IssuerInfo): readonly IssuerInfo[] => sameKey.get(issuer.caKey) ?? [issuer];
  // the CAs whose CRLs revoke CA certificates: the roots and every configured CA that signed another
  const caSigners = [...new Set([...rootKeys, ...issuers.flatMap((i) => (i.chain ?? []).flatMap((l) => (l.issuerCaKey ? [l.issuerCaKey] : [])))])];
  // one signature check per certificate, not per connection: remembered by fingerprint
  const issuerByLeaf = new IdleMap<string, IssuerInfo | undefined>({ idleMs: 3_600_000, max: 10_000 });
  // `peer`: the certificate, or how to build it (a handshake certificate comes as DER; an
  // X509Certificate costs a key decoding in OpenSSL 3, needed only when not remembered)
  const issuerOf = (peer: crypto.X509Certificate | (() => crypto.X509Certificate), nameHex: string, fingerprint: string): IssuerInfo | undefined => {
    const seen = issuerByLeaf.get(fingerprint);
    if (seen !== undefined || issuerByLeaf.has(fingerprint)) return seen;
    let x509: crypto.X509Certificate | undefined;
    const found = issuers.find((i) => i.nameHex === nameHex && (x509 ??= typeof peer === 'function' ? peer() : peer).verify(i.key));
    issuerByLeaf.set(fingerprint, found);
    return found;
  };
  const tenantRoots = new Map<string, string>();
  for (const [td, pem] of Object.entries(options.trustDomainRoots ?? {})) {
    const der = readCertificates(Buffer.isBuffer(pem) ? pem : Buffer.from(pem))[0] as Buffer;
    tenantRoots.set(td, sha256Hex(der));
  }
  // intermediates are revoked on their root's CRL (or, deeper, on the CRL of the CA above them)
  const anyRevokedIntermediate = (state: RevocationState) => caSigners.some((k) => (state.byCa.get(k)?.size ?? 0) > 0);

  /**
   * Why an authenticated identity no longer holds: expired, revoked (itself or its
   * intermediate), or its revocation cannot be told. Revocation is looked up under the CA key
   * of the certificate that verified it (ca-key.ts), never by issuer name: a same-named CA of
   * another tenant cannot revoke this CA's certificates, nor un-revoke them.
   */
  const lapsed = (r: AuthResult & { ok: true }): AuthResult | undefined => {
    const id = r.identity;
    if (id.notAfter.getTime() < nowMs()) return failure('certificate_expired', `expired at ${id.notAfter.toISOString()}`, id.fingerprint, id.serial);
    const state = revocation;
    if (!state) return undefined;
    const issuer = r.issuer;
    if (issuer === undefined) {
      // the CA whose key signed it is not configured: no CRL of it can have been verified, so
      // none applies; but a CRL of a CA with its issuer's name, or a root CRL revoking
      // intermediates, may concern it, and which CA it is cannot be told: fail closed
      if (hasCrlNamed(state, r.issuerNameHex)) return failure('revocation_unknown', "a CRL of a CA with its issuer's name is loaded, but the CA certificate whose key signed it is not configured: add its intermediate certificate to the server's CA list", id.fingerprint, id.serial);
      if (anyRevokedIntermediate(state)) return failure('certificate_revoked', "its issuing CA is not configured while intermediates are revoked: add the intermediate certificate to the server's CA list", id.fingerprint, id.serial);
      return undefined;
    }
    if (isRevoked(state, issuer.caKey, id.serial)) return failure('certificate_revoked', `serial ${id.serial}`, id.fingerprint, id.serial);
    const urls = state.awaiting?.get(issuer.caKey);
    if (urls && !state.byCa.has(issuer.caKey)) return failure('revocation_unknown', `no CRL of its CA has been fetched yet from ${urls.join(', ')}; retry in a moment`, id.fingerprint, id.serial);
    // every CA certificate up to the root, each under the key that signed it, on every path
    for (const path of pathsOf(issuer)) {
      for (const link of path.chain ?? []) {
        if (link.issuerCaKey) {
          if (isRevoked(state, link.issuerCaKey, link.serial)) return failure('certificate_revoked', `its intermediate CA ${link.serial} is revoked`, id.fingerprint, id.serial);
        } else if (hasCrlNamed(state, link.issuerNameHex)) {
          return failure('revocation_unknown', "the CA whose key signed its intermediate CA is not configured while a CRL of a CA with that name is loaded: add the root (and any CA between) to the server's CA list", id.fingerprint, id.serial);
        }
      }
    }
    return undefined;
  };

  // what a handshake certificate's bytes alone decide (identity profile, issuing CA, tenant
  // root: the options do not change, and decode.ts reads no clock), by its SHA-256: a client's
  // next connection with the same certificate costs one hash, not a parse. Everything that may
  // change is checked per connection (the TLS verdict, onCertificate) and per request (lapsed).
  const byLeaf = new IdleMap<string, { readonly r: AuthResult; readonly parsed?: ParsedCertificate }>({ idleMs: 3_600_000, max: 10_000 });
  const compute = (socket: TLSSocket): AuthResult => {
    // the certificate the handshake verified, never a later read (a renegotiation swaps it)
    const der = handshakeCertificateDer(socket);
    if (!der) return failure('certificate_required');
    const fingerprint = fp(der);
    if (!socket.authorized) {
      const code = String(socket.authorizationError ?? '');
      const known = OPENSSL_REASONS[code];
      if (known) return failure(known, code, fingerprint);
      // OpenSSL says only UNSPECIFIED for some refusals: find the cause in the certificate itself
      const critical = unknownCriticalExtension(der);
      if (critical) return failure('not_a_client_certificate', `unknown critical extension ${critical}`, fingerprint);
      return failure('unknown_ca', code || undefined, fingerprint);
    }
    let seen = byLeaf.get(fingerprint);
    if (!seen) {
      const { r, parsed } = identifyOnce(() => new crypto.X509Certificate(der), der, fingerprint, false);
      // the parsed certificate only for onCertificate: 10,000 of them would be ~30 MB
      byLeaf.set(fingerprint, (seen = options.onCertificate && parsed ? { r, parsed } : { r }));
    }
    return seen.r.ok && seen.parsed ? checked(seen.r, seen.parsed, fingerprint) : seen.r;
  };

  /**
   * The chain check for a certificate no TLS handshake verified (a proxy forwarded it): what
   * OpenSSL checks in the handshake, against the configured CA certificates. Its issuing CA must
   * be among them (found by name and signature, as for revocation) and its path must reach a
   * configured root; every certificate on the path must be a CA certificate within its
   * validity, and the leaf within its own. The reasons are those OpenSSL's errors map to.
   */
  const chainCheck = (peer: crypto.X509Certificate, parsed: ParsedCertificate, fingerprint: string, chain: readonly Uint8Array[]): AuthResult | undefined => {
    const nameHex = parsed.issuerName.toString('hex');
    const now = clock().getTime();
    const issuer = issuerOf(peer, nameHex, fingerprint);
    if (!issuer) {
      // as in a handshake, an intermediate sent along may link it to a configured CA; the
      // certificate then stays one whose issuing CA is not configured (revocation: authenticate.ts)
      for (const der of chain) {
        let ca: crypto.X509Certificate;
        try {
          ca = new crypto.X509Certificate(der);
        } catch {
          continue;
        }
        if (!ca.ca || !peer.checkIssued(ca) || !peer.verify(ca.publicKey)) continue;
        const caNameHex = parseCertificate(ca.raw).issuerName.toString('hex');
        const up = issuers.find((i) => i.nameHex === caNameHex && ca.verify(i.key));
        if (!up?.rootFp) continue;
        if (Date.parse(ca.validTo) < now) return failure('certificate_expired', `its CA certificate ${ca.subject.replaceAll('\n', ', ')} expired at ${new Date(ca.validTo).toISOString()}`, fingerprint, parsed.serial);
        if (Date.parse(ca.validFrom) > now) return failure('certificate_not_yet_valid', `its CA certificate ${ca.subject.replaceAll('\n', ', ')} is valid from ${new Date(ca.validFrom).toISOString()}`, fingerprint, parsed.serial);
        let caParsed: ParsedCertificate;
        try {
          caParsed = parseCertificate(ca.raw);
        } catch (e) {
          return failure('unknown_ca', `its forwarded CA certificate cannot be read: ${(e as Error).message}`, fingerprint, parsed.serial);
        }
        return validityAndExtensions(peer, parsed, fingerprint, now, up.path, caParsed);
      }
      // a configured CA of that name whose key identifier the certificate names (or it names none,
      // or the CA has none: OpenSSL's X509_check_issued then goes by the name), yet whose key does
      // not verify it: altered (OpenSSL's CERT_SIGNATURE_FAILURE)
      const aki = parsed.extensions.get(OID.authorityKeyIdentifier)?.value;
      const named = issuers.filter((i) => i.nameHex === nameHex).map((i) => i.path[0]!.parsed.extensions.get(OID.subjectKeyIdentifier)?.value.subarray(2));
      if (named.some((ski) => !aki || !ski || ski.length === 0 || aki.includes(ski))) return failure('invalid_signature', 'its signature does not verify with the key of the CA it names', fingerprint, parsed.serial);
      return failure('unknown_ca', "its issuing CA is not among the server's CA certificates (a forwarded certificate is checked against the configured CA certificates only: list its intermediate there)", fingerprint, parsed.serial);
    }
    const info = issuers.find((i) => i === issuer)!;
    if (!info.rootFp) return failure('unknown_ca', "its issuing CA does not chain to a configured root", fingerprint, parsed.serial);
    return validityAndExtensions(peer, parsed, fingerprint, now, info.path);
  };

  const validityAndExtensions = (peer: crypto.X509Certificate, parsed: ParsedCertificate, fingerprint: string, now: number, path: readonly (typeof cas)[number][], forwardedCa?: ParsedCertificate): AuthResult | undefined => {
    // until when the CA certificates hold: a cached result is computed again after (computeForwarded)
    chainUntil = Math.min(...path.map((c) => Date.parse(c.x509.validTo)), forwardedCa ? forwardedCa.notAfter.getTime() : Infinity);
    for (const ca of path) {
      if (Date.parse(ca.x509.validTo) < now) return failure('certificate_expired', `its CA certificate ${ca.x509.subject.replaceAll('\n', ', ')} expired at ${new Date(ca.x509.validTo).toISOString()}`, fingerprint, parsed.serial);
      if (Date.parse(ca.x509.validFrom) > now) return failure('certificate_not_yet_valid', `its CA certificate ${ca.x509.subject.replaceAll('\n', ', ')} is valid from ${new Date(ca.x509.validFrom).toISOString()}`, fingerprint, parsed.serial);
      if (!ca.x509.ca) return failure('unknown_ca', `the configured certificate ${ca.x509.subject.replaceAll('\n', ', ')} that signed it is not a CA certificate`, fingerprint, parsed.serial);
    }
    if (parsed.notBefore.getTime() > now) return failure('certificate_not_yet_valid', `valid from ${parsed.notBefore.toISOString()}`, fingerprint, parsed.serial);
    if (parsed.notAfter.getTime() < now) return failure('certificate_expired', `expired at ${parsed.notAfter.toISOString()}`, fingerprint, parsed.serial);
    const critical = unknownCriticalExtension(peer.raw);
    if (critical) return failure('not_a_client_certificate', `unknown critical extension ${critical}`, fingerprint, parsed.serial);
    // what else OpenSSL refuses in a handshake: keyUsage, extKeyUsage and critical extensions of
    // the CAs, pathLen, name constraints, weak signatures (chain-constraints.ts says why by hand)
    const problem = chainConstraintProblem(parsed, [...(forwardedCa ? [forwardedCa] : []), ...path.map((c) => c.parsed)]);
    if (problem) return failure(problem.reason, problem.detail, fingerprint, parsed.serial);
    return undefined;
  };

  /** Everything after the chain check, for handshake and forwarded certificates alike. */
  const identify = (peer: crypto.X509Certificate, fingerprint: string, forwarded: readonly Uint8Array[] | false): AuthResult => {
    const { r, parsed } = identifyOnce(peer, peer.raw, fingerprint, forwarded);
    return r.ok && parsed ? checked(r, parsed, fingerprint) : r;
  };

  /** {@link identify} but for `onCertificate`, which may answer otherwise from one connection to the next: what the certificate's bytes decide. */
  const identifyOnce = (peerOf: crypto.X509Certificate | (() => crypto.X509Certificate), der: Buffer, fingerprint: string, forwarded: readonly Uint8Array[] | false): { r: AuthResult; parsed?: ParsedCertificate } => {
    let parsed;
    try {
      parsed = parseCertificate(der);
    } catch (e) {
      return { r: failure('invalid_identity', (e as Error).message, fingerprint) }; // malformed, e.g. an extension twice
    }
    if (forwarded) {
      const refused = chainCheck(typeof peerOf === 'function' ? peerOf() : peerOf, parsed, fingerprint, forwarded);
      if (refused) return { r: refused };
    }
    try {
      checkClientCertificate(parsed);
    } catch (e) {
      return { r: failure('not_a_client_certificate', (e as Error).message, fingerprint) };
    }
    let identity: Identity;
    try {
      identity = identityFromParsed(parsed, { ...(options.trustDomains ? { trustDomains: options.trustDomains } : {}), ...(options.delegation === false ? { delegation: false } : {}) });
    } catch (e) {
      return { r: failure('invalid_identity', isMtlsError(e) ? `${e.code}: ${e.message}` : String(e), fingerprint, parsed.serial) };
    }
    const issuerNameHex = parsed.issuerName.toString('hex');
    const known = issuerOf(peerOf, issuerNameHex, fingerprint);
    if (tenantRoots.size > 0) {
      const want = tenantRoots.get(identity.trustDomain);
      if (!want || !known || !pathsOf(known).some((p) => p.rootFp === want)) {
        return { r: failure('invalid_identity', want ? known?.rootFp ? `trust domain "${identity.trustDomain}" is not anchored in this certificate's CA` : `the CA that issued it is not configured: add its intermediate certificate to the server's CA list` : `no CA is configured for trust domain "${identity.trustDomain}"`, fingerprint, identity.serial) };
      }
    }
    // expiry and revocation are applied by authenticate(), on this and every later request
    return { r: { ok: true, identity, issuerNameHex, issuer: known }, parsed };
  };

  /** A result of {@link identifyOnce} as of now: `onCertificate` asked (once per connection or forwarded verification). */
  const checked = (r: AuthResult & { ok: true }, parsed: ParsedCertificate, fingerprint: string): AuthResult => {
    const unchecked = options.onCertificate?.(parsed, r.issuer);
    if (unchecked) return failure('revocation_unknown', unchecked, fingerprint, r.identity.serial);
    return r;
  };

  // forwarded certificates: computed once per distinct certificate (by the SHA-256 of its DER);
  // a refusal that may pass later (not valid yet, revocation not known yet) is not kept
  // (and only until the first CA certificate on its chain expires: a handshake is refused from
  // then on, and so must a forwarded certificate be, not answered from the cache)
  const forwarded = new IdleMap<string, { r: AuthResult; until: number }>({ idleMs: 3_600_000, max: 10_000 });
  let chainUntil = Infinity;
  const computeForwarded = (der: Uint8Array, fingerprint: string, chain: readonly Uint8Array[]): { r: AuthResult; until: number } => {
    let peer: crypto.X509Certificate;
    try {
      peer = new crypto.X509Certificate(der);
    } catch (e) {
      return { r: failure('invalid_identity', `the forwarded certificate cannot be read: ${(e as Error).message}`, fingerprint), until: Infinity };
    }
    chainUntil = Infinity;
    const r = identify(peer, fingerprint, chain);
    return { r, until: chainUntil };
  };

  /** A cached identity still holds unless expired or revoked since: checked on every request. */
  const current = (r: AuthResult): AuthResult => {
    if (!r.ok) return r;
    return lapsed(r) ?? r;
  };

  // not kept: what may pass later (not valid yet, revocation not known yet, an unknown CA whose intermediate may come along next time)
  const keepable = (r: AuthResult): boolean => r.ok || (r.reason !== 'certificate_not_yet_valid' && r.reason !== 'revocation_unknown' && r.reason !== 'unknown_ca');

  const self: ForwardedAuthenticator = {
    verifyForwarded(der, chain = []) {
      const { r, until } = computeForwarded(der, fp(der), chain);
      // unknown_ca is kept too: the caller keys by the exact bytes, chain included, and the
      // configured CAs do not change, so the same bytes are unknown_ca again (asked again, a
      // value with an attacker's chain cost a parse and a signature check per CA certificate on
      // every request); a client that sends its intermediate sends other bytes
      return { result: r, until, keep: keepable(r) || (!r.ok && r.reason === 'unknown_ca') };
    },
    current,
    revision: () => revision,
    now: nowMs,
    authenticateCertificate(der, chain = []) {
      const fingerprint = fp(der);
      // keyed by the chain sent along too: a refusal for the intermediate that came with it (an
      // expired one, say) must not outlast the client sending its renewed intermediate
      const key = chain.length === 0 ? fingerprint : `${fingerprint}:${chain.reduce((h, c) => h.update(c), crypto.createHash('sha256')).digest('hex')}`;
      let entry = forwarded.get(key);
      if (!entry || entry.until < nowMs()) {
        entry = computeForwarded(der, fingerprint, chain);
        if (keepable(entry.r)) forwarded.set(key, entry);
      }
      return current(entry.r);
    },
    authenticate(socket) {
      let r = cache.get(socket);
      if (!r) {
        r = compute(socket);
        cache.set(socket, r);
      }
      // a CRL loaded after the connection opened applies to it too, and so does expiry
      if (r.ok) {
        const gone = lapsed(r);
        if (gone) {
          // revoked or expired stays so for the connection; "cannot be checked yet" may pass once a CRL arrives
          if (gone.ok || gone.reason !== 'revocation_unknown') cache.set(socket, gone);
          return gone;
        }
      }
      return r;
    },
    setRevocation(state) {
      revocation = state;
      revision++;
    },
  };
  STANDARD.add(self);
  STANDARD_VERIFY.add(self.verifyForwarded);
  return self;
}
