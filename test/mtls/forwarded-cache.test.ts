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

// 57e128e indexes a long header value by a 31-bit hash of its last 128 and middle 128 characters
// (forwarded-cache.ts probeOf); two values with one probe must only take each other's place,
// never answer for each other (the full value is compared)
test("two forwarded values with the same 31-bit probe never get each other's identity", async () => {
  const { createForwardedCache } = await import('../../src/mtls/forwarded-cache.js');
  const ca = certs.intermediate(rootCa, 'Probe Test Intermediate', 48);
  const auth = createAuthenticator({ caCertificates: [root, ca.der] });
  const alice = certs.leaf(ca, 'alice', 24);
  const bob = certs.leaf(ca, 'bob', 24);
  // the probe as forwarded-cache.ts computes it (FNV-1a over the same characters), to find a pair
  const probe = (key: string) => {
    let h = 0x811c9dc5;
    for (let i = key.length - 128; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    const mid = key.length >> 1;
    for (let i = mid - 64; i < mid + 64; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return h >>> 1;
  };
  const base = 'x'.repeat(700);
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; !pair && i < 2_000_000; i++) {
    const key = base + i.toString(36).padStart(8, '0');
    const p = probe(key);
    const other = seen.get(p);
    if (other !== undefined) pair = [other, key];
    else seen.set(p, key);
  }
  assert.ok(pair, 'no two values with one probe found');
  const [keyA, keyB] = pair;
  const cache = createForwardedCache(auth, (_scope: string, answer) => answer);
  const forAlice = cache.add('proxy', 0, keyA, alice, auth.verifyForwarded(alice));
  assert.equal(forAlice.answer.ok && forAlice.answer.identity.principal, 'spiffe://acme.test/user/alice');
  // bob's value, with alice's probe: not alice's answer
  assert.equal(cache.lookup('proxy', 0, keyB), undefined, "a value with another's probe was answered from the other's record");
  cache.add('proxy', 0, keyB, bob, auth.verifyForwarded(bob));
  assert.equal(cache.size().values, 1, 'the two values share one probe (else this test no longer tests a collision: see probeOf)');
  const got = cache.lookup('proxy', 0, keyB);
  assert.equal(got?.answer.ok && got.answer.identity.principal, 'spiffe://acme.test/user/bob');
  // alice's value now misses (verified again by the reader), never bob's answer
  assert.equal(cache.lookup('proxy', 0, keyA), undefined);
});
