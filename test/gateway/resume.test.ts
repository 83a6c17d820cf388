/**
 * SSE resumption through the gateway (2025-11-25 `server-sse-polling`): a stream that closes
 * mid-call is resumed with `Last-Event-ID` and the replay is decided exactly as the stream it
 * resumes (filtered for the caller; a response the stream's POST did not forward dropped); an
 * event id is good only for the certificate and session it was sent to, even when the upstream
 * keeps one event store for all sessions (as the SDK's example store does) and would replay
 * another caller's events.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import { ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const POLICY = `
version: 1
rules:
  - id: sre-everything
    subjects: { teams: [sre] }
    tools: ["*"]
  - id: dev-poll
    subjects: { teams: [dev] }
    tools: [poll]
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ALL_TOOLS = [{ name: 'poll', inputSchema: { type: 'object' } }, { name: 'admin_secret', inputSchema: { type: 'object' } }];

// the upstream: SDK 1.x, stateful, ONE event store for every session (the SDK example's)
const shared = new InMemoryEventStore();
const sessions = new Map<string, StreamableHTTPServerTransport>();
const upstreamGets: (string | undefined)[] = [];
let upstream: http.Server;
let crafted: http.Server;
let gateway: MtlsServer;
let gw: ReturnType<typeof createGatewayHandler>;
const audit = memoryAudit();
const logged: string[] = [];
const clients: Record<string, { cert: string; key: string; ca: string }> = {};

function newServer(): McpServer {
  const server = new McpServer({ name: 'polling', version: '1' });
  server.registerTool('poll', { description: 'closes its stream mid-call' }, async (extra) => {
    extra.closeSSEStream?.();
    await sleep(300);
    return { content: [{ type: 'text', text: `the result for session ${extra.sessionId}` }] };
  });
  server.registerTool('admin_secret', { description: 'sre only' }, async () => ({ content: [{ type: 'text', text: 'secret' }] }));
  // a tools/list that closes its stream too, and lists everything: the gateway must filter the replay
  server.server.setRequestHandler(ListToolsRequestSchema, async (_req, extra) => {
    extra.closeSSEStream?.();
    await sleep(300);
    return { tools: ALL_TOOLS };
  });
  return server;
}

before(async () => {
  upstream = http.createServer(async (req, res) => {
    if (req.method === 'GET') upstreamGets.push(req.headers['last-event-id'] as string | undefined);
    const sid = req.headers['mcp-session-id'] as string | undefined;
    const known = sid ? sessions.get(sid) : undefined;
    if (known) return known.handleRequest(req, res);
    if (sid) return void res.writeHead(404).end();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => crypto.randomUUID(), eventStore: shared, retryInterval: 50, onsessioninitialized: (id) => void sessions.set(id, transport) });
    await newServer().connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));

  // a crafted upstream: its POST stream closes after the priming event; its replay carries a
  // full tools/list answer, an answer to a request the POST never forwarded, and junk
  crafted = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'crafted-session' });
      if (req.method === 'POST') {
        const id = (JSON.parse(body) as { id: unknown }).id;
        if ((JSON.parse(body) as { method: string }).method === 'initialize') {
          return res.end(`id: init\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'c', version: '1' } } })}\n\n`);
        }
        return res.end('id: p1\nretry: 50\ndata: \n\n');
      }
      const lines = [
        `id: r1\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 5, result: { content: [{ type: 'text', text: 'answer to a request the gateway answered itself' }] } })}\n\n`,
        `id: r2\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/unknown', params: {} })}\n\n`,
        `id: r3\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 7, result: { tools: ALL_TOOLS } })}\n\n`,
      ];
      res.end(lines.join(''));
    });
  });
  await new Promise<void>((r) => crafted.listen(0, '127.0.0.1', r));

  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  for (const [who, args] of [['alice', ['--team', 'sre']], ['bob', ['--team', 'dev']]] as const) {
    const r = await pki.issue(['issue', 'client', '--user', who, ...args]);
    clients[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  }
  const policy = policyFromText(POLICY);
  gw = createGatewayHandler({
    routes: [
      { prefix: '/mcp', upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`), policy: () => policy },
      { prefix: '/crafted', upstream: new URL(`http://127.0.0.1:${(crafted.address() as AddressInfo).port}/mcp`), policy: () => policy },
    ],
    audit,
    log: (line) => void logged.push(line),
  });
  gateway = createMtlsServer({ ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), audit, log: () => undefined }, gw);
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
});

after(async () => {
  for (const t of sessions.values()) await t.close();
  upstream.closeAllConnections();
  upstream.close();
  crafted.closeAllConnections();
  crafted.close();
  gateway.closeAllConnections();
  gateway.close();
  await gw.close();
});

const url = (route: string) => `https://localhost:${(gateway.address() as AddressInfo).port}${route}`;

interface Seen { method: string; lastEventId: string | null; status: number }

async function connect(who: string, route = '/mcp') {
  const agent = createMtlsAgent(bundleOf(clients[who]!));
  const mtlsFetch = createMtlsFetch(agent);
  const seen: Seen[] = [];
  const logging = (async (u: string | URL, init?: RequestInit) => {
    const r = await mtlsFetch(u, init);
    seen.push({ method: init?.method ?? 'GET', lastEventId: new Headers(init?.headers).get('last-event-id'), status: r.status });
    return r;
  }) as typeof fetch;
  const client = new Client({ name: 'resume-test', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(url(route)), { fetch: logging, reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 200, reconnectionDelayGrowFactor: 1, maxRetries: 5 } });
  await client.connect(transport);
  return { client, transport, seen, fetch: mtlsFetch, close: async () => { await client.close(); await agent.close(); } };
}
const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0] as { text: string }).text;

test('a stream closed mid-call is resumed through the gateway: the tool result arrives; a resumed tools/list is filtered for the caller', async () => {
  const bob = await connect('bob');
  try {
    const r = await bob.client.callTool({ name: 'poll', arguments: {} }, undefined, { timeout: 10_000 });
    assert.equal(text(r), `the result for session ${bob.transport.sessionId}`);
    assert.ok(bob.seen.some((s) => s.method === 'GET' && s.lastEventId && s.status === 200), JSON.stringify(bob.seen));
    // the upstream lists every tool, on the replayed stream: bob sees his one
    const tools = await bob.client.listTools(undefined, { timeout: 10_000 });
    assert.deepEqual(tools.tools.map((t) => t.name), ['poll']);
  } finally {
    await bob.close();
  }
});

test('an event id is good only for the certificate and session it was sent to, even when the upstream would replay it', async () => {
  const alice = await connect('alice');
  const bob = await connect('bob');
  try {
    await alice.client.callTool({ name: 'poll', arguments: {} }, undefined, { timeout: 10_000 });
    const eventId = alice.seen.find((s) => s.method === 'GET' && s.lastEventId)!.lastEventId!;
    const headers = (sid: string) => ({ accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', 'last-event-id': eventId });
    // the threat: straight to the upstream, bob's session with alice's event id replays her result
    const direct = await fetch(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`, { headers: headers(bob.transport.sessionId!), signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    const reader = direct?.body?.getReader();
    const first = reader ? new TextDecoder().decode((await reader.read()).value) : '';
    await reader?.cancel();
    assert.match(first, new RegExp(`the result for session ${alice.transport.sessionId}`));
    // through the gateway: refused before the upstream sees it, audited
    const gets = upstreamGets.length;
    const stolen = await bob.fetch(url('/mcp'), { headers: headers(bob.transport.sessionId!) });
    assert.equal(stolen.status, 400);
    assert.doesNotMatch(await stolen.text(), /result for session/);
    assert.equal(upstreamGets.length, gets);
    assert.ok(audit.events.some((e) => e.event === 'session.refused' && e.principal === 'spiffe://acme.test/user/bob' && /Last-Event-ID/.test(String(e.reason))));
    // bob naming alice's session: 404, as before
    const session = await bob.fetch(url('/mcp'), { headers: headers(alice.transport.sessionId!) });
    assert.equal(session.status, 404);
    await session.text();
    // alice in a new session of hers: not that session's event
    const alice2 = await connect('alice');
    const other = await alice2.fetch(url('/mcp'), { headers: headers(alice2.transport.sessionId!) });
    assert.equal(other.status, 400);
    await other.text();
    await alice2.close();
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('a replay is decided as the live stream: filtered, and no answer to a request its POST did not forward', async () => {
  const agent = createMtlsAgent(bundleOf(clients.bob!));
  const f = createMtlsFetch(agent);
  try {
    const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    const init = await f(url('/crafted'), { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) });
    await init.text();
    const sid = init.headers.get('mcp-session-id')!;
    // id 5: a hidden tool, answered by the gateway itself
    const hidden = await f(url('/crafted'), { method: 'POST', headers: { ...h, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'admin_secret', arguments: {} } }) });
    assert.match(await hidden.text(), /not found/);
    const list = await f(url('/crafted'), { method: 'POST', headers: { ...h, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }) });
    assert.match(await list.text(), /id: p1/);
    const replay = await f(url('/crafted'), { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', 'last-event-id': 'p1' } });
    assert.equal(replay.status, 200);
    const events = (await replay.text()).split('\n\n').filter((e) => e.includes('data:'));
    const messages = events.map((e) => JSON.parse(e.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { id?: number; result?: { tools?: { name: string }[] } });
    assert.deepEqual(messages.map((m) => m.id), [7], JSON.stringify(messages));
    assert.deepEqual(messages[0]!.result!.tools!.map((t) => t.name), ['poll']);
  } finally {
    await agent.close();
  }
});

test('a remembered stream keeps only what its answers\' filters read; one that asked too much is not resumable', async () => {
  const { rememberedContext, MAX_REMEMBERED_ASK_BYTES } = await import('../../src/gateway/resume.js');
  const answered = new Set<unknown>();
  const big = rememberedContext({ requestIds: new Set([1, 2]), asked: new Map<unknown, { method: string; params: unknown }>([[1, { method: 'tools/list', params: { junk: 'x'.repeat(1_000_000) } }], [2, { method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'who', value: 'y'.repeat(1_000_000) }, context: { arguments: {} } } }]]), answered });
  assert.ok(big);
  assert.equal(big.asked.get(1)!.params, undefined);
  assert.deepEqual(big.asked.get(2)!.params, { ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'who' }, context: { arguments: {} } });
  assert.equal(big.answered, answered);
  assert.ok(JSON.stringify([...big.asked]).length < MAX_REMEMBERED_ASK_BYTES);
  // ids or a completion context beyond the bound: not kept at all
  assert.equal(rememberedContext({ requestIds: new Set(['i'.repeat(10_000)]), asked: new Map(), answered }), undefined);
  assert.equal(rememberedContext({ requestIds: new Set([3]), asked: new Map([[3, { method: 'completion/complete', params: { ref: {}, argument: { name: 'a' }, context: { arguments: { a: 'z'.repeat(10_000) } } } }]]), answered }), undefined);
});

test('a client that closes its stream is not logged as an upstream failure', async () => {
  const agent = createMtlsAgent(bundleOf(clients.alice!));
  const f = createMtlsFetch(agent);
  try {
    const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    const init = await f(url('/mcp'), { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) });
    await init.text();
    const sid = init.headers.get('mcp-session-id')!;
    const before = logged.length;
    const stream = await f(url('/mcp'), { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } });
    assert.equal(stream.status, 200);
    await stream.body!.cancel();
    await agent.close();
    await sleep(500);
    assert.deepEqual(logged.slice(before).filter((l) => /Premature close/.test(l)), []);
  } finally {
    await agent.close().catch(() => undefined);
  }
});
