/**
 * Sign-in (#22) with two `ca serve` replicas on one PostgreSQL store: an ID token is traded
 * once across replicas (the replay record is the store's, migration 4), also when raced.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../../src/ca/authority.js';
import { migrate, PostgresStore } from '../../../src/ca/store/postgres-store.js';
import { createCsr } from '../../../src/x509/csr.js';
import { generateKey } from '../../../src/x509/keys.js';
import { pemEncode } from '../../../src/x509/pem.js';
import { makeCa, request, startServer, type TestCa } from '../../support/ca-serve.js';
import { CLI_CLIENT_ID, startOidcProvider, type TestIdp } from '../../support/oidc.js';
import { startPostgres, type TestPostgres } from '../../support/postgres.js';

let pg: TestPostgres;
let idp: TestIdp;
let t: TestCa;
let replicas: { ca: Authority; srv: Awaited<ReturnType<typeof startServer>> }[] = [];

before(async () => {
  [pg, idp] = await Promise.all([startPostgres(), startOidcProvider()]);
  await migrate(pg.url);
  t = makeCa();
  const file = path.join(t.dir, 'config.yaml');
  const config = YAML.parse(fs.readFileSync(file, 'utf8'));
  config.login = { providers: [{ name: 'test-idp', issuer: idp.issuer, clientId: CLI_CLIENT_ID, principalClaim: 'preferred_username', groups: { sre: { teams: ['sre'] } } }] };
  fs.writeFileSync(file, YAML.stringify(config));
  for (let i = 0; i < 2; i++) {
    const ca = Authority.open(t.dir, { store: new PostgresStore(pg.url) });
    replicas.push({ ca, srv: await startServer({ ...t, ca }, { crl: { cacheMs: 0, checkMs: 0 }, login: { cooldownMs: 0 } }) });
  }
});

after(async () => {
  for (const r of replicas) {
    await r.srv.server.shutdown(1000);
    await r.ca.store.close();
  }
  replicas = [];
  await Promise.all([pg?.stop(), idp?.stop()]);
});

/** the refusal's code, or what came instead (a certificate: the replay was not refused) */
const codeOf = (r: { status: number; text(): string }): string | undefined => {
  try {
    return (JSON.parse(r.text()) as { error?: { code?: string } }).error?.code;
  } catch {
    return `${r.status} with no error (${r.text().slice(0, 27)}...)`;
  }
};

const send = (port: number, idToken: string) =>
  request(port, t.rootPem, { method: 'POST', path: '/login/sign', headers: { authorization: `Bearer ${idToken}`, 'content-type': 'application/pkcs10' }, body: pemEncode('CERTIFICATE REQUEST', createCsr(generateKey('ec-p256'), 'x')) });

test('two replicas, one PostgreSQL store: an ID token is traded once, raced or not', { timeout: 120_000 }, async () => {
  const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
  const first = (await idp.signIn({ user: 'alice' })).id_token;
  assert.equal((await send(a.srv.port, first)).status, 200);
  const replay = await send(b.srv.port, first);
  assert.deepEqual([replay.status, codeOf(replay)], [401, 'OIDC_REPLAY'], 'the other replica knows it was used');

  const raced = (await idp.signIn({ user: 'alice' })).id_token;
  const results = await Promise.all([a, b, a, b, a, b].map((r) => send(r.srv.port, raced)));
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 401, 401, 401, 401, 401], results.map((r) => r.status).join(' '));
  assert.ok(results.filter((r) => r.status === 401).every((r) => codeOf(r) === 'OIDC_REPLAY'));
  const issued = (await a.ca.store.readIndex()).filter((r) => r.op === 'issue' && r.principal === 'spiffe://acme.test/user/alice');
  assert.equal(issued.length, 2, 'one certificate per ID token');
});
