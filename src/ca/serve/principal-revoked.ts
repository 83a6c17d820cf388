/**
 * ID tokens of a revoked principal (`mcp-mtls revoke --principal`, docs/security.md): revoking a
 * person revokes their certificates, and from that moment every ID token for them issued (`iat`)
 * at or before the revocation is refused at /login/sign and POST /delegate, even one obtained
 * before and not yet traded. The store keeps one record per revoked principal with its time
 * (StoreLookups.principalRevocation, a lookup by principal); the check runs inside the issuing
 * transaction, so it is atomic with a revocation running at the same time.
 *
 * Clock skew: the ID-token check accepts an `iat` up to CLOCK_SKEW_SECONDS ahead of the CA's
 * clock, so a provider whose clock is ahead could date a token issued just before the revocation
 * up to that much after it. A token whose `iat` is within that skew after the revocation is
 * therefore refused too: for a minute after `revoke --principal`, a new sign-in is refused with
 * the time from which one is accepted again.
 */
import { CLOCK_SKEW_SECONDS } from '../oidc/verify-id-token.js';
import { OidcRefused } from '../oidc/refused.js';
import type { StoreLookups } from '../store/store.js';

/**
 * Throws PRINCIPAL_REVOKED (403) when `principal` was revoked at or after `iat` (seconds since
 * the epoch), less the clock skew the ID-token check allows; else returns.
 */
export async function refuseRevokedPrincipal(store: Pick<StoreLookups, 'principalRevocation'>, principal: string, iat: number, who: { provider?: string; idpSubject?: string }): Promise<void> {
  const r = await store.principalRevocation(principal);
  if (!r) return;
  const revokedAt = Date.parse(r.revokedAt) / 1000;
  if (iat > revokedAt + CLOCK_SKEW_SECONDS) return;
  const from = new Date((revokedAt + CLOCK_SKEW_SECONDS + 1) * 1000).toISOString();
  throw new OidcRefused(
    'PRINCIPAL_REVOKED',
    `${principal} was revoked at ${r.revokedAt} (${r.reason}), and this ID token was issued before that (iat ${new Date(iat * 1000).toISOString()}; tokens issued until ${CLOCK_SKEW_SECONDS} s after a revocation are refused, for the identity provider's clock skew)`,
    `sign in again at the identity provider for a new ID token (accepted if issued after ${from}); if the person should be cut off, the operator disables them at the identity provider too, since revoking does not stop new sign-ins`,
    who,
  );
}
