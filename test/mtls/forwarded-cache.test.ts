/**
 * The forwarded-certificate cache of the authenticator (authenticateCertificate): an identity
 * cached while its chain was valid does not outlive a CA certificate on that chain. A handshake
 * after the CA certificate expired is refused CERT_HAS_EXPIRED; a forwarded certificate (each
 * request a new client connection to the proxy) must be too. Real certificates, a moved clock.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { clientFields, intermediateFields, rootFields } from '../../src/ca/profiles.js';
import { normalizeClaims } from '../../src/identity/encode.js';
import { createAuthenticator } from '../../src/mtls/authenticate.js';
import { randomSerial, signCertificate } from '../../src/x509/certificate.js';
import { createSigner, generateKey, keyIdentifier } from '../../src/x509/keys.js';

const HOUR = 3_600_000;
const start = Date.now();
const signerOf = (k: ReturnType<typeof generateKey>) => createSigner(crypto.createPrivateKey({ key: k.pkcs8, format: 'der', type: 'pkcs8' }));
const rootKey = generateKey('ec-p256');
const rootF = rootFields({ name: 'Cache Test Root', serial: randomSerial(), notBefore: new Date(start - HOUR), notAfter: new Date(start + 100 * HOUR), spki: rootKey.spki });
const root = signCertificate(rootF, signerOf(rootKey));
const rootInfo = { subjectName: rootF.subjectName, keyId: keyIdentifier(rootKey.spki), notAfter: rootF.notAfter };
/** a CA under the root valid for one more hour, and a leaf under it valid for a day */
function shortLivedCa(name: string) {
  const key = generateKey('ec-p256');
  const f = intermediateFields(rootInfo as never, { name, serial: randomSerial(), notBefore: new Date(start - HOUR), notAfter: new Date(start + HOUR), spki: key.spki });
  const ca = signCertificate(f, signerOf(rootKey));
  const leafKey = generateKey('ec-p256');
  const claims = normalizeClaims({ trustDomain: 'acme.test', kind: 'user', id: 'alice', teams: [], roles: [] });
  const leaf = signCertificate(clientFields({ subjectName: f.subjectName, keyId: keyIdentifier(key.spki), notAfter: new Date(start + 24 * HOUR) } as never, { serial: randomSerial(), notBefore: new Date(start - HOUR), notAfter: new Date(start + 24 * HOUR), spki: leafKey.spki, keyType: 'ec-p256', claims }), signerOf(key));
  return { ca, leaf };
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
