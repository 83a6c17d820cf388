/**
 * The SDK 2.x adapter's stateful mode for 2025-era clients: sessions (a per-caller 2.x
 * McpServer over the SDK's NodeStreamableHTTPServerTransport), so server-to-client requests
 * work as they do with the 1.x adapter: a tool asks the real SDK 1.x client (protocol
 * 2025-11-25, the conformance suite's client) for elicitation and sampling. Sessions are bound
 * to the certificate; 2026-07-28 requests are still served per request; streams resume.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import type { McpServer } from '@modelcontextprotocol/server';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { policyFromText } from '../../src/policy/compile.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { bundleOf, TEST_POLICY } from '../support/mcp.js';
import { startSdk2Fixture, type Sdk2Fixture } from '../support/mcp-sdk2.js';

const POLICY = `${TEST_POLICY}
  - id: asking
    subjects: { any: true }
    tools: [ask, poll]
`;

function build(server: McpServer) {
  server.registerTool('search', { description: 'search' }, async () => ({ content: [{ type: 'text' as const, text: 'results' }] }));
  server.registerTool('deploy', { description: 'deploy' }, async () => ({ content: [{ type: 'text' as const, text: 'deployed' }] }));
  server.registerTool('ask', { description: 'asks the client: elicitation, then sampling' }, async (ctx) => {
    const answer = await ctx.mcpReq.elicitInput({ message: 'your name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } });
    const sampled = await ctx.mcpReq.requestSampling({ messages: [{ role: 'user', content: { type: 'text', text: 'say hi' } }], maxTokens: 10 });
    const said = (sampled.content as { type: string; text?: string }).text;
    return { content: [{ type: 'text' as const, text: `${String((answer.content as { name?: unknown } | undefined)?.name)} / ${said}` }] };
  });
  server.registerTool('poll', { description: 'closes its stream mid-call' }, async (ctx) => {
    ctx.http?.closeSSE?.();
    await new Promise((r) => setTimeout(r, 300));
    return { content: [{ type: 'text' as const, text: 'polled, after the stream closed' }] };
  });
}

let fixture: Sdk2Fixture;
let url: string;
let clients: Sdk2Fixture['clients'];
let handler: Sdk2Fixture['handler'];
const audit = memoryAudit();

before(async () => {
  fixture = await startSdk2Fixture({ serverInfo: { name: 'sdk2-stateful', version: '1.0.0' }, build, policy: policyFromText(POLICY), stateful: true, retryInterval: 50, audit });
  ({ url, clients, handler } = fixture);
});
after(() => fixture.close());

/** the SDK 1.x client (2025-11-25), answering elicitation and sampling */
async function legacyClient(files: { cert: string; key: string; ca: string }) {
  const agent = createMtlsAgent(bundleOf(files));
  const client = new Client1({ name: 'legacy', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Alice' } }));
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', content: { type: 'text', text: 'hi from the model' }, model: 'test' }));
  const mtlsFetch = createMtlsFetch(agent);
  const resumedFrom: string[] = [];
  const logging = (async (u: string | URL, init?: RequestInit) => {
    const id = new Headers(init?.headers).get('last-event-id');
    if (id) resumedFrom.push(id);
    return mtlsFetch(u, init);
  }) as typeof fetch;
  const transport = new Transport1(new URL(url), { fetch: logging, reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 200, reconnectionDelayGrowFactor: 1, maxRetries: 5 } });
  await client.connect(transport);
  return { client, transport, resumedFrom, fetch: mtlsFetch, close: async () => { await client.close(); await agent.close(); } };
}
const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0] as { text: string }).text;

test('stateful: a 2025-11-25 client gets a session; a tool asks it for elicitation and sampling', async () => {
  const alice = await legacyClient(clients.alice!);
  try {
    assert.ok(alice.transport.sessionId, 'no session: the 2025-era request was served per request');
    assert.equal(handler.sessions(), 1);
    const r = await alice.client.callTool({ name: 'ask', arguments: {} }, undefined, { timeout: 10_000 });
    assert.equal(text(r), 'Alice / hi from the model');
    // the session's surface is the caller's
    assert.deepEqual((await alice.client.listTools()).tools.map((t) => t.name).sort(), ['ask', 'deploy', 'poll', 'search']);
  } finally {
    await alice.close();
  }
});

test('stateful: a tool closes its stream mid-call; the 2025-11-25 client resumes (Last-Event-ID) and gets the result', async () => {
  const alice = await legacyClient(clients.alice!);
  try {
    const r = await alice.client.callTool({ name: 'poll', arguments: {} }, undefined, { timeout: 10_000 });
    assert.equal(text(r), 'polled, after the stream closed');
    assert.ok(alice.resumedFrom.length >= 1);
  } finally {
    await alice.close();
  }
});

test('stateful: a session is bound to its certificate; hidden tools answer as unknown; 2026-07-28 is still per request', async () => {
  const alice = await legacyClient(clients.alice!);
  const bob = await legacyClient(clients.bob!);
  try {
    assert.deepEqual((await bob.client.listTools()).tools.map((t) => t.name).sort(), ['ask', 'poll', 'search']);
    const hidden = await bob.client.callTool({ name: 'deploy', arguments: {} }).catch((e: Error) => e.message);
    const unknown = await bob.client.callTool({ name: 'nothing', arguments: {} }).catch((e: Error) => e.message);
    assert.equal(String(hidden).replace('deploy', 'X'), String(unknown).replace('nothing', 'X'));
    // bob naming alice's session
    const stolen = await bob.fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': alice.transport.sessionId!, 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) });
    assert.equal(stolen.status, 404);
    await stolen.text();
    assert.ok(audit.events.some((e) => e.event === 'session.refused' && e.principal === 'spiffe://acme.test/user/bob'));
    const get = await bob.fetch(url, { headers: { accept: 'text/event-stream', 'mcp-session-id': alice.transport.sessionId!, 'mcp-protocol-version': '2025-11-25' } });
    assert.equal(get.status, 404);
    await get.text();
    // a 2026-07-28 client: served per request, no session
    const agent = createMtlsAgent(bundleOf(clients.bob!));
    const modern = new Client2({ name: 'modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await modern.connect(new Transport2(new URL(url), { fetch: createMtlsFetch(agent) as typeof fetch }));
    assert.deepEqual((await modern.listTools()).tools.map((t) => t.name).sort(), ['ask', 'poll', 'search']);
    await modern.close();
    await agent.close();
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('stateful: notify reaches 2025-era sessions too (their GET stream), per caller', async () => {
  const alice = await legacyClient(clients.alice!);
  const bob = await legacyClient(clients.bob!);
  const heard: string[] = [];
  alice.client.setNotificationHandler(ToolListChangedNotificationSchema, () => void heard.push('alice'));
  bob.client.setNotificationHandler(ToolListChangedNotificationSchema, () => void heard.push('bob'));
  try {
    // the SDK client opens its GET stream after initialization: give both a moment
    await new Promise((r) => setTimeout(r, 700));
    handler.notify.toolsChanged(['deploy']); // alice (sre) may see deploy, bob may not
    for (let i = 0; i < 50 && heard.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(heard, ['alice']);
    handler.notify.toolsChanged(['search']);
    for (let i = 0; i < 50 && heard.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(heard.slice(1).sort(), ['alice', 'bob']);
  } finally {
    await alice.close();
    await bob.close();
  }
});
