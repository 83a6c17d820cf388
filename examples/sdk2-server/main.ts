/**
 * The same for the SDK 2.x packages (`@modelcontextprotocol/server` + `@modelcontextprotocol/node`):
 * createMcpHandler with a per-request factory, behind createMtlsServer, and the 2.x client.
 * Run: `node --import tsx examples/sdk2-server/main.ts`.
 */
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/client';
import type { McpServer } from '@modelcontextprotocol/server';
import { loadBundle } from '../../src/bundle/load.js';
import { createSdk2Transport } from '../../src/client/transport-sdk2.js';
import { policyFromText } from '../../src/policy/compile.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { checker, setupPki } from '../_shared/setup.js';

const pki = setupPki('acme.test', { alice: ['--team', 'sre', '--role', 'admin'], bob: ['--team', 'dev'] });
const c = checker();

const policy = policyFromText(`
version: 1
rules:
  - { id: admins-audit, subjects: { roles: [admin] }, tools: [audit_log] }
  - { id: everyone-time, subjects: { any: true }, tools: [time] }
`);
const limitArg = { limit: z.number().int().min(1).max(100) };
function build(server: McpServer) {
  server.registerTool('time', { description: 'the server time' }, async () => ({ content: [{ type: 'text' as const, text: new Date(0).toISOString() }] }));
  server.registerTool('audit_log', { description: 'recent audit events', inputSchema: limitArg }, async ({ limit }, ctx) => ({
    content: [{ type: 'text' as const, text: `${limit} events for ${ctx.http?.authInfo?.clientId}` }],
  }));
}
const handler = createMcpSdk2Handler({ serverInfo: { name: 'example-2x', version: '1.0.0' }, policy, build });
const server = createMtlsServer(tlsFromPki(pki.pki, pki.serverCert, pki.serverKey), handler);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

const url = `https://localhost:${(server.address() as AddressInfo).port}/mcp`;
for (const [who, expected] of [['alice', ['audit_log', 'time']], ['bob', ['time']]] as const) {
  const client = new Client({ name: who, version: '1.0.0' });
  await client.connect(await createSdk2Transport(await loadBundle(pki.bundle(who)), url));
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  console.log(`${who} sees: ${tools.join(', ')}`);
  c.check(JSON.stringify(tools) === JSON.stringify(expected), `${who} sees ${expected.join(', ')}`);
  await client.close();
}
const alice = new Client({ name: 'alice', version: '1.0.0' });
await alice.connect(await createSdk2Transport(await loadBundle(pki.bundle('alice')), url));
const r = (await alice.callTool({ name: 'audit_log', arguments: { limit: 5 } })) as { content: { text: string }[] };
console.log(`alice calls audit_log: ${r.content[0]!.text}`);
c.check(r.content[0]!.text === '5 events for spiffe://acme.test/user/alice', 'the 2.x tool reads the caller from ctx.http.authInfo');
await alice.close();
await handler.close();
server.closeAllConnections();
server.close();
pki.cleanup();
c.done();
