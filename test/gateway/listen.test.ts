/**
 * 2026-07-28 `subscriptions/listen` through the gateway: the stream's acknowledgement and the
 * upstream's list_changed reach the real SDK 2.x client (the conformance suite's
 * `server-stateless` scenario lost them: the gateway dropped `notifications/subscriptions/
 * acknowledged` as a method it does not forward).
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
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const mcp = createMcpHandler(() => {
  const server = new McpServer({ name: 'listen-upstream', version: '1' });
  server.registerTool('echo', { description: 'echo' }, async () => ({ content: [{ type: 'text' as const, text: 'echo' }] }));
  return server;
});
let upstream: http.Server;
let gateway: MtlsServer;
let gw: ReturnType<typeof createGatewayHandler>;
let files: { cert: string; key: string; ca: string };

before(async () => {
  const node = toNodeHandler(mcp);
  upstream = http.createServer((req, res) => void node(req, res));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const r = await pki.issue(['issue', 'client', '--user', 'alice', '--team', 'sre']);
  files = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  const policy = policyFromText('version: 1\nrules:\n  - id: all\n    subjects: { any: true }\n    tools: ["*"]\n');
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

test('subscriptions/listen through the gateway: acknowledged, and the upstream list_changed arrives', async () => {
  const agent = createMtlsAgent(bundleOf(files));
  const client = new Client({ name: 'listen', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new StreamableHTTPClientTransport(new URL(`https://localhost:${(gateway.address() as AddressInfo).port}/mcp`), { fetch: createMtlsFetch(agent) as typeof fetch }));
  const heard: string[] = [];
  client.setNotificationHandler('notifications/tools/list_changed', () => void heard.push('tools'));
  try {
    const sub = await client.listen({ toolsListChanged: true }, { timeout: 5_000 });
    assert.deepEqual(sub.honoredFilter, { toolsListChanged: true });
    mcp.notify.toolsChanged();
    for (let i = 0; i < 50 && heard.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(heard, ['tools']);
    await sub.close();
  } finally {
    await client.close();
    await agent.close();
  }
});
