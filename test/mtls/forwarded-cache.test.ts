/**
 * The forwarded-certificate cache of the authenticator (authenticateCertificate): an identity
 * cached while its chain was valid does not outlive a CA certificate on that chain. A handshake
 * after the CA certificate expired is refused CERT_HAS_EXPIRED; a forwarded certificate (each
 * request a new client connection to the proxy) must be too. Real certificates, a moved clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAuthenticator } from '../../src/mtls/authenticate.js';
import { HOUR, memoryCertificates } from '../support/memory-ca.js';

const start = Date.now();
const certs = memoryCertificates(start);
const rootCa = certs.root('Cache Test Root', 100);
const root = rootCa.der;
/** a CA under the root valid for one more hour, and a leaf under it valid for a day */
function shortLivedCa(name: string) {
  const ca = certs.intermediate(rootCa, name, 1);
  return { ca: ca.der, leaf: certs.leaf(ca, 'alice', 24) };
}

test('a cached forwarded identity is refused once a CA certificate on its chain has expired (configured intermediate, and one forwarded with it)', () => {
  let now = start;
  const configured = shortLivedCa('Configured Short Intermediate');
  const forwarded = shortLivedCa('Forwarded Short Intermediate');
  const auth = createAuthenticator({ caCertificates: [root, configured.ca], clock: () => new Date(now) });
  assert.equal(auth.authenticateCertificate(configured.leaf).ok, true);
  assert.equal(auth.authenticateCertificate(forwarded.leaf, [forwarded.ca]).ok, true);
  now = start + 2 * HOUR;
  const got = [auth.authenticateCertificate(configured.leaf), auth.authenticateCertificate(forwarded.leaf, [forwarded.ca])].map((r) => (r.ok ? 'ok' : `${r.reason}: ${r.message}`));
  assert.deepEqual(got.map((g) => g.split(':')[0]), ['certificate_expired', 'certificate_expired'], got.join(' | '));
  assert.match(got[0]!, /CA certificate .*Configured Short Intermediate.* expired/);
});
