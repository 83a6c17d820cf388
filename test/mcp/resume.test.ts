/**
 * SSE resumption through the SDK 1.x adapter (stateful, SEP-1699 polling): a tool closes its
 * stream mid-call, the real SDK 1.x client comes back with `Last-Event-ID` and gets the result;
 * an event id means nothing in another session (each session has its own store), and another
 * certificate cannot name the session at all. The store is bounded per session.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { BoundedEventStore } from '../../src/mcp/event-store.js';
import { bundleOf, buildTestServer, startFixture, TEST_POLICY, type McpFixture } from '../support/mcp.js';

const POLICY = `${TEST_POLICY}
  - id: polling
    subjects: { any: true }
    tools: [poll]
`;

/** closes its own SSE stream before it answers: the client must resume to get the result */
function build(server: McpServer): void {
  buildTestServer(server);
  server.registerTool('poll', { description: 'closes its stream mid-call' }, async (extra) => {
    extra.closeSSEStream?.();
    await new Promise((r) => setTimeout(r, 300));
    return { content: [{ type: 'text', text: 'the result, after the stream closed' }] };
  });
}

let f: McpFixture;
before(async () => {
  f = await startFixture({ stateful: true, build, policyText: POLICY, retryInterval: 50 });
});
after(async () => f.close());

interface Seen { method: string; lastEventId: string | null; status: number }

/** the real SDK client, with a fetch that notes each request's Last-Event-ID and answer */
async function connect(files: { cert: string; key: string; ca: string }) {
  const agent = createMtlsAgent(bundleOf(files));
  const mtlsFetch = createMtlsFetch(agent);
  const seen: Seen[] = [];
  const logging = (async (url: string | URL, init?: RequestInit) => {
    const r = await mtlsFetch(url, init);
    seen.push({ method: init?.method ?? 'GET', lastEventId: new Headers(init?.headers).get('last-event-id'), status: r.status });
    return r;
  }) as typeof fetch;
  const client = new Client({ name: 'resume-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(f.url), { fetch: logging, reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 200, reconnectionDelayGrowFactor: 1, maxRetries: 5 } });
  await client.connect(transport);
  return { client, transport, seen, fetch: mtlsFetch, close: async () => { await client.close(); await agent.close(); } };
}

const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0] as { text: string }).text;

test('a tool closes its stream mid-call: the SDK client resumes with Last-Event-ID and gets the result', async () => {
  const alice = await connect(f.clients.alice);
  try {
    const r = await alice.client.callTool({ name: 'poll', arguments: {} }, undefined, { timeout: 10_000 });
    assert.equal(text(r), 'the result, after the stream closed');
    const resumed = alice.seen.filter((s) => s.method === 'GET' && s.lastEventId);
    assert.ok(resumed.length >= 1, `no GET with Last-Event-ID: ${JSON.stringify(alice.seen)}`);
    assert.equal(resumed[0]!.status, 200);
  } finally {
    await alice.close();
  }
});

test('an event id from another session resumes nothing; another certificate cannot name the session', async () => {
  const alice = await connect(f.clients.alice);
  const bob = await connect(f.clients.bob);
  const alice2 = await connect(f.clients.alice);
  try {
    await alice.client.callTool({ name: 'poll', arguments: {} }, undefined, { timeout: 10_000 });
    const eventId = alice.seen.find((s) => s.method === 'GET' && s.lastEventId)!.lastEventId!;
    const get = (who: typeof bob, sid: string) => who.fetch(f.url, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', 'last-event-id': eventId } });
    // bob, in his own session: alice's event id is not in his session's store
    const own = await get(bob, bob.transport.sessionId!);
    assert.equal(own.status, 400, await own.text());
    // bob naming alice's session: it does not exist for him
    const stolen = await get(bob, alice.transport.sessionId!);
    assert.equal(stolen.status, 404);
    await stolen.text();
    // alice herself, in another of her sessions: not that session's event either
    const other = await get(alice2, alice2.transport.sessionId!);
    assert.equal(other.status, 400);
    await other.text();
  } finally {
    await alice.close();
    await bob.close();
    await alice2.close();
  }
});

test('the default event store is bounded in events and in bytes, oldest first, the newest always kept', async () => {
  const store = new BoundedEventStore({ maxEvents: 3, maxBytes: 10_000 });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await store.storeEvent('s', { jsonrpc: '2.0', method: 'notifications/message', params: { i } }));
  assert.equal(store.usage.events, 3);
  assert.equal(await store.getStreamIdForEventId(ids[0]!), undefined);
  const replayed: string[] = [];
  assert.equal(await store.replayEventsAfter(ids[2]!, { send: async (id) => void replayed.push(id) }), 's');
  assert.deepEqual(replayed, [ids[3], ids[4]]);
  const small = new BoundedEventStore({ maxEvents: 100, maxBytes: 200 });
  for (let i = 0; i < 10; i++) await small.storeEvent('s', { jsonrpc: '2.0', method: 'm', params: { pad: 'x'.repeat(40) } });
  assert.ok(small.usage.bytes <= 200, JSON.stringify(small.usage));
  await small.storeEvent('s', { jsonrpc: '2.0', method: 'm', params: { pad: 'x'.repeat(500) } });
  assert.equal(small.usage.events, 1);
  // a priming event is not replayed (it carries no message)
  const p = new BoundedEventStore();
  const prime = await p.storeEvent('t', {});
  const later = await p.storeEvent('t', {});
  const msg = await p.storeEvent('t', { jsonrpc: '2.0', id: 1, result: {} });
  const sent: string[] = [];
  await p.replayEventsAfter(prime, { send: async (id) => void sent.push(id) });
  assert.deepEqual(sent, [msg]);
  assert.ok(later);
});
