/**
 * `POST /renew`: a new certificate for the holder of a current one. The claims come from the
 * presented certificate, which the store holds byte for byte (peer.ts), so they are the CA's
 * own record and never anything the request says; the key comes from the CSR in
 * the body (its signature proves possession) or, with an empty body, the presented
 * certificate's own public key. The lifetime is the old certificate's (so a 1h certificate
 * renews for 1h), cut at the intermediate's end. The old certificate is not revoked: it is
 * short-lived and expires on its own.
 */
import { verifyCsr } from '../../x509/csr.js';
import { BACKDATE_MS, type Authority, type IssuedCertificate } from '../authority.js';
import type { RenewPeer } from './peer.js';

export async function renewForPeer(ca: Authority, peer: RenewPeer, csr: Uint8Array | undefined): Promise<IssuedCertificate> {
  const spki = csr ? verifyCsr(csr).spki : peer.cert.spki;
  const old = peer.identity;
  const lifetime = peer.cert.notAfter.getTime() - peer.cert.notBefore.getTime() - BACKDATE_MS;
  const left = ca.intermediate.notAfter.getTime() - ca.now().getTime() - 1000;
  return ca.issueClient({
    kind: old.kind,
    id: old.id,
    teams: old.teams,
    roles: old.roles,
    ...(old.email ? { email: old.email } : {}),
    spki,
    renewedFrom: old.serial,
    ttlMs: Math.max(60_000, Math.min(lifetime, left)),
  });
}
