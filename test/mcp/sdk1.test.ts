/**
 * The server adapter with the real SDK 1.x client over undici and real TLS: identity per
 * caller, filtered lists, hidden tools answered exactly as unknown ones, conditions that
 * name their rule, authInfo in tool handlers, spoofed headers ignored, batches and
 * Mcp-Method headers, whoami with scopes, and a stateful session pushed out of the capped
 * session table closed (its id then gets 404).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, startFixture, TEST_POLICY, type McpFixture } from '../support/mcp.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { bundleOf } from '../support/mcp.js';

let f: McpFixture;
before(async () => {
  f = await startFixture();
});
after(async () => f.close());

const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0] as { text: string }).text;

test('alice (sre, admin) and bob (dev) see different tools, resources and prompts from the same server', async () => {
  const alice = await connect(f.url, f.clients.alice);
  const bob = await connect(f.url, f.clients.bob);
  try {
    const aliceTools = (await alice.client.listTools()).tools.map((t) => t.name).sort();
    const bobTools = (await bob.client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(aliceTools, ['deploy', 'search', 'slow', 'who', 'whoami']);
    assert.deepEqual(bobTools, ['deploy_staging', 'search', 'slow', 'who', 'whoami']);
    assert.deepEqual((await bob.client.listResources()).resources.map((r) => r.uri), ['docs://handbook']);
    assert.deepEqual((await bob.client.listPrompts()).prompts.map((p) => p.name), ['greet']);
    assert.equal(text(await alice.client.callTool({ name: 'deploy', arguments: { env: 'prod' } })), 'deployed to prod');
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('a hidden tool is answered exactly as an unknown tool; the audit log says why', async () => {
  const bob = await connect(f.url, f.clients.bob);
  try {
    const hidden = await bob.client.callTool({ name: 'deploy', arguments: { env: 'prod' } });
    const unknown = await bob.client.callTool({ name: 'no_such_tool', arguments: {} });
    assert.deepEqual(JSON.parse(JSON.stringify(hidden).replaceAll('deploy', 'X')), JSON.parse(JSON.stringify(unknown).replaceAll('no_such_tool', 'X')));
    assert.equal(text(hidden), 'MCP error -32602: Tool deploy not found');
    const e = f.audit.events.findLast((x) => x.event === 'decision' && x.target === 'deploy');
    assert.equal(e?.principal, 'spiffe://acme.test/user/bob');
    assert.equal(e?.allowed, false);
    assert.match(String(e?.reason), /no rule allows tool "deploy"/);
    // resources and prompts too: hidden ones read as missing
    await assert.rejects(bob.client.readResource({ uri: 'hr://payroll' }), /not found/i);
  } finally {
    await bob.close();
  }
});

test('a visible tool whose condition fails returns a tool error naming the rule', async () => {
  const bob = await connect(f.url, f.clients.bob);
  try {
    assert.equal(text(await bob.client.callTool({ name: 'deploy_staging', arguments: { env: 'staging' } })), 'deployed to staging');
    const denied = await bob.client.callTool({ name: 'deploy_staging', arguments: { env: 'prod' } });
    assert.equal(denied.isError, true);
    assert.match(text(denied), /Denied by policy rule "dev-staging": the condition of rule "dev-staging" does not hold/);
  } finally {
    await bob.close();
  }
});

test('a tool handler reads the caller from its request context (authInfo), not from arguments', async () => {
  const alice = await connect(f.url, f.clients.alice);
  try {
    const who = JSON.parse(text(await alice.client.callTool({ name: 'who', arguments: {} })));
    assert.equal(who.clientId, 'spiffe://acme.test/user/alice');
    assert.deepEqual(who.identity.teams, ['sre']);
    assert.deepEqual(who.identity.roles, ['admin']);
    assert.equal(who.identity.serial, f.clients.alice.serial);
    const me = JSON.parse(text(await alice.client.callTool({ name: 'whoami', arguments: {} })));
    assert.equal(me.principal, 'spiffe://acme.test/user/alice');
    assert.deepEqual(me.tools.sort(), ['deploy', 'search', 'slow', 'who', 'whoami']);
  } finally {
    await alice.close();
  }
});

async function rawPost(files: { cert: string; key: string; ca: string }, body: unknown, headers: Record<string, string> = {}) {
  const agent = createMtlsAgent(bundleOf(files));
  try {
    const res = await createMtlsFetch(agent)(f.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  } finally {
    await agent.close();
  }
}

const call = (id: number, name: string, args: unknown = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

test('identity headers sent by a client change nothing', async () => {
  const spoof = { 'x-forwarded-client-cert': 'Hash=00;URI=spiffe://acme.test/user/alice', 'x-mcp-user': 'alice', 'x-remote-user': 'alice' };
  const r = await rawPost(f.clients.bob, call(1, 'deploy', { env: 'prod' }), spoof);
  assert.equal(r.status, 200);
  assert.match(r.text, /Tool deploy not found/);
  const who = await rawPost(f.clients.bob, call(2, 'who'), spoof);
  assert.match(who.text, /spiffe:\/\/acme\.test\/user\/bob/);
  assert.doesNotMatch(who.text, /user\/alice/);
});

test('a batch hiding a denied call is refused as a whole; a method/header mismatch is refused', async () => {
  const batch = await rawPost(f.clients.bob, [call(1, 'search', { q: 'x' }), call(2, 'deploy', { env: 'prod' })]);
  assert.equal(batch.status, 200);
  const answers = JSON.parse(batch.text);
  assert.equal(answers.length, 2);
  for (const a of answers) assert.match(a.error.message, /batch refused/);
  const mismatch = await rawPost(f.clients.bob, call(3, 'deploy', { env: 'prod' }), { 'mcp-method': 'tools/call', 'mcp-name': 'search' });
  assert.equal(mismatch.status, 400);
  assert.match(JSON.parse(mismatch.text).error.message, /Mcp-Name header says "search" but the body names "deploy"/);
  const badMethod = await rawPost(f.clients.bob, call(4, 'search', { q: 'x' }), { 'mcp-method': 'tools/list' });
  assert.equal(badMethod.status, 400);
  const unknownMethod = await rawPost(f.clients.bob, { jsonrpc: '2.0', id: 5, method: 'admin/shutdown', params: {} });
  assert.match(unknownMethod.text, /Method not found/);
  assert.ok(f.audit.events.some((e) => e.event === 'decision' && /Mcp-Name header/.test(String(e.reason))), 'the mismatch is audited');
});

test('tools that require scopes say so in tools/list _meta; answers are private to caches', async () => {
  const scoped = await startFixture({
    policyText: `${TEST_POLICY}scopes:\n  - subjects: { roles: [admin] }\n    grant: [deploy:prod]\ntoolScopes:\n  deploy: [deploy:prod]\n`,
  });
  try {
    const alice = await connect(scoped.url, scoped.clients.alice);
    const carol = await connect(scoped.url, scoped.clients.carol); // sre, but not admin: lacks deploy:prod
    const deploy = (await alice.client.listTools()).tools.find((t) => t.name === 'deploy');
    assert.deepEqual(deploy?._meta?.['mcp-mtls/scopes'], ['deploy:prod']);
    assert.ok(!(await carol.client.listTools()).tools.some((t) => t.name === 'deploy'), 'a missing scope hides the tool');
    const who = JSON.parse(text(await alice.client.callTool({ name: 'who', arguments: {} })));
    assert.deepEqual(who.scopes, ['deploy:prod']);
    await alice.close();
    await carol.close();
    const res = await rawPostTo(scoped, scoped.clients.alice, { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
    assert.match(res.cacheControl ?? '', /private/);
  } finally {
    await scoped.close();
  }
});

async function rawPostTo(fx: McpFixture, files: { cert: string; key: string; ca: string }, body: unknown) {
  const agent = createMtlsAgent(bundleOf(files));
  try {
    const res = await createMtlsFetch(agent)(fx.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' }, body: JSON.stringify(body) });
    await res.text();
    return { status: res.status, cacheControl: res.headers.get('cache-control') };
  } finally {
    await agent.close();
  }
}

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
