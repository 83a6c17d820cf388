/**
 * `POST /revoke-self`: the holder of a current certificate revokes it (what `mcp-mtls logout`
 * calls before it deletes the key). Over mTLS with that very certificate, checked as /renew
 * checks it (peer.ts: issued by this CA, byte for byte in the store, not revoked), so a
 * certificate can only ever revoke itself, never another serial; the body is ignored. The
 * reason is `cessationOfOperation`, which, as every reason but `superseded`, also revokes the
 * certificates that renewed it (revocation.ts), and the intermediate's CRL is re-signed in the
 * same step, so servers that fetch it refuse the serial at their next CRL refresh.
 *
 *   200 {"revoked": "<serial>", "alsoRevoked": [...], "crlNumber": "..."}
 *   401/403 as /renew (no certificate, expired, revoked already, not this CA's)
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Authority } from '../authority.js';
import { revokeCertificate } from '../revocation.js';
import { refuseCrossSite } from './cross-site.js';
import type { PeerChecker } from './peer.js';

export async function revokeSelf(ca: Authority, peers: PeerChecker, req: IncomingMessage, note: Record<string, unknown>): Promise<{ revoked: string; alsoRevoked: readonly string[] }> {
  req.resume(); // nothing is read from the body
  // the body is ignored, so a plain cross-site form would do (cross-site.ts)
  refuseCrossSite(req, 'POST /revoke-self', 'revoke your certificate with `mcp-mtls logout`');
  const peer = await peers.check(req.socket as TLSSocket, (id) => {
    note.principal = id.principal;
    note.serial = id.serial;
  });
  const result = await revokeCertificate(ca, peer.identity.serial, 'cessationOfOperation');
  note.alsoRevoked = result.alsoRevoked;
  return { revoked: peer.identity.serial, alsoRevoked: result.alsoRevoked };
}
