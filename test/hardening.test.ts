/**
 * Regressions from the security review: each case once let a request past the policy, or
 * let one request cost far more than its size.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Authority } from '../src/ca/authority.js';
import { buildCrl } from '../src/ca/crl-signing.js';
import { createMtlsAgent, createMtlsFetch } from '../src/client/agent.js';
import type { Identity } from '../src/identity/identity.js';
import { policyFromText } from '../src/policy/compile.js';
import { compilePattern } from '../src/policy/glob.js';
import { authorizationFor, MAX_NAME, MAX_URI } from '../src/policy/mcp.js';
import { gateMcpBody, unknownTargetAnswer } from '../src/server/mcp-gate.js';
import { keyIdentifier } from '../src/x509/keys.js';
import { bundleOf, startFixture } from './support/mcp.js';

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
  const d = (uri: string) => POLICY.decide(bob, { kind: 'resource', uri: (authorizationFor('resources/read', { uri }) as { target: { uri: string } }).target.uri }).allowed;
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
    const rootCrl = buildCrl({ subjectName: ca.root.subjectName, keyId: keyIdentifier(ca.root.spki) }, await ca.rootSigner(), {
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
