/**
 * A 2026-07-28 `subscriptions/listen` stream through the gateway outlives policy reloads: each
 * message on it is decided under the policy in force when it arrives, not the one in force when
 * the stream opened (found reviewing #19 as an attacker: bob subscribed to a resource while he
 * could read it kept hearing of its updates after a reload took it from him).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { bundleOf, TEST_POLICY } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const mcp = createMcpHandler(() => {
  const server = new McpServer({ name: 'listen-upstream', version: '1' }, { capabilities: { resources: { subscribe: true } } });
  server.registerResource('handbook', 'docs://handbook', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'the handbook' }] }));
  return server;
});
let upstream: http.Server;
let gateway: MtlsServer;
let gw: ReturnType<typeof createGatewayHandler>;
let files: { cert: string; key: string; ca: string };
let tls: ReturnType<typeof tlsFromPki>;
let policy = policyFromText(TEST_POLICY);

before(async () => {
  const node = toNodeHandler(mcp);
  upstream = http.createServer((req, res) => void node(req, res));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const r = await pki.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
  files = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  gw = createGatewayHandler({ routes: [{ prefix: '/mcp', upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`), policy: () => policy }], log: () => undefined });
  tls = tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string);
  gateway = createMtlsServer({ ...tls, log: () => undefined }, gw);
  await new Promise<void>((res) => gateway.listen(0, '127.0.0.1', res));
});
after(async () => {
  await mcp.close();
  upstream.closeAllConnections();
  upstream.close();
  gateway.closeAllConnections();
  gateway.close();
  await gw.close();
});

test('a listen stream through the gateway: resources/updated is decided under the policy in force when it arrives', async () => {
  const agent = createMtlsAgent(bundleOf(files));
  const client = new Client({ name: 'listen', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new StreamableHTTPClientTransport(new URL(`https://localhost:${(gateway.address() as AddressInfo).port}/mcp`), { fetch: createMtlsFetch(agent) as typeof fetch }));
  const heard: string[] = [];
  client.setNotificationHandler('notifications/resources/updated', (n) => void heard.push(n.params.uri));
  const settle = async (n: number) => {
    for (let i = 0; i < 30 && heard.length < n; i++) await new Promise((r) => setTimeout(r, 100));
  };
  try {
    const sub = await client.listen({ resourceSubscriptions: ['docs://handbook'] }, { timeout: 5_000 });
    mcp.notify.resourceUpdated('docs://handbook');
    await settle(1);
    assert.deepEqual(heard, ['docs://handbook']);
    // a reload takes the handbook from bob (docs://** only for sre now)
    policy = policyFromText(TEST_POLICY.replace('resources: ["docs://**"]', 'resources: ["none://nothing"]') + '\n  - id: sre-docs\n    subjects: { teams: [sre] }\n    resources: ["docs://**"]\n');
    mcp.notify.resourceUpdated('docs://handbook');
    await settle(2);
    assert.deepEqual(heard, ['docs://handbook'], 'bob heard of an update to a resource the policy in force no longer lets him read');
    await sub.close();
  } finally {
    await client.close();
    await agent.close();
  }
});

test('listen streams count as open streams: at most 8 per certificate through the gateway, as GET streams', async () => {
  // an upstream that keeps each listen stream open, whatever it is asked (the SDK's
  // createMcpHandler ends a listen stream whose filter it honours nothing of, and by then
  // the policy above has taken the one resource it could subscribe to from bob)
  const open = new Set<http.ServerResponse>();
  const held = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: {} })}\n\n`);
      open.add(res);
      res.once('close', () => open.delete(res));
    });
  });
  await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
  const hgw = createGatewayHandler({ routes: [{ prefix: '/mcp', upstream: new URL(`http://127.0.0.1:${(held.address() as AddressInfo).port}/mcp`), policy: () => policy }], log: () => undefined });
  const hs = createMtlsServer({ ...tls, log: () => undefined }, hgw);
  await new Promise<void>((r) => hs.listen(0, '127.0.0.1', r));
  const agent = createMtlsAgent(bundleOf(files));
  const f = createMtlsFetch(agent);
  // the Responses, not only their bodies: undici cancels the unread body of a Response once the
  // Response itself is garbage-collected (its FinalizationRegistry), which closed some of these
  // streams under Node 24 and let a ninth one in
  const streams: { body: ReadableStream<Uint8Array>; response: Response }[] = [];
  const listen = async (i: number) => {
    const body = { jsonrpc: '2.0', id: `l${i}`, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'x', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} } } };
    const r = await f(`https://localhost:${(hs.address() as AddressInfo).port}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' }, body: JSON.stringify(body) });
    if (r.status === 200) streams.push({ body: r.body!, response: r });
    else await r.text();
    return r.status;
  };
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 9; i++) statuses.push(await listen(i));
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 429], `one certificate's listen streams: ${statuses.join(' ')}, ${open.size} held open upstream`);
    // one closed: room for another
    await streams.shift()!.body.cancel();
    for (let i = 0; i < 30 && open.size > 7; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await listen(9), 200);
  } finally {
    for (const s of streams) await s.body.cancel().catch(() => undefined);
    await agent.close();
    held.closeAllConnections();
    held.close();
    hs.closeAllConnections();
    hs.close();
    await hgw.close();
  }
});
