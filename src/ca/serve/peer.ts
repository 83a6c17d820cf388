/**
 * Who is asking for a renewal: the TLS client certificate, checked as the server adapter does
 * (chain to this CA's root through its intermediate, clientAuth, not a CA, validity, identity
 * extension of this trust domain; mtls/authenticate.ts), then against the store, re-read on
 * every request (another replica or the CLI may have revoked it a moment ago):
 *
 * - the store holds this very certificate (same serial, same bytes): so the claims read from it
 *   are the CA's own record, and a certificate of another CA with the same names is refused;
 * - its serial is not on the store's intermediate CRL. `revoke` writes the revocation and the
 *   re-signed CRL in one transaction (atomic in PostgreSQL; in the folder store a crash between
 *   the two is repaired by the next CRL check, `--crl-check`). Two point reads per renewal,
 *   whatever the size of the CA, where the whole index would grow with every certificate.
 */
import type { TLSSocket } from 'node:tls';
import { createAuthenticator, type AuthFailureReason, type Authenticator } from '../../mtls/authenticate.js';
import { handshakeCertificateDer } from '../../mtls/handshake-certificate.js';
import type { Identity } from '../../identity/identity.js';
import type { Authority } from '../authority.js';
import { parseCertificate, type ParsedCertificate } from '../../x509/certificate.js';
import { parseCrl, type ParsedCrl } from '../../x509/crl.js';
import { HttpError } from './http.js';

export interface RenewPeer {
  readonly identity: Identity;
  /** the presented certificate, byte for byte the one the store holds */
  readonly cert: ParsedCertificate;
}

const STATUS: Record<AuthFailureReason, [number, string]> = {
  certificate_required: [401, 'CERT_REQUIRED'],
  certificate_expired: [401, 'CERT_EXPIRED'],
  certificate_not_yet_valid: [401, 'CERT_NOT_YET_VALID'],
  unknown_ca: [401, 'CERT_UNTRUSTED'],
  invalid_signature: [401, 'CERT_UNTRUSTED'],
  certificate_revoked: [403, 'CERT_REVOKED'],
  not_a_client_certificate: [403, 'CERT_PROFILE'],
  invalid_identity: [403, 'CERT_PROFILE'],
  revocation_unknown: [403, 'CERT_REVOCATION_UNKNOWN'], // not raised here: this authenticator has no CRLs, the store is read
};

const HINTS: Partial<Record<AuthFailureReason, string>> = {
  certificate_required: 'connect with the client certificate to renew (the bundle made by mcp-mtls)',
  certificate_expired: 'an expired certificate cannot renew itself: enroll again with a token (POST /sign) or ask the operator',
  unknown_ca: 'renew at the CA that issued the certificate',
};

export interface PeerChecker {
  /**
   * The checked peer. `gate` runs once the certificate itself is known good and before the
   * store is read (the rate limit: a flood costs no store reads).
   */
  check(socket: TLSSocket, gate?: (identity: Identity) => void): Promise<RenewPeer>;
}

export function createPeerChecker(ca: Authority): PeerChecker {
  const authenticator: Authenticator = createAuthenticator({
    trustDomains: [ca.config.trustDomain],
    caCertificates: [ca.rootDer, ca.intermediateDer],
    clock: () => ca.now(),
  });
  // the last CRL parsed, kept while the store serves the same bytes (a parse per new CRL, not per request)
  let lastCrl: { der: Buffer; crl: ParsedCrl; serials: Set<string> } | undefined;
  const revokedEntry = (der: Buffer, serial: string): { revokedAt: Date; reason?: string } | undefined => {
    if (!lastCrl || !lastCrl.der.equals(der)) {
      const crl = parseCrl(der);
      lastCrl = { der, crl, serials: crl.revokedSerials() };
    }
    if (!lastCrl.serials.has(serial)) return undefined;
    const e = lastCrl.crl.entries.find((x) => x.serial === serial);
    return { revokedAt: e?.revokedAt ?? new Date(0), ...(e?.reason ? { reason: e.reason } : {}) };
  };
  return {
    async check(socket, gate) {
      const auth = authenticator.authenticate(socket);
      if (!auth.ok) {
        const [status, code] = STATUS[auth.reason];
        throw new HttpError(status, code, auth.message, HINTS[auth.reason], {}, { ...(auth.serial ? { serial: auth.serial } : {}), ...(auth.fingerprint ? { fingerprint: auth.fingerprint } : {}) });
      }
      const id = auth.identity;
      if (auth.issuer?.intermediate?.serial !== ca.intermediate.serial) {
        throw new HttpError(403, 'CERT_PROFILE', 'the certificate was not issued by this CA\'s intermediate', 'renew at the CA that issued the certificate');
      }
      gate?.(id);
      const [stored, crlDer] = await Promise.all([ca.store.readIssued(id.serial), ca.store.readCrl('intermediate')]);
      // the certificate the handshake verified (the one `auth` was made from), never a later read;
      // its bytes as captured (an X509Certificate of them cost ~140 µs of every renewal: OpenSSL 3
      // decodes its key)
      const der = handshakeCertificateDer(socket) as Buffer;
      if (!stored || !stored.equals(der)) {
        throw new HttpError(403, 'CERT_UNKNOWN', `certificate ${id.serial} is not in this CA's records`, 'renew at the CA that issued the certificate');
      }
      const entry = crlDer ? revokedEntry(crlDer, id.serial) : undefined;
      if (entry) {
        throw new HttpError(403, 'CERT_REVOKED', `certificate ${id.serial} was revoked at ${entry.revokedAt.toISOString()}${entry.reason ? ` (${entry.reason})` : ''}; a revoked certificate is not renewed`, 'ask the operator for a new certificate');
      }
      return { identity: id, cert: parseCertificate(der) };
    },
  };
}
