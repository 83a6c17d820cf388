/**
 * Regressions from the security review: each case once let a request past the policy, or
 * let one request cost far more than its size.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { Agent, fetch } from 'undici';
import { Authority } from '../../src/ca/authority.js';
import { intermediateSigner, rootSigner } from '../../src/ca/ca-keys.js';
import { buildCrl } from '../../src/ca/crl-signing.js';
import { clientFields } from '../../src/ca/profiles.js';
import { normalizeClaims } from '../../src/identity/encode.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import type { Identity } from '../../src/identity/identity.js';
import { policyFromText } from '../../src/policy/compile.js';
import { compilePattern } from '../../src/policy/glob.js';
import { authorizationFor, MAX_NAME, MAX_URI } from '../../src/policy/mcp.js';
import { gateMcpBody, unknownTargetAnswer } from '../../src/mcp/gate.js';
import { createMtlsServer } from '../../src/mtls/mtls-server.js';
import { randomSerial, signCertificate } from '../../src/x509/certificate.js';
import { generateKey, keyIdentifier } from '../../src/x509/keys.js';
import { pemEncode } from '../../src/x509/pem.js';
import { makePki } from '../support/pki.js';
import { IdleMap } from '../../src/util/idle-map.js';
import { bundleOf, connect, startFixture } from '../support/mcp.js';

const bob: Identity = { principal: 'spiffe://acme.test/user/bob', trustDomain: 'acme.test', kind: 'user', id: 'bob', teams: ['dev'], roles: [], serial: '01', fingerprint: 'ab'.repeat(32), notAfter: new Date(Date.now() + 3_600_000) };
const POLICY = policyFromText(`
version: 1
rules:
  - id: reads
    subjects: { any: true }
    tools: [search]
    resources: ["file:///srv/public/**"]
`);

test('glob matching is linear: adversarial patterns and names cost microseconds, not seconds', () => {
  const m = compilePattern('*a*a*a*a*a*a*a*a*a*a*b');
  const name = 'a'.repeat(MAX_NAME);
  const t0 = performance.now();
  assert.equal(m(name), false);
  assert.equal(compilePattern('**/**/**/**/**/x')('a/'.repeat(2000)), false);
  const ms = performance.now() - t0;
  assert.ok(ms < 200, `took ${ms.toFixed(1)} ms`);
  // and still matches what it should
  assert.equal(m('xaxaaaaaaaaaab'), true);
  assert.equal(compilePattern('read_*')('read_file'), true);
  assert.equal(compilePattern('read_*')('read/file'), false);
});

test('resource URIs are decided on the form the server will act on', () => {
  // a URI without a canonical form (encoded dot segments among them) is refused before any decision
  const d = (uri: string) => {
    const a = authorizationFor('resources/read', { uri });
    return a.kind === 'target' && POLICY.decide(bob, a.target).allowed;
  };
  assert.equal(d('file:///srv/public/readme'), true);
  assert.equal(d('file:///srv/public/../secret'), false);
  assert.equal(d('file:///srv/public/%2e%2e/secret'), false);
  assert.equal(d('file:///srv/public/%2E%2E/%2e%2e/etc/passwd'), false);
  assert.equal(d('FILE:///srv/public/readme'), true, 'the scheme is case-insensitive, as the server parses it');
});

test('over-long names and URIs are closed as unknown instead of being matched', () => {
  assert.equal(authorizationFor('tools/call', { name: 'x'.repeat(MAX_NAME + 1) }).kind, 'unknown');
  assert.equal(authorizationFor('resources/read', { uri: `file:///${'a'.repeat(MAX_URI)}` }).kind, 'unknown');
  for (const m of ['server/discover', 'subscriptions/listen']) assert.equal(authorizationFor(m, {}).kind, 'always');
});

test('a request with id null is decided like any other request', () => {
  const gate = (body: unknown) => gateMcpBody(body, { policy: POLICY, identity: bob, headers: {}, hiddenAnswer: unknownTargetAnswer });
  const hidden = gate({ jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'deploy', arguments: {} } });
  assert.equal(hidden.kind, 'respond', 'id: null must not slip through as a notification');
  assert.match(JSON.stringify(hidden.kind === 'respond' ? hidden.body : null), /Tool deploy not found/);
  const batch = gate([{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: {} } }, { jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'deploy', arguments: {} } }]);
  assert.equal(batch.kind, 'respond');
  assert.equal(gate({ jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'search', arguments: {} } }).kind, 'pass');
  assert.equal(gate({ jsonrpc: '2.0', method: 'notifications/initialized' }).kind, 'pass');
});

test('revoking the intermediate on the root CRL cuts off its clients: open connections and new ones', async () => {
  const f = await startFixture();
  try {
    const agent = createMtlsAgent(bundleOf(f.clients.alice));
    const post = (a: typeof agent) => createMtlsFetch(a)(f.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) });
    assert.equal((await post(agent)).status, 200);
    const ca = Authority.open(f.pki.pki);
    const rootCrl = buildCrl({ subjectName: ca.root.subjectName, keyId: keyIdentifier(ca.root.spki) }, await rootSigner(ca), {
      number: 99n,
      now: new Date(),
      nextUpdate: new Date(Date.now() + 86_400_000),
      entries: [{ serial: ca.intermediate.serial, revokedAt: new Date(), reason: 'cACompromise' }],
    });
    const closed = f.server.reloadCrls([fs.readFileSync(path.join(f.pki.pki, 'crl', 'intermediate.crl')), rootCrl]);
    assert.ok(closed >= 1, `closed ${closed} connections`);
    for (const a of [agent, createMtlsAgent(bundleOf(f.clients.bob))]) {
      const outcome = await post(a).then(
        (r) => r.status,
        (e: Error) => e.name,
      );
      assert.notEqual(outcome, 200, 'a client of the revoked intermediate is refused');
      await a.close();
    }
  } finally {
    await f.close();
  }
});

test('trustDomainRoots: with several roots trusted, one tenant\'s CA cannot issue another tenant\'s principals', async () => {
  const acme = await makePki();
  const globex = await makePki(['--trust-domain', 'globex.test']);
  const srv = await acme.issue(['issue', 'server', '--dns', 'localhost']);
  const legit = await globex.issue(['issue', 'client', '--user', 'gina']);
  // globex's own CA signs a certificate that claims to be acme's alice
  const gca = Authority.open(globex.pki);
  const key = generateKey('ec-p256');
  const fields = clientFields(gca.issuer, { serial: randomSerial(), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), spki: key.spki, keyType: 'ec-p256', claims: normalizeClaims({ trustDomain: 'acme.test', kind: 'user', id: 'alice', teams: ['sre'], roles: ['admin'] }) });
  const forged = { cert: [signCertificate(fields, await intermediateSigner(gca)), gca.intermediateDer].map((d) => pemEncode('CERTIFICATE', d)).join(''), key: crypto.createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) };
  const roots = { 'acme.test': fs.readFileSync(path.join(acme.pki, 'root.crt')), 'globex.test': fs.readFileSync(path.join(globex.pki, 'root.crt')) };
  const ask = async (trustDomainRoots: typeof roots | undefined, client: { cert: string | Buffer; key: string | Buffer }, withIntermediates = true) => {
    const server = createMtlsServer({ cert: fs.readFileSync(srv.files.cert), key: fs.readFileSync(srv.files.key!), ca: [...Object.values(roots), ...(withIntermediates ? [acme, globex].map((p) => fs.readFileSync(path.join(p.pki, 'intermediate.crt'))) : [])], trustDomains: ['acme.test', 'globex.test'], log: () => undefined, ...(trustDomainRoots ? { trustDomainRoots } : {}) }, (req, res) => {
      res.end(req.auth?.extra.identity.principal);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const agent = new Agent({ connect: { ca: roots['acme.test'], cert: client.cert, key: client.key } });
    try {
      const res = await fetch(`https://localhost:${(server.address() as AddressInfo).port}/`, { dispatcher: agent });
      return `${res.status} ${await res.text()}`;
    } finally {
      await agent.close();
      server.closeAllConnections();
      server.close();
    }
  };
  // without the binding the forged principal gets through: the reason the option exists
  assert.match(await ask(undefined, forged), /^200 spiffe:\/\/acme\.test\/user\/alice/);
  assert.match(await ask(roots, forged), /^401 .*not anchored/);
  const gina = { cert: fs.readFileSync(legit.files.cert), key: fs.readFileSync(legit.files.key!) };
  assert.match(await ask(roots, gina), /^200 spiffe:\/\/globex\.test\/user\/gina/);
  // the issuing intermediate must be known to bind it to a root: unknown fails closed, and says what to add
  assert.match(await ask(roots, gina, false), /^401 .*add its intermediate certificate/);
});

test('session tables forget idle sessions and keep at most their cap, least recently used first', () => {
  let now = 0;
  const evicted: string[] = [];
  const m = new IdleMap<string, number>({ idleMs: 1000, max: 2, now: () => now, onEvict: (k) => evicted.push(k) });
  m.set('a', 1);
  m.set('b', 2);
  now = 500;
  assert.equal(m.get('a'), 1); // a is now the most recent
  m.set('c', 3); // over the cap: b goes
  assert.deepEqual(evicted, ['b']);
  assert.equal(m.has('b'), false);
  now = 1499;
  assert.equal(m.get('c'), 3);
  now = 1501; // a unused since 500
  assert.equal(m.get('a'), undefined);
  assert.deepEqual(evicted, ['b', 'a']);
  assert.equal(m.size, 1);
});

test('stateful adapter: a session pushed out of the table is closed and its id gets 404', async () => {
  const f = await startFixture({ stateful: true, maxSessions: 1 });
  try {
    const first = await connect(f.url, f.clients.alice);
    const second = await connect(f.url, f.clients.carol);
    await second.client.listTools();
    await assert.rejects(first.client.listTools(), /404|Session not found/);
    await Promise.allSettled([first.close(), second.close()]);
  } finally {
    await f.close();
  }
});
