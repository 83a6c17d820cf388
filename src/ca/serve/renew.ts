/**
 * `POST /renew`: a new certificate for the holder of a current one. The claims come from the
 * presented certificate, which the store holds byte for byte (peer.ts), so they are the CA's
 * own record and never anything the request says; the key comes from the CSR in
 * the body (its signature proves possession) or, with an empty body, the presented
 * certificate's own public key. The lifetime is the old certificate's (so a 1h certificate
 * renews for 1h), cut at config.yaml's `limits.client.maxTtl` and at the intermediate's end. The old certificate is not revoked: it is
 * short-lived and expires on its own.
 *
 * A certificate renews once. Otherwise a copied key would renew itself into a chain of its own
 * beside the owner's, and survive the revocation of the serial the operator knows. Inside the
 * issuing transaction (atomic with the commit, serialised per serial in a database store) the
 * old certificate must be neither revoked nor renewed already. The one exception keeps retries
 * safe: asked again with the same new key (the answer to the first request was lost), the
 * holder gets the certificate that renewed it, and nothing new is signed.
 */
import { MtlsError, isMtlsError } from '../../errors.js';
import { verifyCsr } from '../../x509/csr.js';
import { actor, BACKDATE_MS, type Authority, type IssuedCertificate } from '../authority.js';
import { maxTtl } from '../limits.js';
import { storedCopyFor } from '../stored-copy.js';
import type { RenewPeer } from './peer.js';
import { HttpError } from './http.js';

export async function renewForPeer(ca: Authority, peer: RenewPeer, csr: Uint8Array | undefined): Promise<IssuedCertificate> {
  const old = peer.identity;
  // a delegated certificate is exchanged again (POST /delegate), never renewed: renewal would drop the delegation's checks
  if (old.actingFor) throw new HttpError(403, 'DELEGATED_NOT_RENEWABLE', `certificate ${old.serial} acts for ${old.actingFor.principal}: a delegated certificate is not renewed`, 'exchange the grant again at POST /delegate');
  const spki = csr ? verifyCsr(csr).spki : peer.cert.spki;
  const lifetime = peer.cert.notAfter.getTime() - peer.cert.notBefore.getTime() - BACKDATE_MS;
  const left = ca.intermediate.notAfter.getTime() - ca.now().getTime() - 1000;
  let successor: string | undefined;
  try {
    return await ca.issueClient(
      {
        kind: old.kind,
        id: old.id,
        teams: old.teams,
        roles: old.roles,
        ...(old.email ? { email: old.email } : {}),
        spki,
        renewedFrom: old.serial,
        spkiFrom: csr ? 'csr' : 'reused',
        // the old lifetime, cut at the limit (config.yaml may have lowered it since) and at the intermediate's end
        ttlMs: Math.max(60_000, Math.min(lifetime, left, maxTtl(ca.config, 'client').ms)),
      },
      {
        beforeCommit: async (tx) => {
          const r = await tx.renewalOf(old.serial);
          if (r.revoked) throw new MtlsError('CERT_REVOKED', `certificate ${old.serial} was revoked; a revoked certificate is not renewed`, { hint: 'ask the operator for a new certificate' });
          if (r.successor) {
            successor = r.successor;
            throw new MtlsError('CERT_RENEWED', `certificate ${old.serial} was renewed already (as ${r.successor}); a certificate renews once`);
          }
        },
      },
    );
  } catch (e) {
    if (isMtlsError(e, 'CERT_REVOKED')) throw new HttpError(403, 'CERT_REVOKED', e.message, e.hint);
    if (isMtlsError(e, 'CERT_RENEWED') && successor) return replayOrRefuse(ca, old.serial, successor, spki);
    throw e;
  }
}

/** The certificate that renewed `serial`, when it is for the key asked for now and still good; else 403. */
async function replayOrRefuse(ca: Authority, serial: string, successor: string, spki: Uint8Array): Promise<IssuedCertificate> {
  const copy = await storedCopyFor(ca, successor, spki);
  if (!copy) {
    throw new HttpError(403, 'CERT_RENEWED', `certificate ${serial} was renewed already (as ${successor}); a certificate renews once`, 'use the renewed certificate; if you did not renew it, tell the operator: the key may be in other hands');
  }
  await ca.store.transaction((tx) => tx.appendAudit([{ time: ca.now().toISOString(), event: 'cert.renew.replay', actor: actor(), serial, successor }]));
  return copy;
}
