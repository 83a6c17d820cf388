/**
 * A hand-written Authenticator made from the standard one (#22 review 2): `{ ...createAuthenticator(),
 * authenticateCertificate: mine }` or `Object.create(base)` with an override, the v1 way to add
 * a check of one's own, carries the standard one's verifyForwarded, current, revision and now.
 * Behind a trusted proxy its own authenticateCertificate must still decide every forwarded
 * request: the borrowed verifyForwarded answers for the base alone, without the override.
 * createMtlsMiddleware behind a real HTTP server, RFC 9440 headers from 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAuthenticator, createMtlsMiddleware, type Authenticator, type AuthResult } from '../../src/api/server.js';
import { useForwardedServer } from '../support/forwarded-reader.js';
import { memoryCertificates } from '../support/memory-ca.js';

const certs = memoryCertificates(Date.now());
const rootCa = certs.root('Derived Test Root', 100);
const interCa = certs.intermediate(rootCa, 'Derived Test Intermediate', 50);
const dave = certs.leaf(interCa, 'dave', 24);
const blocked: AuthResult = { ok: false, reason: 'certificate_revoked', message: 'blocked by my own list' };

/** The v1 way to add a check: the standard authenticator with authenticateCertificate (and authenticate) of one's own. */
function made(how: 'spread' | 'prototype', deny: Set<string>, asked: { n: number }): Authenticator {
  const base = createAuthenticator({ caCertificates: [rootCa.der] });
  const mine = {
    authenticateCertificate(der: Uint8Array, chain?: readonly Uint8Array[]): AuthResult {
      asked.n++;
      const r = base.authenticateCertificate(der, chain);
      return r.ok && deny.has(r.identity.id) ? blocked : r;
    },
    authenticate(socket: Parameters<Authenticator['authenticate']>[0]): AuthResult {
      const r = base.authenticate(socket);
      return r.ok && deny.has(r.identity.id) ? blocked : r;
    },
  };
  return how === 'spread' ? Object.assign({ ...base }, mine) : Object.assign(Object.create(base) as Authenticator, mine);
}

for (const how of ['spread', 'prototype'] as const) {
  describe(`an authenticator derived from createAuthenticator (${how}) behind a trusted proxy`, { timeout: 60_000 }, () => {
    const deny = new Set<string>();
    const asked = { n: 0 };
    const auth = made(how, deny, asked);
    const { get } = useForwardedServer(() => createMtlsMiddleware({ authenticator: auth, trustedProxies: [{ from: '127.0.0.1', format: 'rfc9440' }] }), dave, interCa.der);

    it('its own authenticateCertificate decides each forwarded request', async () => {
      assert.equal(await get(), '200 ok spiffe://acme.test/user/dave');
      deny.add('dave');
      assert.match(await get(), /^401 .*certificate_revoked/, 'dave, on its own deny list, was let in: its authenticateCertificate was skipped');
      assert.equal(asked.n, 2, 'asked on each request');
    });
  });
}
