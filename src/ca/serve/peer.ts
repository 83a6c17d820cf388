/**
 * Who is asking for a renewal: the TLS client certificate, checked as the server adapter does
 * (chain to this CA's root through its intermediate, clientAuth, not a CA, validity, identity
 * extension of this trust domain; server/authenticate.ts), then against the store, which is the
 * authority on revocation (fresher than any CRL): the certificate must be one this CA recorded
 * (same serial and fingerprint), a client certificate, and not revoked.
 */
import type { TLSSocket } from 'node:tls';
import { createAuthenticator, type AuthFailureReason, type Authenticator } from '../../server/authenticate.js';
import type { Identity } from '../../identity/identity.js';
import type { Authority } from '../authority.js';
import type { IssuedRecord } from '../store/store.js';
import { HttpError } from './http.js';

export interface RenewPeer {
  readonly identity: Identity;
  /** the CA's record of the presented certificate (the claims a renewal copies) */
  readonly record: IssuedRecord;
  /** the presented certificate's DER */
  readonly der: Buffer;
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
  return {
    async check(socket, gate) {
      const auth = authenticator.authenticate(socket);
      if (!auth.ok) {
        const [status, code] = STATUS[auth.reason];
        throw new HttpError(status, code, auth.message, HINTS[auth.reason]);
      }
      const id = auth.identity;
      if (auth.issuer?.intermediate?.serial !== ca.intermediate.serial) {
        throw new HttpError(403, 'CERT_PROFILE', 'the certificate was not issued by this CA\'s intermediate', 'renew at the CA that issued the certificate');
      }
      gate?.(id);
      // re-read on every request: another replica or the CLI may have revoked it a moment ago
      const index = await ca.store.readIndex();
      let record: IssuedRecord | undefined;
      let revoked: { reason: string; revokedAt: string } | undefined;
      for (const r of index) {
        if (r.serial !== id.serial) continue;
        if (r.op === 'issue') record = r;
        else revoked = r;
      }
      if (!record || record.fingerprint !== id.fingerprint) {
        throw new HttpError(403, 'CERT_UNKNOWN', `certificate ${id.serial} is not in this CA's records`, 'renew at the CA that issued the certificate');
      }
      if (revoked) {
        throw new HttpError(403, 'CERT_REVOKED', `certificate ${id.serial} was revoked at ${revoked.revokedAt} (${revoked.reason}); a revoked certificate is not renewed`, 'ask the operator for a new certificate');
      }
      if (record.type !== 'client' || !record.kind) {
        throw new HttpError(403, 'CERT_PROFILE', 'only client certificates renew over /renew', 'renew server certificates with `mcp-mtls renew`');
      }
      const der = socket.getPeerX509Certificate()?.raw as Buffer;
      return { identity: id, record, der };
    },
  };
}
