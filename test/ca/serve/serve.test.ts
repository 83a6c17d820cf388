/**
 * `ca serve` in process: real TLS on 127.0.0.1, real openssl as the verifier of what it hands out.
 * CRLs (DER, ETag/304, Cache-Control, re-signed by the timer and after a revocation), /renew
 * (mTLS; CSR or same key; every refusal), /sign (one-time tokens, and a flood of made-up ones
 * costing at most about one read of the token table a second), health, metrics, audit.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Authority } from '../../../src/ca/authority.js';
import { writeCrls, revokeCertificate } from '../../../src/ca/revocation.js';
import { MemoryStore } from '../../../src/ca/store/memory-store.js';
import { createEnrollmentToken } from '../../../src/ca/tokens.js';
import { parseCertificate } from '../../../src/x509/certificate.js';
import { createCsr } from '../../../src/x509/csr.js';
import { parseCrl } from '../../../src/x509/crl.js';
import { generateKey, privateKeyPem } from '../../../src/x509/keys.js';
import { OID } from '../../../src/x509/oids.js';
import { pemEncode, readCertificates } from '../../../src/x509/pem.js';
import { openssl, tmpDir } from '../../support/cli.js';
import { clientCreds, makeCa, request, serverCreds, sleep, startServer, type TestCa } from '../../support/ca-serve.js';

const leafOf = (chainPem: string) => parseCertificate(readCertificates(Buffer.from(chainPem))[0]!);

async function opensslVerifyClient(t: TestCa, chainPem: string): Promise<{ code: number; out: string }> {
  const f = path.join(tmpDir('ca-serve-verify-'), 'leaf.pem');
  const [leaf] = readCertificates(Buffer.from(chainPem));
  fs.writeFileSync(f, pemEncode('CERTIFICATE', leaf!));
  const r = await openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', t.rootFile, '-untrusted', t.intermediateFile, f]);
  return { code: r.code, out: r.stdout + r.stderr };
}

describe('ca serve', () => {
  let t: TestCa;
  let port: number;
  let srv: Awaited<ReturnType<typeof startServer>>;
  const req = (p: Parameters<typeof request>[2]) => request(port, t.rootPem, p);

  before(async () => {
    t = makeCa();
    srv = await startServer(t, { crl: { cacheMs: 0, checkMs: 0 }, renewRate: { burst: 3, perMinute: 1 } });
    port = srv.port;
  });
  after(async () => {
    await srv.server.shutdown(1000);
  });

  test('CRLs: DER that openssl verifies against the CA, ETag and 304, Cache-Control until the planned re-sign (capped)', async () => {
    const dir = tmpDir('ca-serve-crl-');
    for (const which of ['root', 'intermediate'] as const) {
      const r = await req({ path: `/crl/${which}.crl` });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/pkix-crl');
      const file = path.join(dir, `${which}.crl`);
      fs.writeFileSync(file, r.body);
      const v = await openssl(['crl', '-inform', 'DER', '-in', file, '-CAfile', which === 'root' ? t.rootFile : t.chainFile, '-noout']);
      assert.match(v.stderr + v.stdout, /verify OK/, `${which}: ${v.stderr}`);
      const maxAge = Number(/^public, max-age=(\d+)$/.exec(String(r.headers['cache-control']))?.[1]);
      assert.ok(maxAge > 200 && maxAge <= 300, `max-age ${maxAge} is capped at 5 minutes`);
      const etag = String(r.headers.etag);
      assert.match(etag, /^"\d+-[0-9a-f]{16}"$/);
      const again = await req({ path: `/crl/${which}.crl`, headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
      assert.equal(again.body.length, 0);
      assert.equal(again.headers.etag, etag);
      assert.equal((await req({ path: `/crl/${which}.crl`, headers: { 'if-none-match': '"0-0000000000000000"' } })).status, 200);
    }
    const head = await req({ method: 'HEAD', path: '/crl/root.crl' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal((await req({ path: '/crl/other.crl' })).status, 404);
    assert.equal((await req({ method: 'POST', path: '/crl/root.crl', body: 'x' })).status, 405);
  });

  test('a revocation made outside the server (the CLI) is served at once: new ETag, serial listed', async () => {
    const victim = await clientCreds(t.ca, { id: 'mallory' });
    const before = await req({ path: '/crl/intermediate.crl' });
    await revokeCertificate(t.ca, victim.serial, 'keyCompromise');
    const r = await req({ path: '/crl/intermediate.crl' });
    assert.notEqual(r.headers.etag, before.headers.etag);
    assert.ok(parseCrl(r.body).revokedSerials().has(victim.serial));
    assert.equal((await req({ path: '/renew', method: 'POST', creds: victim })).json().error?.code, 'CERT_REVOKED');
  });

  test('/renew with a CSR: same claims byte for byte, the CSR key, new serial, verifies with openssl; old one not revoked', async () => {
    const alice = await clientCreds(t.ca, { id: 'alice', teams: ['sre', 'platform'], roles: ['admin'], email: 'alice@acme.test' });
    const key = generateKey('ec-p256');
    const csr = pemEncode('CERTIFICATE REQUEST', createCsr(key, 'someone-else'));
    const r = await req({ path: '/renew', method: 'POST', creds: alice, headers: { 'content-type': 'application/pkcs10' }, body: csr });
    assert.equal(r.status, 200, r.text());
    assert.equal(r.headers['content-type'], 'application/pem-certificate-chain');
    const chain = readCertificates(r.body);
    assert.equal(chain.length, 2);
    assert.deepEqual(chain[1], t.ca.intermediateDer, 'leaf then intermediate');
    const oldLeaf = leafOf(alice.cert);
    const newLeaf = leafOf(r.text());
    assert.notEqual(newLeaf.serial, oldLeaf.serial);
    for (const oid of [OID.subjectAltName, OID.subjectDirectoryAttributes]) assert.deepEqual(newLeaf.extensions.get(oid)?.value, oldLeaf.extensions.get(oid)?.value, oid);
    assert.deepEqual(newLeaf.subjectName, oldLeaf.subjectName, 'the CSR subject is ignored');
    assert.deepEqual(newLeaf.spki, key.spki);
    const v = await opensslVerifyClient(t, r.text());
    assert.equal(v.code, 0, v.out);
    const index = await t.ca.store.readIndex();
    assert.ok(!index.some((x) => x.op === 'revoke' && x.serial === alice.serial));
    const rec = index.find((x) => x.op === 'issue' && x.serial === newLeaf.serial);
    assert.equal(rec?.op === 'issue' && rec.renewedFrom, alice.serial);
    // DER body works too, and the renewed certificate can renew itself
    const key2 = generateKey('ec-p256');
    const r2 = await req({ path: '/renew', method: 'POST', creds: { cert: r.text(), key: privateKeyPem(key.pkcs8) }, headers: { 'content-type': 'application/pkcs10' }, body: createCsr(key2, 'x') });
    assert.equal(r2.status, 200, r2.text());
    assert.deepEqual(leafOf(r2.text()).spki, key2.spki);
    // PEM under the other accepted content types
    for (const type of ['application/x-pem-file', 'text/plain; charset=utf-8']) {
      const erin = await clientCreds(t.ca, { id: 'erin' }); // a certificate renews once: one each
      const k = generateKey('ec-p256');
      const r3 = await req({ path: '/renew', method: 'POST', creds: erin, headers: { 'content-type': type }, body: pemEncode('CERTIFICATE REQUEST', createCsr(k, 'x')) });
      assert.equal(r3.status, 200, `${type}: ${r3.text()}`);
      assert.deepEqual(leafOf(r3.text()).spki, k.spki);
    }
  });

  test('/renew: a certificate renews once (the same new key again gets the same certificate); revoking it revokes what renewed it', async () => {
    const gina = await clientCreds(t.ca, { id: 'gina', teams: ['sre'] });
    const k1 = generateKey('ec-p256');
    const renew = (key: ReturnType<typeof generateKey>, creds = gina) => req({ path: '/renew', method: 'POST', creds, headers: { 'content-type': 'application/pkcs10' }, body: createCsr(key, 'x') });
    const first = await renew(k1);
    assert.equal(first.status, 200, first.text());
    const again = await renew(k1);
    assert.deepEqual([again.status, again.text()], [200, first.text()], 'the answer was lost: the same certificate again, nothing new signed');
    const fork = await renew(generateKey('ec-p256'));
    assert.deepEqual([fork.status, fork.json().error?.code], [403, 'CERT_RENEWED'], 'a second key cannot fork the chain');
    const hank = await clientCreds(t.ca, { id: 'hank' });
    const racing = await Promise.all([1, 2, 3].map(() => renew(generateKey('ec-p256'), hank)));
    assert.equal(racing.filter((r) => r.status === 200).length, 1, 'of racing renewals of one certificate with different keys, one wins');
    const successor = leafOf(first.text()).serial;
    const revoked = await revokeCertificate(t.ca, gina.serial, 'keyCompromise');
    assert.deepEqual(revoked.alsoRevoked, [successor], 'the chain that grew from it is revoked with it');
    const crl = parseCrl((await t.ca.store.readCrl('intermediate'))!);
    assert.ok(crl.revokedSerials().has(gina.serial) && crl.revokedSerials().has(successor), 'both on the CRL');
    const renewedOp = (await t.ca.store.readIndex()).find((r) => r.op === 'issue' && r.serial === successor);
    assert.equal(renewedOp?.op === 'issue' && renewedOp.renewedFrom, gina.serial);
  });

  test('/renew with an empty body keeps the public key and the lifetime', async () => {
    const bob = await clientCreds(t.ca, { kind: 'service', id: 'bob', teams: ['ci'], ttlMs: 3_600_000 });
    const r = await req({ path: '/renew', method: 'POST', creds: bob });
    assert.equal(r.status, 200, r.text());
    const n = leafOf(r.text());
    const o = leafOf(bob.cert);
    assert.deepEqual(n.spki, o.spki);
    assert.equal(n.notAfter.getTime() - n.notBefore.getTime(), o.notAfter.getTime() - o.notBefore.getTime(), 'same lifetime (1h)');
    assert.equal((await opensslVerifyClient(t, r.text())).code, 0);
  });

  test('/renew refusals: no certificate, expired, another CA, a server certificate, bad CSRs, body too large, rate limit', async () => {
    const none = await req({ path: '/renew', method: 'POST' });
    assert.equal(none.status, 401);
    assert.equal(none.json().error?.code, 'CERT_REQUIRED');
    assert.ok(none.json().error?.hint);

    const short = await clientCreds(t.ca, { id: 'shortlived', ttlMs: 1000 });
    const other = makeCa('other.test');
    const stranger = await clientCreds(other.ca, { id: 'alice' });
    const srvCert = await serverCreds(t.ca);
    const carol = await clientCreds(t.ca, { id: 'carol' });
    const dave = await clientCreds(t.ca, { id: 'dave' });

    const foreign = await req({ path: '/renew', method: 'POST', creds: stranger });
    assert.deepEqual([foreign.status, foreign.json().error?.code], [401, 'CERT_UNTRUSTED']);
    // signed with this CA's key but never recorded in its store (e.g. a key used behind the CA's back)
    const unrecorded = await clientCreds(Authority.open(t.dir, { store: new MemoryStore() }), { id: 'alice' });
    const ghost = await req({ path: '/renew', method: 'POST', creds: unrecorded });
    assert.deepEqual([ghost.status, ghost.json().error?.code], [403, 'CERT_UNKNOWN']);
    const server = await req({ path: '/renew', method: 'POST', creds: srvCert });
    assert.deepEqual([server.status, server.json().error?.code], [403, 'CERT_PROFILE']);

    const garbage = await req({ path: '/renew', method: 'POST', creds: carol, headers: { 'content-type': 'application/pkcs10' }, body: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' });
    assert.deepEqual([garbage.status, garbage.json().error?.code], [400, 'CSR_INVALID']);
    const csr = createCsr(generateKey('ec-p256'), 'carol');
    csr[csr.length - 5]! ^= 0xff; // tampered signature
    const tampered = await req({ path: '/renew', method: 'POST', creds: carol, headers: { 'content-type': 'application/pkcs10' }, body: csr });
    assert.deepEqual([tampered.status, tampered.json().error?.code], [400, 'CSR_BAD_SIGNATURE']);
    const json = await req({ path: '/renew', method: 'POST', creds: dave, headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.deepEqual([json.status, json.json().error?.code], [400, 'BAD_CONTENT_TYPE']);

    const big = await req({ path: '/renew', method: 'POST', creds: dave, headers: { 'content-type': 'application/pkcs10' }, body: Buffer.alloc(65 * 1024, 0x41) });
    assert.deepEqual([big.status, big.json().error?.code], [413, 'BODY_TOO_LARGE']);

    // carol used 2 of her 3, dave 2: the third passes, the fourth is limited
    assert.equal((await req({ path: '/renew', method: 'POST', creds: carol })).status, 200);
    const limited = await req({ path: '/renew', method: 'POST', creds: carol });
    assert.equal(limited.status, 429);
    assert.equal(limited.json().error?.code, 'RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    assert.equal((await req({ path: '/renew', method: 'POST', creds: dave })).status, 200, 'the limit is per principal');

    await sleep(Math.max(0, leafOf(short.cert).notAfter.getTime() - Date.now() + 1100));
    const expired = await req({ path: '/renew', method: 'POST', creds: short });
    assert.deepEqual([expired.status, expired.json().error?.code], [401, 'CERT_EXPIRED']);
    const audited = srv.audit.filter((e) => e.event === 'ca.renew' && e.code === 'CERT_EXPIRED');
    assert.deepEqual(audited.map((e) => [e.status, e.fingerprint !== undefined]), [[401, true]], 'the audit names the refused certificate');
  });

  test('/sign: a one-time token, claims from the token only, refusals leave no trace but the audit', async () => {
    const { secret, token } = await createEnrollmentToken(t.ca, { kind: 'service', id: 'build-bot', teams: ['ci'], roles: ['deployer'], ttlMs: 600_000, certTtl: '2h' });
    // a CSR asking for someone else's identity, made by openssl: only its key is used
    const dir = tmpDir('ca-serve-csr-');
    const keyFile = path.join(dir, 'k.pem');
    const csrFile = path.join(dir, 'r.csr');
    const mk = await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', '/CN=admin', '-addext', 'subjectAltName=URI:spiffe://acme.test/user/admin']);
    assert.equal(mk.code, 0, mk.stderr);
    const csr = fs.readFileSync(csrFile);
    const sign = (secretText: string | undefined, body: Buffer | string = csr) =>
      req({ path: '/sign', method: 'POST', headers: { 'content-type': 'application/pkcs10', ...(secretText ? { authorization: `Bearer ${secretText}` } : {}) }, body });

    // a bad CSR does not use the token up
    const bad = await sign(secret, 'not a csr');
    assert.deepEqual([bad.status, bad.json().error?.code], [400, 'CSR_INVALID']);

    const r = await sign(secret);
    assert.equal(r.status, 200, r.text());
    assert.equal(r.headers['content-type'], 'application/pem-certificate-chain');
    const leaf = leafOf(r.text());
    const cert = new crypto.X509Certificate(readCertificates(r.body)[0]!);
    assert.equal(cert.subjectAltName, 'URI:spiffe://acme.test/service/build-bot');
    assert.equal(leaf.notAfter.getTime() - leaf.notBefore.getTime(), 2 * 3_600_000 + 60_000, 'lifetime from the token (plus the 1 min backdate)');
    const pub = crypto.createPublicKey(fs.readFileSync(keyFile)).export({ format: 'der', type: 'spki' });
    assert.deepEqual(leaf.spki, pub, 'the CSR key');
    assert.equal((await opensslVerifyClient(t, r.text())).code, 0);

    // the same request again (its answer lost, say): the same certificate, nothing new signed
    const again = await sign(secret);
    assert.equal(again.status, 200, again.text());
    assert.equal(again.text(), r.text());
    // the token with a CSR of another key: refused
    const otherKey = path.join(dir, 'k2.pem');
    const otherCsr = path.join(dir, 'r2.csr');
    assert.equal((await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', otherKey, '-out', otherCsr, '-subj', '/CN=thief'])).code, 0);
    const reused = await sign(secret, fs.readFileSync(otherCsr));
    assert.deepEqual([reused.status, reused.json().error?.code], [401, 'TOKEN_USED']);
    const wrong = await sign(secret.slice(0, -4) + 'AAAA');
    assert.deepEqual([wrong.status, wrong.json().error?.code], [401, 'TOKEN_INVALID']);
    const missing = await sign(undefined);
    assert.deepEqual([missing.status, missing.json().error?.code], [401, 'TOKEN_REQUIRED']);
    assert.equal(missing.headers['www-authenticate'], undefined, 'no Bearer challenge');
    const short = await createEnrollmentToken(t.ca, { kind: 'user', id: 'late', teams: [], roles: [], ttlMs: 300 });
    await sleep(400);
    const expired = await sign(short.secret);
    assert.deepEqual([expired.status, expired.json().error?.code], [401, 'TOKEN_EXPIRED']);

    const tokens = await t.ca.store.readTokens();
    assert.ok(tokens.find((x) => x.id === token.id)?.usedAt);
    assert.equal(tokens.find((x) => x.id === short.token.id)?.usedAt, undefined);
    // the audit line of a request is written when its response has finished: the last may trail the client's read
    for (let i = 0; i < 100 && srv.audit.filter((e) => e.event === 'ca.sign').length < 7; i++) await sleep(20);
    const signs = srv.audit.filter((e) => e.event === 'ca.sign').map((e) => [e.status, e.code ?? null, e.tokenId ?? null]);
    assert.deepEqual(signs, [
      [400, 'CSR_INVALID', token.id],
      [200, null, token.id],
      [200, null, token.id],
      [401, 'TOKEN_USED', token.id],
      [401, 'TOKEN_INVALID', token.id],
      [401, 'TOKEN_REQUIRED', null],
      [401, 'TOKEN_EXPIRED', short.token.id],
    ]);
    assert.deepEqual(srv.audit.filter((e) => e.event === 'ca.sign' && e.status === 401 && e.reason).map((e) => e.reason), ['used', 'unknown', 'expired']);
    assert.ok(!JSON.stringify(srv.audit).includes(secret.slice(22)), 'no secret in the audit');
    assert.ok(!JSON.stringify(await t.ca.store.readAudit()).includes(secret.slice(22)));
  });

  test('/sign: two requests racing with one token, on two servers over one store: exactly one certificate', async () => {
    const second = await startServer(t, { crl: { checkMs: 0 } });
    try {
      const { secret } = await createEnrollmentToken(t.ca, { kind: 'user', id: 'racer', teams: [], roles: [], ttlMs: 600_000 });
      const csr = createCsr(generateKey('ec-p256'), 'racer');
      const send = (p: number) => request(p, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: csr });
      const other = createCsr(generateKey('ec-p256'), 'racer');
      const results = await Promise.all([send(port), send(second.port), send(port), send(second.port)]);
      assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200], 'same key: the one certificate, to every request');
      assert.equal(new Set(results.map((r) => r.text())).size, 1);
      const stolen = await request(second.port, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: other });
      assert.deepEqual([stolen.status, stolen.json().error?.code], [401, 'TOKEN_USED'], 'another key: refused');
      const issued = (await t.ca.store.readIndex()).filter((r) => r.op === 'issue' && r.principal === 'spiffe://acme.test/user/racer');
      assert.equal(issued.length, 1);
    } finally {
      await second.server.shutdown(1000);
    }
  });

  test('healthz and metrics', async () => {
    const h = await req({ path: '/healthz' });
    assert.equal(h.status, 200);
    const body = h.json() as unknown as { ok: boolean; store: { reachable: boolean }; crls: { root: { number: string; expired: boolean }; intermediate: { nextUpdate: string; ageSeconds: number } } };
    assert.equal(body.ok, true);
    assert.equal(body.store.reachable, true);
    assert.equal(body.crls.root.expired, false);
    assert.ok(Date.parse(body.crls.intermediate.nextUpdate) > Date.now());
    const m = await req({ path: '/metrics' });
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /^text\/plain; version=0.0.4/);
    const text = m.text();
    for (const re of [
      /^mcp_mtls_ca_requests_total\{route="renew",status="200"\} \d+$/m,
      /^mcp_mtls_ca_requests_total\{route="renew",status="429"\} 1$/m,
      /^mcp_mtls_ca_certificates_issued_total\{route="renew"\} \d+$/m,
      /^mcp_mtls_ca_certificates_issued_total\{route="sign"\} \d+$/m,
      /^mcp_mtls_ca_renewals_total \d+$/m,
      /^mcp_mtls_ca_token_refusals_total\{reason="used"\} \d+$/m,
      /^mcp_mtls_ca_crl_next_update_seconds\{crl="intermediate",number="\d+"\} \d+$/m,
      /^mcp_mtls_ca_request_duration_seconds_bucket\{route="crl",le="\+Inf"\} \d+$/m,
    ]) {
      assert.match(text, re);
    }
  });
});

test('the CRL timer re-signs a CRL once it is due; two replicas racing do not break it', async () => {
  const t = makeCa();
  await writeCrls(t.ca, { ttlMs: 3000 }); // due after 2 s
  const a = await startServer(t, { crl: { cacheMs: 0, checkMs: 250 } });
  const b = await startServer(t, { crl: { cacheMs: 0, checkMs: 250 } });
  try {
    const first = await request(a.port, t.rootPem, { path: '/crl/intermediate.crl' });
    const n0 = parseCrl(first.body).number!;
    const maxAge = Number(/max-age=(\d+)/.exec(String(first.headers['cache-control']))?.[1]);
    assert.ok(maxAge <= 2, `max-age ${maxAge}: until the planned re-sign`);
    await sleep(2600);
    const fromA = await request(a.port, t.rootPem, { path: '/crl/intermediate.crl' });
    const fromB = await request(b.port, t.rootPem, { path: '/crl/intermediate.crl' });
    assert.ok(parseCrl(fromA.body).number! > n0, 're-signed');
    assert.deepEqual(fromA.body, fromB.body, 'both replicas serve the store\'s CRL');
    assert.equal(parseCrl(fromA.body).nextUpdate!.getTime() - parseCrl(fromA.body).thisUpdate.getTime(), 7 * 86_400_000, 'with the configured validity');
    const resigned = a.audit.concat(b.audit).filter((e) => e.event === 'crl.resign');
    assert.ok(resigned.length >= 1);
    assert.match((await request(a.port, t.rootPem, { path: '/metrics' })).text() + (await request(b.port, t.rootPem, { path: '/metrics' })).text(), /mcp_mtls_ca_crl_resigns_total\{crl="intermediate"\} [1-9]/);
  } finally {
    await Promise.all([a.server.shutdown(1000), b.server.shutdown(1000)]);
  }
});

test('shutdown drains: a request in flight completes, new connections are refused', async () => {
  const t = makeCa();
  const s = await startServer(t, { crl: { checkMs: 0 } });
  const slow = request(s.port, t.rootPem, { path: '/healthz' });
  await sleep(20);
  const closing = s.server.shutdown(2000);
  assert.equal((await slow).status, 200);
  await closing;
  await assert.rejects(request(s.port, t.rootPem, { path: '/healthz' }), /ECONNREFUSED/);
});

test('ca serve: a flood of made-up enrollment tokens reads the token table at most about once a second; a new token is still found', async () => {
  const t = makeCa();
  await writeCrls(t.ca);
  let reads = 0;
  const readTokens = t.ca.store.readTokens.bind(t.ca.store);
  t.ca.store.readTokens = async () => (reads++, readTokens());
  const srv = await startServer(t, { crl: { checkMs: 0 } });
  try {
    const csr = createCsr(generateKey('ec-p256'), 'x');
    const fake = () => `mcpt_${crypto.randomBytes(8).toString('hex')}_${crypto.randomBytes(32).toString('base64url')}`;
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 60 }, () => request(srv.port, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${fake()}`, 'content-type': 'application/pkcs10' }, body: csr })));
    const seconds = (Date.now() - started) / 1000;
    assert.ok(answers.every((a) => a.status === 401 && a.json().error?.code === 'TOKEN_INVALID'));
    assert.ok(reads <= Math.ceil(seconds) + 2, `${reads} reads of the token table for 60 made-up tokens in ${seconds.toFixed(1)} s`);
    const { secret } = await createEnrollmentToken(t.ca, { kind: 'service', id: 'fresh', teams: [], roles: [], ttlMs: 60_000 });
    const ok = await request(srv.port, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: csr });
    assert.equal(ok.status, 200, 'a token made a moment ago is found');
  } finally {
    await srv.server.shutdown(500);
  }
});
