/**
 * `principalClaim: email` names the principal only with `email_verified: true`: an address the
 * provider did not verify is whatever the person typed (the string "true" is not true either).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mapClaims } from '../../../src/ca/oidc/claims-mapping.js';
import type { LoginProvider } from '../../../src/ca/oidc/providers.js';
import { OidcRefused } from '../../../src/ca/oidc/refused.js';

const provider = { name: 'idp', issuer: 'https://idp.test', clientId: 'c', audiences: ['c'], principalClaim: 'email', emailDomain: 'idp.test', groupsClaim: 'groups', groups: {}, requireMappedGroup: false } as unknown as LoginProvider;

describe('mapClaims with principalClaim: email', () => {
  it('an unverified email (absent, false, "true") does not name the principal', () => {
    for (const email_verified of [undefined, false, 'true']) {
      assert.throws(() => mapClaims(provider, { sub: 's', email: 'alice@idp.test', ...(email_verified !== undefined ? { email_verified } : {}) }), (e: OidcRefused) => e.refusal === 'OIDC_PRINCIPAL' && /not verified/.test(e.message), String(email_verified));
    }
  });
  it('a verified one does', () => {
    assert.equal(mapClaims(provider, { sub: 's', email: 'alice@idp.test', email_verified: true }).id, 'alice');
  });
});
