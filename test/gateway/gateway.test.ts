/**
 * The gateway in front of MCP servers it does not own: @modelcontextprotocol/server-everything
 * (from npm, Streamable HTTP) and a small SDK server that reports what it receives.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { policyFromText } from '../../src/policy/compile.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { ROOT } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const BIG = Array.from({ length: 3 * 1024 }, (_, i) => `${String(i).padStart(6, '0')}${'x'.repeat(1017)}`).join('\n');

const POLICY = `
version: 1
rules:
  - id: sre-everything
    subjects: { teams: [sre] }
    tools: ["*"]
    resources: ["**"]
    prompts: ["*"]
  - id: dev-basics
    subjects: { teams: [dev] }
    tools: [echo, get-sum, report, big]
`;

let everything: ChildProcess;
let everythingUrl: string;
let reporter: http.Server;
let slow: http.Server;
/** answers with headers, then a byte of JSON every 100 ms, never ending; its requests' sockets, and whether each closed */
let trickle: http.Server;
const trickled: { closed: boolean }[] = [];
let gateway: MtlsServer;
let gw: ReturnType<typeof createGatewayHandler>;
let base: string;
const audit = memoryAudit();
const metrics = new GatewayMetrics();
const clients: Record<string, { cert: string; key: string; ca: string }> = {};

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

before(async () => {
  const port = await freePort();
  everything = spawn(process.execPath, [path.join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('server-everything did not start')), 15_000);
    everything.stderr!.on('data', (d) => {
      if (/listening on port/.test(String(d))) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  everythingUrl = `http://127.0.0.1:${port}/mcp`;

  // an upstream that reports the forwarded identity it receives
  reporter = http.createServer(async (req, res) => {
    const server = new McpServer({ name: 'reporter', version: '1' });
    server.registerTool('report', { description: 'what the gateway forwarded' }, async (extra) => ({
      content: [{ type: 'text', text: JSON.stringify({ xfcc: extra.requestInfo?.headers['x-forwarded-client-cert'], xmcpuser: extra.requestInfo?.headers['x-mcp-user'] ?? null, meta: extra._meta }) }],
    }));
    server.registerTool('big', { description: 'a 3 MB answer' }, async () => ({ content: [{ type: 'text', text: BIG }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => void transport.close());
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => reporter.listen(0, '127.0.0.1', r));
  slow = http.createServer(() => undefined); // never answers
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  trickle = http.createServer((req, res) => {
    const seen = { closed: false };
    trickled.push(seen);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{');
    const timer = setInterval(() => res.write(' '), 100);
    res.on('close', () => {
      seen.closed = true;
      clearInterval(timer);
    });
  });
  await new Promise<void>((r) => trickle.listen(0, '127.0.0.1', r));

  const pki = await makePki();
  base = pki.base;
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  for (const [who, args] of [['alice', ['--team', 'sre']], ['bob', ['--team', 'dev']]] as const) {
    const r = await pki.issue(['issue', 'client', '--user', who, ...args]);
    clients[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  }
  const policy = policyFromText(POLICY);
  gw = createGatewayHandler({
    routes: [
      { prefix: '/everything', upstream: new URL(everythingUrl), policy: () => policy },
      { prefix: '/reporter', upstream: new URL(`http://127.0.0.1:${(reporter.address() as AddressInfo).port}/mcp`), policy: () => policy },
      { prefix: '/down', upstream: new URL(`http://127.0.0.1:${await freePort()}/mcp`), policy: () => policy },
      { prefix: '/slow', upstream: new URL(`http://127.0.0.1:${(slow.address() as AddressInfo).port}/mcp`), policy: () => policy },
      { prefix: '/trickle', upstream: new URL(`http://127.0.0.1:${(trickle.address() as AddressInfo).port}/mcp`), policy: () => policy },
    ],
    audit,
    metrics,
    upstreamTimeoutMs: 500,
    maxBodyBytes: 64 * 1024,
    log: () => undefined,
  });
  gateway = createMtlsServer(
    {
      ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string),
      audit,
      log: () => undefined,
      unauthenticated: (req, res) => {
        if (req.url === '/healthz') {
          res.end('{"status":"ok"}');
          return true;
        }
        if (req.url === '/metrics') {
          res.end(metrics.render());
          return true;
        }
        return false;
      },
    },
    gw,
  );
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
});

after(async () => {
  everything.kill();
  reporter.close();
  slow.closeAllConnections();
  slow.close();
  trickle.closeAllConnections();
  trickle.close();
  gateway.closeAllConnections();
  gateway.close();
  await gw.close();
});

const url = (route: string) => `https://localhost:${(gateway.address() as AddressInfo).port}${route}`;
async function connect(who: string, route = '/everything') {
  const client = new Client({ name: 'gw-test', version: '1' });
  await client.connect(createSdk1Transport({ ...bundleOf(clients[who]!), url: url(route) }));
  return client;
}
const text = (r: unknown) => ((r as { content: { text?: string }[] }).content[0] as { text: string }).text;

test('server-everything behind the gateway: alice and bob see different tools; denied calls fail as unknown tools; allowed calls work', async () => {
  const alice = await connect('alice');
  const bob = await connect('bob');
  try {
    const aliceTools = (await alice.listTools()).tools.map((t) => t.name);
    const bobTools = (await bob.listTools()).tools.map((t) => t.name).sort();
    assert.ok(aliceTools.length > 5 && aliceTools.includes('get-tiny-image'), aliceTools.join(','));
    assert.deepEqual(bobTools, ['echo', 'get-sum']);
    assert.match(text(await bob.callTool({ name: 'echo', arguments: { message: 'hi' } })), /hi/);
    const hidden = await bob.callTool({ name: 'get-tiny-image', arguments: {} });
    const unknown = await alice.callTool({ name: 'no-such-tool', arguments: {} }); // allowed by policy, unknown upstream
    assert.deepEqual(JSON.parse(JSON.stringify(hidden).replaceAll('get-tiny-image', 'X')), JSON.parse(JSON.stringify(unknown).replaceAll('no-such-tool', 'X')));
    assert.ok(audit.events.some((e) => e.event === 'decision' && e.target === 'get-tiny-image' && e.allowed === false));
    assert.deepEqual((await bob.listResources()).resources, []);
    assert.ok((await alice.listResources()).resources.length > 0);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('a long-running tool streams its progress through; a large resource passes intact', async () => {
  const alice = await connect('alice');
  try {
    const progress: number[] = [];
    const tools = (await alice.listTools()).tools.map((t) => t.name);
    const longTool = tools.find((t) => /long-running/.test(t)) as string;
    const r = await alice.callTool({ name: longTool, arguments: { duration: 1, steps: 4 } }, CallToolResultSchema, { onprogress: (p) => void progress.push(p.progress) });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.ok(progress.length >= 3, `progress events: ${progress.join(',')}`);
    const resources = (await alice.listResources()).resources;
    const direct = new Client({ name: 'direct', version: '1' });
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    await direct.connect(new StreamableHTTPClientTransport(new URL(everythingUrl)));
    let checked = 0;
    for (const res of resources.slice(0, 5)) {
      const viaGateway = await alice.readResource({ uri: res.uri });
      const straight = await direct.readResource({ uri: res.uri });
      assert.deepEqual(viaGateway.contents, straight.contents, res.uri);
      checked += JSON.stringify(viaGateway).length;
    }
    assert.ok(checked > 1000, `${checked} bytes of resources compared`);
    await direct.close();
  } finally {
    await alice.close();
  }
});

test('a 3 MB answer streams through the gateway intact', async () => {
  const bob = await connect('bob', '/reporter');
  try {
    const r = await bob.callTool({ name: 'big', arguments: {} });
    assert.equal(text(r).length, BIG.length);
    assert.equal(text(r), BIG);
  } finally {
    await bob.close();
  }
});

test('the upstream receives the verified identity; identity headers and _meta from the client are replaced', async () => {
  const agent = createMtlsAgent(bundleOf(clients.bob!));
  try {
    const res = await createMtlsFetch(agent)(url('/reporter'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-forwarded-client-cert': 'Hash=00;URI=spiffe://acme.test/user/alice', 'x-mcp-user': 'alice' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'report', arguments: {}, _meta: { 'mcp-mtls/identity': { principal: 'spiffe://acme.test/user/alice', teams: ['sre'] } } } }),
    });
    const raw = await res.text();
    const payload = JSON.parse(JSON.parse(raw.split('\n').find((l) => l.startsWith('data: '))!.slice(6)).result.content[0].text);
    assert.match(payload.xfcc, /^Hash=[0-9a-f]{64};Cert="-----BEGIN%20CERTIFICATE-----.*";URI=spiffe:\/\/acme\.test\/user\/bob$/);
    assert.equal(payload.xmcpuser, null);
    assert.deepEqual(payload.meta['mcp-mtls/identity'], { principal: 'spiffe://acme.test/user/bob', teams: ['dev'], roles: [], scopes: [] });
  } finally {
    await agent.close();
  }
});

async function post(who: string, route: string, body: unknown, headers: Record<string, string> = {}) {
  const agent = createMtlsAgent(bundleOf(clients[who]!));
  try {
    const res = await createMtlsFetch(agent)(url(route), { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  } finally {
    await agent.close();
  }
}

test('batch smuggling, a method/header mismatch and an oversized body are refused and audited', async () => {
  const call = (id: number, name: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
  const batch = await post('bob', '/reporter', [call(1, 'report'), call(2, 'get-tiny-image')]);
  assert.match(batch.text, /batch refused/);
  const mismatch = await post('bob', '/reporter', call(3, 'report'), { 'mcp-method': 'tools/list' });
  assert.equal(mismatch.status, 400);
  const big = await post('bob', '/reporter', JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'report', arguments: { x: 'y'.repeat(100_000) } } }));
  assert.equal(big.status, 413);
  assert.ok(audit.events.some((e) => /HTTP 413/.test(String(e.reason))));
  assert.ok(audit.events.some((e) => /Mcp-Method header/.test(String(e.reason))));
});

test('upstream down: 502; upstream slow: 504; the gateway stays up', async () => {
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
  const down = await post('alice', '/down', init);
  assert.equal(down.status, 502);
  assert.match(JSON.parse(down.text).error.message, /unavailable/);
  const late = await post('alice', '/slow', init);
  assert.equal(late.status, 504);
  const alice = await connect('alice');
  assert.ok((await alice.listTools()).tools.length > 0);
  await alice.close();
});

test("an upstream whose JSON answer trickles without end: 504 after the upstream timeout, the upstream request aborted; a client that leaves aborts it too", async () => {
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
  const t0 = Date.now();
  const late = await post('alice', '/trickle', init);
  assert.equal(late.status, 504, late.text.slice(0, 200));
  assert.match(JSON.parse(late.text).error.message, /did not end within 500 ms/);
  assert.ok(Date.now() - t0 < 3000, `answered after ${Date.now() - t0} ms`);
  const until = async (what: string, ok: () => boolean, ms = 2000) => {
    for (const end = Date.now() + ms; !ok(); ) {
      if (Date.now() > end) assert.fail(what);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await until('the upstream request is aborted', () => trickled[0]?.closed === true);
  // a client that gives up before the timeout: its upstream request ends with it
  const agent = createMtlsAgent(bundleOf(clients.alice!));
  const ac = new AbortController();
  const leaving = createMtlsFetch(agent)(url('/trickle'), { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(init) });
  await until('the second upstream request starts', () => trickled.length === 2);
  ac.abort();
  await leaving.catch(() => undefined);
  // within 250 ms, half the upstream timeout that would end it anyway
  await until('the upstream request of the client that left is aborted before the upstream timeout', () => trickled[1]?.closed === true, 250);
  await agent.close();
});

test('sessions are bound to the certificate; health and metrics need no certificate', async () => {
  const alice = await connect('alice');
  const sid = (alice as unknown as { _transport: { sessionId?: string } })._transport.sessionId as string;
  assert.ok(sid);
  const stolen = await post('bob', '/everything', { jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  assert.equal(stolen.status, 404);
  await alice.close();
  const { fetch, Agent } = await import('undici');
  const anon = new Agent({ connect: { rejectUnauthorized: false } });
  assert.equal(await (await fetch(url('/healthz'), { dispatcher: anon })).text(), '{"status":"ok"}');
  const m = await (await fetch(url('/metrics'), { dispatcher: anon })).text();
  assert.match(m, /mcp_mtls_gateway_decisions_total\{rule="dev-basics",result="allow"\} \d+/);
  assert.match(m, /mcp_mtls_gateway_upstream_latency_seconds_count\{route="\/everything"\} \d+/);
  await anon.close();
});

test('paths that could leave the route are refused before anything reaches the upstream; other verbs get 405', async () => {
  const c = clients.alice!;
  const raw = (method: string, p: string) =>
    new Promise<number>((resolve, reject) => {
      // node:https sends the path as written (fetch would resolve the dot segments first)
      const req = https.request({ host: '127.0.0.1', servername: 'localhost', port: (gateway.address() as AddressInfo).port, method, path: p, cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key), ca: fs.readFileSync(c.ca), headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(method === 'POST' ? '{"jsonrpc":"2.0","id":1,"method":"ping"}' : undefined);
    });
  for (const p of ['/reporter/../admin', '/reporter/%2e%2e/admin', '/reporter/%2E%2e/admin', '/reporter/.%2fadmin', '/reporter//evil.example/x', '/reporter/a/./b', '/reporter/a%5c..%5cb',
    // another spelling of a longer route's prefix, which the shorter route would send on under its own policy: a fragment
    // (Node passes it in the URL, the upstream never sees it), a path parameter (Java servers strip it) and percent-encoded
    // letters, digits, - . _ ~ (servers decode them)
    '/reporter/files#x', '/reporter/files;x', '/reporter/%66iles', '/reporter/F%49LES', '/reporter/a%7eb', '/reporter/a%5Fb']) {
    assert.equal(await raw('POST', p), 400, p);
  }
  assert.equal(await raw('PUT', '/reporter'), 405);
  assert.equal(await raw('PATCH', '/reporter'), 405);
  assert.equal(await raw('POST', '/reporterx'), 404, 'a prefix matches whole segments only');
  assert.equal(await raw('POST', '/reporter'), 200, 'the route itself still works');
});
