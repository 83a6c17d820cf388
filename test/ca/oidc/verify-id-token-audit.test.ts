/**
 * A refusal's audit fields name the IdP subject only when the provider signed it: a token with
 * a bad signature (or a kid the provider does not publish) that says sub: alice must not put
 * "alice" in the audit line, where an operator would read that alice tried; a token whose
 * signature verified but whose audience or expiry is wrong does name its subject.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { ProviderKeys } from '../../../src/ca/oidc/provider-keys.js';
import type { LoginProvider, LoginProviders } from '../../../src/ca/oidc/providers.js';
import { OidcRefused } from '../../../src/ca/oidc/refused.js';
import { verifyIdToken } from '../../../src/ca/oidc/verify-id-token.js';

describe('verifyIdToken: who the audit line names', { timeout: 20_000 }, () => {
  let server: http.Server;
  let issuer: string;
  let key: CryptoKey;
  let providers: LoginProviders;
  before(async () => {
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = http.createServer((req, res) => {
      req.resume();
      const body = req.url === '/.well-known/openid-configuration' ? { issuer, jwks_uri: `${issuer}/jwks` } : { keys: [jwk] };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const p: LoginProvider = {
      name: 'idp', issuer, clientId: 'mcp', audiences: ['mcp'], principalClaim: 'sub', groupsClaim: 'groups', groups: {}, requireMappedGroup: false,
      certTtl: { text: '1h', ms: 3_600_000 }, scopes: ['openid'], keys: new ProviderKeys({ name: 'idp', issuer }, undefined, { cooldownMs: 0 }),
    } as LoginProvider;
    providers = { list: [p], byIssuer: (iss) => (iss === issuer ? p : undefined) };
  });
  after(() => server.close());

  const token = (k: CryptoKey, kid: string, aud = 'mcp') => new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(issuer).setAudience(aud).setIssuedAt().setExpirationTime('5m').sign(k);
  const refusal = (t: string) => verifyIdToken(providers, t).then(() => assert.fail('accepted'), (e: unknown) => e as OidcRefused);

  it('a forged signature: the audit names the provider, not the claimed sub', async () => {
    const forger = (await generateKeyPair('ES256')).privateKey;
    const e = await refusal(await token(forger, 'k1'));
    assert.equal(e.refusal, 'OIDC_TOKEN_INVALID');
    assert.deepEqual(e.who, { provider: 'idp' });
  });

  it('an unknown kid: the same', async () => {
    const e = await refusal(await token(key, 'nope'));
    assert.deepEqual(e.who, { provider: 'idp' });
  });

  it('a signed token for another audience names its (signed) subject', async () => {
    const e = await refusal(await token(key, 'k1', 'other'));
    assert.equal(e.refusal, 'OIDC_AUDIENCE');
    assert.deepEqual(e.who, { provider: 'idp', idpSubject: 'alice' });
  });
});
