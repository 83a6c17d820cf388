/**
 * An MCP server on the SDK 1.x (`@modelcontextprotocol/sdk`) with mTLS and per-tool policy:
 * the few lines a server author adds. Run: `node --import tsx examples/sdk1-server/main.ts`.
 * It starts the server, connects as alice (sre) and bob (dev), and checks what each may do.
 */
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { loadBundle } from '../../src/bundle/load.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { policyFromText } from '../../src/policy/compile.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { checker, setupPki } from '../_shared/setup.js';

const pki = setupPki('acme.test', { alice: ['--team', 'sre'], bob: ['--team', 'dev'] });
const c = checker();

// ---- the server author's code -------------------------------------------------------------
const policy = policyFromText(`
version: 1
rules:
  - { id: everyone-greets, subjects: { any: true }, tools: [greet] }
  - { id: sre-restarts, subjects: { teams: [sre] }, tools: [restart] }
`);
const nameArg = { name: z.string() }; // schemas made once, outside build
function build(server: McpServer) {
  server.registerTool('greet', { description: 'greets the caller', inputSchema: nameArg }, async ({ name }, extra) => {
    const caller = (extra.authInfo?.extra as { identity: { principal: string } }).identity.principal; // from the TLS session
    return { content: [{ type: 'text', text: `hello ${name}, you are ${caller}` }] };
  });
  server.registerTool('restart', { description: 'restarts the service' }, async () => ({ content: [{ type: 'text', text: 'restarted' }] }));
}
const handler = createMcpSdk1Handler({ serverInfo: { name: 'example', version: '1.0.0' }, policy, build });
const server = createMtlsServer(tlsFromPki(pki.pki, pki.serverCert, pki.serverKey), handler);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
// ---------------------------------------------------------------------------------------------

const url = `https://localhost:${(server.address() as AddressInfo).port}/mcp`;
for (const [who, expected] of [['alice', ['greet', 'restart']], ['bob', ['greet']]] as const) {
  const client = new Client({ name: who, version: '1.0.0' });
  await client.connect(createSdk1Transport(await loadBundle(pki.bundle(who)), url));
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  console.log(`${who} sees: ${tools.join(', ')}`);
  c.check(JSON.stringify(tools) === JSON.stringify(expected), `${who} sees ${expected.join(', ')}`);
  const r = (await client.callTool({ name: 'greet', arguments: { name: 'world' } })) as { content: { text: string }[] };
  console.log(`${who} calls greet: ${r.content[0]!.text}`);
  c.check(r.content[0]!.text === `hello world, you are spiffe://acme.test/user/${who}`, `greet knows it is ${who}`);
  await client.close();
}
await handler.close();
server.closeAllConnections();
server.close();
pki.cleanup();
c.done();
