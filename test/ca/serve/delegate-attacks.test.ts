/**
 * POST /delegate under attack (#23 review): what an actor, a thief of a grant or a second CA
 * tries, and what the CA must answer. Real `ca serve` on 127.0.0.1, real certificates.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { CompactSign } from 'jose';
import { revokeCertificate } from '../../../src/ca/revocation.js';
import { signGrant } from '../../../src/delegation/grant.js';
import { decodeIdentity } from '../../../src/identity/decode.js';
import { parseCrl } from '../../../src/x509/crl.js';
import { readCertificates } from '../../../src/x509/pem.js';
import { createCsr } from '../../../src/x509/csr.js';
import { generateKey } from '../../../src/x509/keys.js';
import { pemEncode } from '../../../src/x509/pem.js';
import { clientCreds, makeCa, request, type Creds } from '../../support/ca-serve.js';
import { useDelegationCa } from '../../support/delegation-ca.js';

const TD = 'acme.test';
const PLATFORM = `spiffe://${TD}/service/chat-platform`;

const dca = useDelegationCa({
  trustDomain: TD,
  delegation: `  maxTtl: 1h
  actors:
    - actor: service/chat-platform
      for: { teams: [sre] }
    - actor: service/short-lived
      for: { teams: [sre] }
    - actor: service/third
      for: { any: true }
`,
  people: {
    bob: { id: 'bob', teams: ['sre'], roles: ['oncall'] },
    platform: { kind: 'service', id: 'chat-platform' },
    third: { kind: 'service', id: 'third' },
    short: { kind: 'service', id: 'short-lived', ttlMs: 10 * 60_000 },
  },
});
const { who, grant } = dca;
const chainOf = (c: Creds) => readCertificates(Buffer.from(c.cert));
const keyOf = (c: Creds) => crypto.createPrivateKey(c.key);
const delegated = (body: Buffer, key: string): Creds => ({ cert: body.toString('utf8'), key, serial: decodeIdentity(readCertificates(body)[0]!).serial });
const exchange = dca.post;

test("a grant signed by another CA's bob (same trust domain, same name) is refused: the certificate is not this CA's", async () => {
  const other = makeCa(TD);
  try {
    const fakeBob = await clientCreds(other.ca, { id: 'bob', teams: ['sre'], roles: ['oncall'] });
    const r = await exchange(who.platform!, { grant: await grant(fakeBob, PLATFORM) });
    assert.deepEqual([r.status, r.json().error?.code], [403, 'GRANT_INVALID'], r.text());
  } finally {
    await other.ca.store.close();
  }
});

test('a delegated certificate neither signs a grant (no re-delegation to a third party), nor exchanges one, nor renews', async () => {
  const r = await exchange(who.platform!, { grant: await grant(who.bob!, PLATFORM) });
  assert.equal(r.status, 200, r.text());
  const d = delegated(r.body, who.platform!.key);
  // signGrant refuses; a grant made by hand with the delegated certificate is refused by the CA
  await assert.rejects(grant(d, `spiffe://${TD}/service/third`), /cannot delegate further/);
  const payload = { v: 1, iss: PLATFORM, aud: `spiffe://${TD}/service/third`, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3600, jti: 'x' };
  const jws = await new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg: 'ES256', typ: 'mcp-mtls-delegation+jws', x5c: chainOf(d).map((c) => c.toString('base64')) }).sign(keyOf(d));
  const r2 = await exchange(who.third!, { grant: jws });
  assert.deepEqual([r2.status, r2.json().error?.code], [403, 'GRANT_INVALID'], r2.text());
  // bob's grant for the platform, presented with the platform's delegated certificate: one hop only
  const r3 = await exchange(d, { grant: await grant(who.bob!, PLATFORM) });
  assert.deepEqual([r3.status, r3.json().error?.code], [403, 'DELEGATION_CHAIN'], r3.text());
  const r4 = await request(dca.port, dca.t.rootPem, { method: 'POST', path: '/renew', body: '', creds: { cert: d.cert, key: d.key } });
  assert.deepEqual([r4.status, r4.json().error?.code], [403, 'DELEGATED_NOT_RENEWABLE'], r4.text());
});

test("an actor name that differs only in case, or a grant's aud with a trailing slash, is another actor", async () => {
  for (const aud of [`spiffe://${TD}/service/Chat-platform`, `${PLATFORM}/`, `spiffe://ACME.test/service/chat-platform`, `${PLATFORM}%20`]) {
    const jws = await signGrant({ chain: chainOf(who.bob!), key: keyOf(who.bob!), actor: aud, ttlMs: 3600_000 });
    const r = await exchange(who.platform!, { grant: jws });
    assert.deepEqual([r.status, r.json().error?.code], [403, 'GRANT_INVALID'], `${aud}: ${r.text()}`);
  }
});

test('a grant whose teams repeat a team, or name an invalid one, yields no team twice and no more than the delegator has', async () => {
  const r = await exchange(who.platform!, { grant: await grant(who.bob!, PLATFORM, { teams: ['sre', 'sre'] }) });
  assert.equal(r.status, 200, r.text());
  assert.deepEqual(decodeIdentity(readCertificates(r.body)[0]!).actingFor?.teams, ['sre']);
});

test("a delegated certificate never outlives the actor's own certificate", async () => {
  const r = await exchange(who.short!, { grant: await grant(who.bob!, `spiffe://${TD}/service/short-lived`) });
  assert.equal(r.status, 200, r.text());
  const d = decodeIdentity(readCertificates(r.body)[0]!);
  const own = decodeIdentity(chainOf(who.short!)[0]!);
  assert.ok(d.notAfter.getTime() <= own.notAfter.getTime(), `delegated until ${d.notAfter.toISOString()}, the actor's own certificate until ${own.notAfter.toISOString()}`);
});

test("revoking the actor's certificate (a compromised platform) revokes the delegated certificates issued to it, at once", async () => {
  const actor = await clientCreds(dca.ca, { kind: 'service', id: 'third' });
  const r = await exchange(actor, { grant: await grant(who.bob!, `spiffe://${TD}/service/third`) });
  assert.equal(r.status, 200, r.text());
  const d = decodeIdentity(readCertificates(r.body)[0]!);
  // and one for another key (a CSR): also the actor's doing
  const csr = pemEncode('CERTIFICATE REQUEST', createCsr(generateKey('ec-p256'), 'elsewhere'));
  const r2 = await exchange(actor, { grant: await grant(who.bob!, `spiffe://${TD}/service/third`), csr });
  assert.equal(r2.status, 200, r2.text());
  const d2 = decodeIdentity(readCertificates(r2.body)[0]!);
  const result = await revokeCertificate(dca.ca, actor.serial, 'keyCompromise');
  assert.deepEqual([...result.alsoRevoked].sort(), [d.serial, d2.serial].sort());
  const revoked = parseCrl((await dca.ca.store.readCrl('intermediate'))!).revokedSerials();
  assert.ok(revoked.has(d.serial) && revoked.has(d2.serial));
});

test("an exchange racing with the revocation of the actor's certificate gets nothing: the issuing transaction re-checks the actor", async () => {
  const https = await import('node:https');
  const actor = await clientCreds(dca.ca, { kind: 'service', id: 'third' });
  const body = JSON.stringify({ grant: await grant(who.bob!, `spiffe://${TD}/service/third`) });
  const half = Math.floor(body.length / 2);
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: dca.port, path: '/delegate', method: 'POST', ca: dca.t.rootPem, agent: false, cert: actor.cert, key: actor.key, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    // the CA checks the actor's certificate when the request arrives, then reads the body: revoke it in between
    req.write(body.slice(0, half));
    setTimeout(() => {
      void revokeCertificate(dca.ca, actor.serial, 'keyCompromise').then(() => req.end(body.slice(half)), reject);
    }, 300);
  });
  const r = await answer;
  assert.equal(r.status, 403, r.text);
  assert.equal((JSON.parse(r.text) as { error?: { code?: string } }).error?.code, 'CERT_REVOKED', r.text);
  const issuedSince = (await dca.ca.store.readIndex()).filter((x) => x.op === 'issue' && (x as { actorSerial?: string }).actorSerial === actor.serial);
  assert.deepEqual(issuedSince, []);
});
