/**
 * An access token is not an ID token, even when it is a JWT signed by the same provider with
 * `aud` = the CLI's client id: RFC 9068 access tokens (typ at+jwt, `client_id`, `scope`) and
 * the typ-JWT access tokens of real providers (`scp`: Entra, Okta; `token_use: access`:
 * Cognito; claim `typ: Bearer`: Keycloak) are refused before any principal is read. Tokens
 * come from a real oidc-provider (test/support/oidc.ts: its ID tokens and its JWT access
 * tokens) and from jose, signed with the provider's own key (mintIdToken).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { ProviderKeys } from '../../../src/ca/oidc/provider-keys.js';
import type { LoginProvider, LoginProviders } from '../../../src/ca/oidc/providers.js';
import { OidcRefused } from '../../../src/ca/oidc/refused.js';
import { verifyIdToken } from '../../../src/ca/oidc/verify-id-token.js';
import { CLI_CLIENT_ID, DEFAULT_SCOPES, OTHER_CLIENT_ID, startOidcProvider, TEST_API_SCOPE, type TestIdp } from '../../support/oidc.js';

describe('verifyIdToken: an access token does not pass as an ID token', { timeout: 60_000 }, () => {
  let idp: TestIdp;
  let providers: LoginProviders;
  before(async () => {
    // the provider's access tokens are JWTs whose audience is the CLI client itself
    idp = await startOidcProvider({ jwtAccessTokens: { audience: CLI_CLIENT_ID } });
    const p = {
      name: 'idp', issuer: idp.issuer, clientId: CLI_CLIENT_ID, audiences: [CLI_CLIENT_ID], principalClaim: 'preferred_username', groupsClaim: 'groups', groups: {}, requireMappedGroup: false,
      certTtl: { text: '1h', ms: 3_600_000 }, scopes: ['openid'], keys: new ProviderKeys({ name: 'idp', issuer: idp.issuer }, undefined, { cooldownMs: 0 }),
    } as LoginProvider;
    providers = { list: [p], byIssuer: (iss) => (iss === idp.issuer ? p : undefined) };
  });
  after(() => idp?.stop());

  const refusal = (t: string, options: { nonce?: string } = {}) => verifyIdToken(providers, t, options).then((v) => assert.fail(`accepted as ${v.subject}`), (e: unknown) => (e instanceof OidcRefused ? e : assert.fail(e as Error)));

  it("the provider's own ID token passes; its JWT access token (at+jwt, aud = the client id, no azp) is refused", async () => {
    const tokens = await idp.signIn({ user: 'bob', scope: `${DEFAULT_SCOPES} ${TEST_API_SCOPE}` });
    assert.equal((await verifyIdToken(providers, tokens.id_token)).subject, 'bob');
    const at = tokens.access_token!;
    // what makes the case: signed by the same key, for the same audience, no azp
    assert.equal(decodeProtectedHeader(at).typ, 'at+jwt');
    assert.deepEqual([decodeJwt(at).aud, decodeJwt(at).azp], [CLI_CLIENT_ID, undefined]);
    const e = await refusal(at);
    assert.equal(e.refusal, 'OIDC_TOKEN_INVALID');
    assert.match(e.message, /not an ID token/);
  });

  it('a typ-JWT token with the claims of an access token is refused, naming the claim', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['client_id', { client_id: CLI_CLIENT_ID, scope: 'openid api', email: null, groups: null }], // RFC 9068's claims under typ JWT
      ['scope', { scope: 'openid profile' }],
      ['scp', { scp: ['api.read'] }], // Entra, Okta
      ['token_use', { token_use: 'access' }], // Cognito
      ['typ', { typ: 'Bearer' }], // Keycloak's access tokens
    ];
    for (const [claim, claims] of cases) {
      const e = await refusal(await idp.mintIdToken({ sub: 'bob', preferred_username: 'bob', ...claims }));
      assert.equal(e.refusal, 'OIDC_TOKEN_INVALID', claim);
      assert.ok(e.message.includes(`(${claim})`) && /access token/.test(e.message), `${claim}: ${e.message}`);
    }
  });

  it('an access token with none of those claims but one of its own provider\'s is refused (Entra app-only, Okta, Auth0 client credentials)', async () => {
    const cases: [string, Record<string, unknown>][] = [
      // Entra v2 app-only (client credentials, or an app calling its own API): roles, no scp
      ['azpacr', { azp: CLI_CLIENT_ID, azpacr: '1', roles: ['Task.Read'], oid: 'o-1', tid: 't-1', ver: '2.0' }],
      ['idtyp', { azp: CLI_CLIENT_ID, idtyp: 'app', roles: ['Task.Read'] }],
      ['appidacr', { appid: CLI_CLIENT_ID, appidacr: '0', ver: '1.0' }], // Entra v1
      ['appid', { appid: CLI_CLIENT_ID, ver: '1.0' }],
      ['cid', { cid: CLI_CLIENT_ID, uid: '00u1' }], // Okta
      ['gty', { gty: 'client-credentials', azp: CLI_CLIENT_ID }], // Auth0
    ];
    for (const [claim, claims] of cases) {
      const e = await refusal(await idp.mintIdToken({ sub: 'bob', preferred_username: 'bob', ...claims }));
      assert.equal(e.refusal, 'OIDC_TOKEN_INVALID', claim);
      assert.ok(e.message.includes(`(${claim})`) && /access token/.test(e.message), `${claim}: ${e.message}`);
    }
  });

  it("what ID tokens of real providers carry still passes (Cognito's token_use: id, Keycloak's typ: ID)", async () => {
    for (const claims of [{ token_use: 'id' }, { typ: 'ID' }, { azp: CLI_CLIENT_ID }]) {
      assert.equal((await verifyIdToken(providers, await idp.mintIdToken(claims))).subject, 'alice', JSON.stringify(claims));
    }
  });

  it('several audiences: azp must be the client id', async () => {
    assert.equal((await refusal(await idp.mintIdToken({ aud: [CLI_CLIENT_ID, OTHER_CLIENT_ID] }))).refusal, 'OIDC_AUDIENCE');
    assert.equal((await refusal(await idp.mintIdToken({ aud: [CLI_CLIENT_ID, OTHER_CLIENT_ID], azp: OTHER_CLIENT_ID }))).refusal, 'OIDC_AUDIENCE');
    assert.equal((await verifyIdToken(providers, await idp.mintIdToken({ aud: [CLI_CLIENT_ID, OTHER_CLIENT_ID], azp: CLI_CLIENT_ID }))).subject, 'alice');
  });

  it('a caller whose flow had a nonce (code + PKCE) gets no certificate for a token without one', async () => {
    const e = await refusal(await idp.mintIdToken({ nonce: null }), { nonce: 'n-of-the-sign-in' });
    assert.equal(e.refusal, 'OIDC_NONCE');
    // the device flow sends none: a token without a nonce passes then
    assert.equal((await verifyIdToken(providers, await idp.mintIdToken({ nonce: null }))).subject, 'alice');
  });
});
