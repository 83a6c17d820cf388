/**
 * Issue 16, finding 7: the gateway forwards only upstream answers it parsed and decided.
 * Bob may call `echo` only. Upstreams: server-everything on the legacy HTTP+SSE transport
 * (13 tools, answers on the GET stream), and a small hostile server that answers gzip (asked
 * or not), unknown content types, JSON that does not parse, SSE events that are not JSON-RPC
 * or of another event type, a response to an id nobody sent, and a GET stream carrying a
 * response, resource notifications and an unknown method. In no case does anything bob may not
 * see reach him; each refusal is audited.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { policyFromText } from '../../src/policy/compile.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { ROOT } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const POLICY = `
version: 1
rules:
  - id: dev-echo
    subjects: { teams: [dev] }
    tools: [echo]
    resources: ["docs://**"]
`;

const SECRET = 'admin-secret';
const TOOLS = [{ name: 'echo', inputSchema: { type: 'object' } }, { name: SECRET, description: 'nobody but admins', inputSchema: { type: 'object' } }];
const listAnswer = (id: unknown) => JSON.stringify({ jsonrpc: '2.0', id, result: { tools: TOOLS } });
const sse = (...events: string[]) => events.map((e) => `${e}\n\n`).join('');

let legacy: ChildProcess;
let hostile: http.Server;
let gateway: MtlsServer;
let gw: ReturnType<typeof createGatewayHandler>;
const audit = memoryAudit();
const clients: Record<string, { cert: string; key: string; ca: string }> = {};
const acceptEncodings: string[] = [];

before(async () => {
  // server-everything on the legacy transport: GET /sse (answers come here), POST /message
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  legacy = spawn(process.execPath, [path.join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'sse'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('server-everything (sse) did not start')), 15_000);
    legacy.stderr!.on('data', (d) => {
      if (/running on port/.test(String(d))) {
        clearTimeout(t);
        resolve();
      }
    });
  });

  hostile = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const id = body ? (JSON.parse(body) as { id?: unknown }).id : undefined;
      const mode = req.url!.split('/')[1];
      acceptEncodings.push(String(req.headers['accept-encoding']));
      const gzipped = () => zlib.gzipSync(listAnswer(id));
      switch (mode) {
        case 'gzip-polite': // compresses when asked, as many HTTP stacks do
          if (/gzip/.test(String(req.headers['accept-encoding']))) return res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipped());
          return res.writeHead(200, { 'content-type': 'application/json' }).end(listAnswer(id));
        case 'gzip-always':
          return res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipped());
        case 'unknown-type':
          return res.writeHead(200, { 'content-type': 'application/x-mcp' }).end(listAnswer(id));
        case 'no-type':
          return res.writeHead(200).end(listAnswer(id));
        case 'garbage':
          return res.writeHead(200, { 'content-type': 'application/json' }).end(`${listAnswer(id)} and then some`);
        case 'stray':
          return res.writeHead(200, { 'content-type': 'application/json' }).end(listAnswer(999));
        case 'legacy-post':
          return res.writeHead(202).end('Accepted'); // SSEServerTransport's POST /message answer
        case 'sse-junk':
          return res.writeHead(200, { 'content-type': 'text/event-stream' }).end(sse(`data: not json ${SECRET}`, `event: other\ndata: ${listAnswer(id)}`, `data: ${listAnswer(id)}`, `data: ${listAnswer(998)}`));
        case 'sse-bom':
          return res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`\uFEFF${sse(`data: ${listAnswer(id)}`)}`);
        case 'get-stream': {
          const note = (method: string, params: object) => `data: ${JSON.stringify({ jsonrpc: '2.0', method, params })}`;
          return res
            .writeHead(200, { 'content-type': 'text/event-stream' })
            .end(
              sse(
                `data: ${listAnswer(5)}`,
                note('notifications/resources/updated', { uri: 'hr://payroll' }),
                note('notifications/resources/updated', { uri: 'docs://handbook' }),
                note('notifications/tools/list_changed', {}),
                note(`notifications/${SECRET}`, { leak: true }),
                `data: ${JSON.stringify({ jsonrpc: '2.0', id: 'srv-1', method: 'sampling/createMessage', params: { messages: [], maxTokens: 1 } })}`,
              ),
            );
        }
        default:
          return res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
  const hostileUrl = (mode: string) => new URL(`http://127.0.0.1:${(hostile.address() as AddressInfo).port}/${mode}`);

  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  for (const [who, args] of [['alice', ['--team', 'sre']], ['bob', ['--team', 'dev']]] as const) {
    const r = await pki.issue(['issue', 'client', '--user', who, ...args]);
    clients[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  }
  const policy = policyFromText(POLICY);
  const modes = ['gzip-polite', 'gzip-always', 'unknown-type', 'no-type', 'garbage', 'stray', 'legacy-post', 'sse-junk', 'sse-bom', 'get-stream'];
  gw = createGatewayHandler({
    routes: [
      // the whole legacy server: its endpoint event names /message at the root
      { prefix: '/', upstream: new URL(`http://127.0.0.1:${port}/`), policy: () => policy },
      ...modes.map((m) => ({ prefix: `/h/${m}`, upstream: hostileUrl(m), policy: () => policy })),
    ],
    audit,
    upstreamTimeoutMs: 2000,
    log: () => undefined,
  });
  gateway = createMtlsServer({ ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), audit, log: () => undefined }, gw);
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
});

after(async () => {
  legacy.kill();
  hostile.closeAllConnections();
  hostile.close();
  gateway.closeAllConnections();
  gateway.close();
  await gw.close();
});

const url = (route: string) => `https://localhost:${(gateway.address() as AddressInfo).port}${route}`;

/** A raw POST of tools/list as bob, asking for gzip; the body as undici's fetch decodes it. */
async function listAs(who: string, route: string) {
  const agent = createMtlsAgent(bundleOf(clients[who]!));
  try {
    const res = await createMtlsFetch(agent)(url(route), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'accept-encoding': 'gzip' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    return { status: res.status, text: await res.text() };
  } finally {
    await agent.close();
  }
}

test('legacy HTTP+SSE upstream (server-everything, 13 tools): bob never sees a tool beyond echo; the stream is refused naming Streamable HTTP', async () => {
  const agent = createMtlsAgent(bundleOf(clients.bob!));
  const fetch = createMtlsFetch(agent) as typeof globalThis.fetch;
  const client = new Client({ name: 'legacy', version: '1' });
  let seen: string[] = [];
  let failure: unknown;
  try {
    await client.connect(new SSEClientTransport(new URL(url('/sse')), { fetch, eventSourceInit: { fetch } }));
    seen = (await client.listTools()).tools.map((t) => t.name);
  } catch (e) {
    failure = e;
  } finally {
    await client.close().catch(() => undefined);
  }
  assert.ok(seen.every((t) => t === 'echo'), `bob saw ${seen.length} tools: ${seen.join(', ')}`);
  assert.ok(failure, 'the legacy transport does not work through the gateway');
  // raw: the stream ends at once, with a comment naming the transport to use, and no endpoint
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 3000);
  const raw = await (await fetch(url('/sse'), { headers: { accept: 'text/event-stream' }, signal: ac.signal })).text().catch((e: Error) => `aborted: ${e.message}`);
  clearTimeout(timer);
  await agent.close();
  assert.doesNotMatch(raw, /event: endpoint|sessionId/);
  assert.match(raw, /: mcp-mtls gateway: the gateway proxies the Streamable HTTP transport only; the legacy HTTP\+SSE transport/);
  assert.ok(audit.events.some((e) => e.event === 'response.refused' && /legacy HTTP\+SSE/.test(String(e.reason)) && e.principal === 'spiffe://acme.test/user/bob'));
});

test('a legacy POST /message answer (202 Accepted, text) is a 502 naming the Streamable HTTP transport', async () => {
  const r = await listAs('bob', '/h/legacy-post');
  assert.equal(r.status, 502);
  assert.match(JSON.parse(r.text).error.message, /not forwarded|did not forward/);
  assert.match(JSON.parse(r.text).error.message, /Streamable HTTP transport only/);
});

test('gzip: the gateway asks the upstream for identity; an upstream that compresses anyway is refused (502), nothing unfiltered passes', async () => {
  const polite = await listAs('bob', '/h/gzip-polite');
  assert.equal(polite.status, 200, polite.text);
  assert.deepEqual(JSON.parse(polite.text).result.tools.map((t: { name: string }) => t.name), ['echo']);
  assert.equal(acceptEncodings.at(-1), 'identity');
  const rude = await listAs('bob', '/h/gzip-always');
  assert.equal(rude.status, 502);
  assert.doesNotMatch(rude.text, new RegExp(SECRET));
  assert.match(JSON.parse(rude.text).error.message, /content-encoding: gzip/);
});

test('unknown or missing content type, JSON that does not parse, a response to an id nobody sent: refused, audited', async () => {
  for (const mode of ['unknown-type', 'no-type', 'garbage']) {
    const r = await listAs('bob', `/h/${mode}`);
    assert.equal(r.status, 502, `${mode}: ${r.text}`);
    assert.doesNotMatch(r.text, new RegExp(SECRET), mode);
    assert.equal(JSON.parse(r.text).error.code, -32603, mode);
  }
  const stray = await listAs('bob', '/h/stray');
  assert.doesNotMatch(stray.text, new RegExp(SECRET));
  assert.equal(JSON.parse(stray.text).id, 1, 'the request gets an error answer instead');
  assert.match(JSON.parse(stray.text).error.message, /could not check/);
  for (const reason of [/application\/x-mcp/, /no content type/, /does not parse/, /id 999/]) {
    assert.ok(audit.events.some((e) => e.event === 'response.refused' && reason.test(String(e.reason))), String(reason));
  }
});

test('SSE: events that are not JSON-RPC or of another type are dropped, a BOM hides nothing, and the unanswered request gets an error', async () => {
  const junk = await listAs('bob', '/h/sse-junk');
  assert.doesNotMatch(junk.text, new RegExp(SECRET));
  const messages = junk.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
  // the third event is a valid answer to id 1: kept, filtered; the rest dropped
  assert.deepEqual(messages.map((m) => m.result?.tools?.map((t: { name: string }) => t.name) ?? m.error?.message), [['echo']]);
  const bom = await listAs('bob', '/h/sse-bom');
  assert.doesNotMatch(bom.text, new RegExp(SECRET));
  assert.match(bom.text, /"echo"/);
  assert.ok(audit.events.some((e) => e.event === 'response.refused' && /SSE event whose data is not JSON/.test(String(e.reason))));
  assert.ok(audit.events.some((e) => e.event === 'response.refused' && /SSE event of type "other"/.test(String(e.reason))));
});

test('a GET stream: a response on it is dropped, resource notifications follow the policy, unknown methods are dropped', async () => {
  const agent = createMtlsAgent(bundleOf(clients.bob!));
  try {
    const res = await createMtlsFetch(agent)(url('/h/get-stream'), { headers: { accept: 'text/event-stream' } });
    const text = await res.text();
    assert.doesNotMatch(text, new RegExp(SECRET));
    assert.doesNotMatch(text, /payroll/);
    const messages = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as { method?: string; params?: { uri?: string } });
    assert.deepEqual(
      messages.map((m) => `${m.method} ${m.params?.uri ?? ''}`.trim()),
      ['notifications/resources/updated docs://handbook', 'notifications/tools/list_changed', 'sampling/createMessage'],
    );
  } finally {
    await agent.close();
  }
  assert.ok(audit.events.some((e) => e.event === 'response.refused' && /a response on a GET stream/.test(String(e.reason))));
  assert.ok(audit.events.some((e) => e.event === 'response.refused' && /may not read/.test(String(e.reason))));
});
