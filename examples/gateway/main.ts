/**
 * The gateway in front of an existing MCP server that knows nothing about certificates (here a
 * plain SDK server on 127.0.0.1 over HTTP). Run: `node --import tsx examples/gateway/main.ts`.
 * In production: `mcp-mtls gateway --upstream http://127.0.0.1:3000/mcp --policy policy.yaml
 * --cert gw.crt --key gw.key --pki ./pki --listen 0.0.0.0:8443` (docs/gateway.md).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { loadBundle } from '../../src/bundle/load.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { startGateway } from '../../src/gateway/run.js';
import { checker, setupPki } from '../_shared/setup.js';

const pki = setupPki('acme.test', { alice: ['--team', 'sre'], bob: ['--team', 'dev'] });
const c = checker();

// an existing MCP server: no auth, on loopback only
const existing = http.createServer(async (req, res) => {
  const server = new McpServer({ name: 'legacy-tools', version: '1.0.0' });
  server.registerTool('list_incidents', { description: 'open incidents' }, async (extra) => {
    const forwarded = (extra._meta as Record<string, { principal: string }> | undefined)?.['mcp-mtls/identity'];
    return { content: [{ type: 'text', text: `2 incidents (asked by ${forwarded?.principal})` }] };
  });
  server.registerTool('page_oncall', { description: 'pages the on-call engineer' }, async () => ({ content: [{ type: 'text', text: 'paged' }] }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => void transport.close());
  await server.connect(transport);
  await transport.handleRequest(req, res);
});
await new Promise<void>((r) => existing.listen(0, '127.0.0.1', r));

const policy = path.join(pki.dir, 'policy.yaml');
fs.writeFileSync(policy, 'version: 1\nrules:\n  - { id: all-read, subjects: { any: true }, tools: [list_incidents] }\n  - { id: sre-pages, subjects: { teams: [sre] }, tools: [page_oncall] }\n');
const gw = await startGateway(
  {
    listen: '127.0.0.1:0',
    mode: 'default',
    tls: { cert: pki.serverCert, key: pki.serverKey, pki: pki.pki },
    routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${(existing.address() as AddressInfo).port}/mcp`, policy }],
    upstreamTimeout: '10s',
    maxBodyBytes: 4 * 1024 * 1024,
    shutdownGrace: '2s',
  },
  () => undefined,
);
const url = `https://localhost:${gw.address.port}/mcp`;
for (const [who, expected] of [['alice', ['list_incidents', 'page_oncall']], ['bob', ['list_incidents']]] as const) {
  const client = new Client({ name: who, version: '1.0.0' });
  await client.connect(createSdk1Transport(await loadBundle(pki.bundle(who)), url));
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  const r = (await client.callTool({ name: 'list_incidents', arguments: {} })) as { content: { text: string }[] };
  console.log(`${who} sees ${tools.join(', ')}; list_incidents: ${r.content[0]!.text}`);
  c.check(JSON.stringify(tools) === JSON.stringify(expected), `${who} sees ${expected.join(', ')} through the gateway`);
  c.check(r.content[0]!.text === `2 incidents (asked by spiffe://acme.test/user/${who})`, 'the upstream reads the caller from _meta');
  await client.close();
}
await gw.stop();
existing.close();
pki.cleanup();
c.done();
