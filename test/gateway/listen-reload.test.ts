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
  gateway = createMtlsServer({ ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), log: () => undefined }, gw);
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
