/**
 * `ca serve` replicas on one PostgreSQL database (a private cluster, test/support/postgres.ts):
 * a token raced across replicas enrolls once, a revocation made through another replica is
 * refused at once, both serve the same CRLs, racing CRL re-signs stay ordered, and a lost
 * database answers 503 with Retry-After (health says why) instead of hanging or crashing.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Authority } from '../../../src/ca/authority.js';
import { revokeCertificate, writeCrls } from '../../../src/ca/revocation.js';
import { migrate, PostgresStore } from '../../../src/ca/store/postgres-store.js';
import { createEnrollmentToken } from '../../../src/ca/tokens.js';
import { createCsr } from '../../../src/x509/csr.js';
import { parseCrl } from '../../../src/x509/crl.js';
import { generateKey } from '../../../src/x509/keys.js';
import { cli, cliOk } from '../../support/cli.js';
import { startPostgres, type TestPostgres } from '../../support/postgres.js';
import { clientCreds, makeCa, request, sleep, startServer, type TestCa } from '../../support/ca-serve.js';

let pg: TestPostgres;
let t: TestCa;
let replicas: { ca: Authority; srv: Awaited<ReturnType<typeof startServer>> }[] = [];

before(async () => {
  pg = await startPostgres();
  await migrate(pg.url);
  t = makeCa();
  for (let i = 0; i < 2; i++) {
    const ca = Authority.open(t.dir, { store: new PostgresStore(pg.url) });
    replicas.push({ ca, srv: await startServer({ ...t, ca }, { crl: { cacheMs: 0, checkMs: 0 } }) });
  }
  await writeCrls(replicas[0]!.ca); // the database starts without CRLs
});

after(async () => {
  for (const r of replicas) {
    await r.srv.server.shutdown(1000);
    await r.ca.store.close();
  }
  replicas = [];
  await pg.stop();
});

test('two replicas, one database: a token enrolls once, a revocation through the other replica applies at once, same CRLs', async () => {
  const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
  const { secret } = await createEnrollmentToken(a.ca, { kind: 'service', id: 'bot', teams: ['ci'], roles: [], ttlMs: 600_000 });
  const csr = createCsr(generateKey('ec-p256'), 'bot');
  const send = (port: number) => request(port, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: csr });
  const other = createCsr(generateKey('ec-p256'), 'bot');
  const sendOther = (port: number) => request(port, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: other });
  const results = await Promise.all([send(a.srv.port), send(b.srv.port), send(a.srv.port), send(b.srv.port)]);
  // one certificate; the racing requests with the same key get that same certificate (a retry after a lost answer is safe)
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200]);
  assert.equal(new Set(results.map((r) => r.text())).size, 1, 'the same certificate for every request with this key');
  const issued = (await a.ca.store.readIndex()).filter((r) => r.op === 'issue' && r.principal === 'spiffe://acme.test/service/bot');
  assert.equal(issued.length, 1, 'one certificate issued for the token');
  const stolen = await Promise.all([sendOther(a.srv.port), sendOther(b.srv.port)]);
  assert.deepEqual(stolen.map((r) => [r.status, r.json().error?.code]), [[401, 'TOKEN_USED'], [401, 'TOKEN_USED']], 'another key cannot use the token');

  const alice = await clientCreds(a.ca, { id: 'alice', teams: ['sre'] });
  assert.equal((await request(b.srv.port, t.rootPem, { path: '/renew', method: 'POST', creds: alice })).status, 200);
  await revokeCertificate(b.ca, alice.serial, 'keyCompromise');
  const refused = await request(a.srv.port, t.rootPem, { path: '/renew', method: 'POST', creds: alice });
  assert.deepEqual([refused.status, refused.json().error?.code], [403, 'CERT_REVOKED']);
  const fromA = await request(a.srv.port, t.rootPem, { path: '/crl/intermediate.crl' });
  const fromB = await request(b.srv.port, t.rootPem, { path: '/crl/intermediate.crl' });
  assert.deepEqual(fromA.body, fromB.body);
  assert.ok(parseCrl(fromA.body).revokedSerials().has(alice.serial));
});

test('replicas racing to re-sign a due CRL: each signs under the store\'s lock with a new number, both then serve the newest', async () => {
  const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
  await writeCrls(a.ca, { ttlMs: 3000 });
  const before = parseCrl((await request(a.srv.port, t.rootPem, { path: '/crl/intermediate.crl' })).body).number!;
  await sleep(2100);
  const [ra, rb] = await Promise.all([a.srv.server.crls.check(), b.srv.server.crls.check()]);
  assert.ok(ra.signed.includes('intermediate') || rb.signed.includes('intermediate'));
  assert.equal(ra.error ?? rb.error, undefined);
  const served = await Promise.all([a, b].map(async (r) => parseCrl((await request(r.srv.port, t.rootPem, { path: '/crl/intermediate.crl' })).body)));
  assert.equal(served[0]!.number, served[1]!.number);
  assert.ok(served[0]!.number! > before);
  const stored = parseCrl((await a.ca.store.readCrl('intermediate'))!);
  assert.equal(stored.number, served[0]!.number);
});

test('token create and token list with --store postgres://… (the built CLI)', async () => {
  const url = await pg.newDatabase();
  await migrate(url);
  const made = await cliOk<{ token: string; id: string; principal: string }>(['token', 'create', '--dir', t.dir, '--store', url, '--user', 'dana', '--team', 'sre', '--ttl', '10m', '--json']);
  assert.match(made.token, /^mcpt_/);
  const list = await cliOk<{ tokens: { id: string; status: string; principal: string }[] }>(['token', 'list', '--dir', t.dir, '--store', url, '--json']);
  assert.deepEqual(list.tokens.map((x) => [x.id, x.principal, x.status]), [[made.id, 'spiffe://acme.test/user/dana', 'unused']]);
  const ca = Authority.open(t.dir, { store: new PostgresStore(url) });
  try {
    assert.equal((await ca.store.readTokens()).length, 1, 'in the database, not the folder');
  } finally {
    await ca.store.close();
  }
});

test('issuance limits with --store postgres://…: refused issue and token create (LIMIT_EXCEEDED, exit 65) leave no record, serial or token in the database', async () => {
  const url = await pg.newDatabase();
  await migrate(url);
  const out = `${t.dir}-limits-out`;
  const refusedIssue = await cli(['issue', 'client', '--dir', t.dir, '--store', url, '--user', 'erin', '--ttl', '4y', '--out', out]);
  assert.equal(refusedIssue.code, 65, refusedIssue.stderr);
  assert.match(refusedIssue.stderr, /client certificate lifetime 4y exceeds the limit of 30d \(limits\.client\.maxTtl in config\.yaml\)/);
  const refusedToken = await cli(['token', 'create', '--dir', t.dir, '--store', url, '--user', 'erin', '--ttl', '10m', '--cert-ttl', '31d']);
  assert.equal(refusedToken.code, 65, refusedToken.stderr);
  assert.match(refusedToken.stderr, /client certificate lifetime 31d exceeds the limit of 30d/);
  const ca = Authority.open(t.dir, { store: new PostgresStore(url) });
  try {
    assert.deepEqual(await ca.store.readIndex(), [], 'no certificate recorded');
    assert.deepEqual(await ca.store.readTokens(), [], 'no token stored');
  } finally {
    await ca.store.close();
  }
});

test('the database goes away: 503 with Retry-After on /sign and /renew, health says unreachable, the server keeps running', async () => {
  const [a] = replicas as [(typeof replicas)[0]];
  const bob = await clientCreds(a.ca, { id: 'bob' });
  const { secret } = await createEnrollmentToken(a.ca, { kind: 'user', id: 'carol', teams: [], roles: [], ttlMs: 600_000 });
  await pg.stop();
  const renew = await request(a.srv.port, t.rootPem, { path: '/renew', method: 'POST', creds: bob });
  assert.deepEqual([renew.status, renew.json().error?.code], [503, 'STORE_UNAVAILABLE']);
  assert.equal(renew.headers['retry-after'], '5');
  const sign = await request(a.srv.port, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: createCsr(generateKey('ec-p256'), 'c') });
  assert.deepEqual([sign.status, sign.json().error?.code], [503, 'STORE_UNAVAILABLE']);
  const health = await request(a.srv.port, t.rootPem, { path: '/healthz' });
  assert.equal(health.status, 503);
  assert.equal((health.json() as unknown as { store: { reachable: boolean } }).store.reachable, false);
  assert.equal((await request(a.srv.port, t.rootPem, { path: '/metrics' })).status, 200);
});
