/**
 * An https issuer's discovery document cannot send the CA to plain http: its jwks_uri on a
 * loopback port (allowed for an issuer that is itself http on loopback) would make the CA
 * GET a service on its own host, in the clear, on the provider's word.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { ProviderKeys } from '../../../src/ca/oidc/provider-keys.js';
import { OidcRefused } from '../../../src/ca/oidc/refused.js';
import { makeCa, serverCreds } from '../../support/ca-serve.js';

describe('ProviderKeys: jwks_uri of an https issuer', { timeout: 30_000 }, () => {
  let idp: https.Server;
  let plain: http.Server;
  let issuer: string;
  let key: CryptoKey;
  let rootPem: string;
  let plainHits = 0;
  before(async () => {
    const t = makeCa();
    rootPem = t.rootPem;
    const tls = await serverCreds(t.ca);
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] };
    plain = http.createServer((req, res) => {
      req.resume();
      plainHits++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const jwksUri = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/jwks`;
    idp = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, jwks_uri: jwksUri }));
    });
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
    issuer = `https://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  });
  after(() => {
    idp.close();
    plain.close();
  });

  it('is refused (503 OIDC_PROVIDER_UNAVAILABLE) and the http port is never asked', async () => {
    const keys = new ProviderKeys({ name: 'idp', issuer }, Buffer.from(rootPem));
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(key);
    const [h, p, sig] = jwt.split('.');
    const e = await keys.key({ alg: 'ES256', kid: 'k1' }, { protected: h!, payload: p!, signature: sig! }).then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof OidcRefused, String(e));
    assert.equal(e.refusal, 'OIDC_PROVIDER_UNAVAILABLE');
    assert.match(e.message, /is not https, as the issuer is/);
    assert.equal(plainHits, 0);
  });
});
