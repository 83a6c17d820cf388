/**
 * The SDK 2.x adapter's stateful mode under a caller who never opens a session properly
 * (found reviewing #19 as an attacker): a 2025-era POST that names no session and is not an
 * initialize request makes the SDK answer 400 'Server not initialized'; the per-caller server
 * and transport built for it must not outlive that answer (before, each stayed subscribed to the
 * notify bus for good: a server, a transport and an event store per request, and every notify
 * wrote into each of them).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/server';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { policyFromText } from '../../src/policy/compile.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { BoundedEventStore } from '../../src/mcp/event-store.js';
import { createMtlsServer } from '../../src/mtls/mtls-server.js';
import { bundleOf, TEST_POLICY } from '../support/mcp.js';
import { startSdk2Fixture, type Sdk2Fixture } from '../support/mcp-sdk2.js';

/** the default store, counting the events the SDK stores in it */
class CountingStore extends BoundedEventStore {
  static stored = 0;
  override async storeEvent(streamId: string, message: object): Promise<string> {
    if (streamId === '_GET_stream') CountingStore.stored++;
    return super.storeEvent(streamId, message);
  }
}

let fixture: Sdk2Fixture;
let url: string;
let tls: Sdk2Fixture['tls'];
let clients: Sdk2Fixture['clients'];
let handler: Sdk2Fixture['handler'];

before(async () => {
  const build = (s: McpServer) => void s.registerTool('search', { description: 'search' }, async () => ({ content: [{ type: 'text' as const, text: 'results' }] }));
  fixture = await startSdk2Fixture({ serverInfo: { name: 'bounds', version: '1.0.0' }, build, policy: policyFromText(TEST_POLICY), stateful: true, eventStore: () => new CountingStore() });
  ({ url, tls, clients, handler } = fixture);
});
after(() => fixture.close());

test('stateful: a 2025-era request without a session is refused and leaves nothing behind', async () => {
  const agent = createMtlsAgent(bundleOf(clients.bob!));
  const f = createMtlsFetch(agent);
  const alice = createMtlsAgent(bundleOf(clients.alice!));
  const client = new Client1({ name: 'legacy', version: '1.0.0' });
  try {
    const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    for (let i = 0; i < 20; i++) {
      const r = await f(url, { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/list', params: {} }) });
      assert.equal(r.status, 400);
      assert.match(await r.text(), /not initialized/);
    }
    assert.equal(handler.sessions(), 0);
    // one honest session: notify reaches its store once, and nothing else
    await client.connect(new Transport1(new URL(url), { fetch: createMtlsFetch(alice) }));
    assert.equal(handler.sessions(), 1);
    CountingStore.stored = 0;
    handler.notify.toolsChanged();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(CountingStore.stored, 1, `notify wrote into ${CountingStore.stored} session stores; 1 session is open`);
  } finally {
    await client.close();
    await agent.close();
    await alice.close();
  }
});

test('stateful, both adapters: one certificate opening sessions closes its own oldest, not everyone else\'s (maxSessionsPerCertificate)', async () => {
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
  const initialize = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
  const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
  for (const kind of ['sdk1', 'sdk2'] as const) {
    const limits = { stateful: true, maxSessions: 6, maxSessionsPerCertificate: 2 } as const;
    const build = (s: McpServer) => void s.registerTool('search', { description: 'search' }, async () => ({ content: [{ type: 'text' as const, text: 'results' }] }));
    const h2 = kind === 'sdk1' ? createMcpSdk1Handler({ serverInfo: { name: 'b', version: '1' }, build: build as never, policy: policyFromText(TEST_POLICY), ...limits }) : createMcpSdk2Handler({ serverInfo: { name: 'b', version: '1' }, build, policy: policyFromText(TEST_POLICY), ...limits });
    const s2 = createMtlsServer({ ...tls, log: () => undefined }, h2);
    await new Promise<void>((r) => s2.listen(0, '127.0.0.1', r));
    const u = `https://localhost:${(s2.address() as AddressInfo).port}/mcp`;
    const agents = { alice: createMtlsAgent(bundleOf(clients.alice!)), bob: createMtlsAgent(bundleOf(clients.bob!)) };
    const open = async (who: 'alice' | 'bob') => {
      const r = await createMtlsFetch(agents[who])(u, { method: 'POST', headers: h, body: initialize });
      await r.text();
      return r.headers.get('mcp-session-id')!;
    };
    const use = async (who: 'alice' | 'bob', sid: string) => {
      const r = await createMtlsFetch(agents[who])(u, { method: 'POST', headers: { ...h, 'mcp-session-id': sid }, body: list });
      await r.text();
      return r.status;
    };
    try {
      const alice = await open('alice');
      const bobs: string[] = [];
      for (let i = 0; i < 6; i++) bobs.push(await open('bob'));
      assert.equal(await use('alice', alice), 200, `${kind}: alice's session was pushed out by bob's ${bobs.length}`);
      assert.deepEqual(await Promise.all(bobs.map((sid) => use('bob', sid))), [404, 404, 404, 404, 200, 200], kind);
      assert.equal(h2.sessions(), 3, kind);
    } finally {
      await h2.close();
      s2.closeAllConnections();
      s2.close();
      await agents.alice.close();
      await agents.bob.close();
    }
  }
});
