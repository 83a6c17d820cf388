/**
 * A desktop MCP app through the stdio bridge: prints the Claude Desktop entry that
 * `mcp-mtls client-config` makes (absolute paths of node and of this installed mcp-mtls, no
 * npx), then does what the app does with it: spawns exactly that command, which runs
 * `mcp-mtls connect URL --bundle FILE`, and talks JSON-RPC over its stdin/stdout.
 * Run: `node --import tsx examples/desktop-bridge/main.ts`.
 */
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { policyFromText } from '../../src/policy/compile.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { BIN, checker, mcpMtls, setupPki } from '../_shared/setup.js';

const pki = setupPki('acme.test', { alice: ['--team', 'sre'] });
const c = checker();
const handler = createMcpSdk1Handler({
  serverInfo: { name: 'notes', version: '1.0.0' },
  policy: policyFromText('version: 1\nrules:\n  - { id: sre, subjects: { teams: [sre] }, tools: [read_notes] }\n'),
  build: (s: McpServer) => void s.registerTool('read_notes', { description: 'team notes' }, async () => ({ content: [{ type: 'text', text: 'standup at 10' }] })),
});
const server = createMtlsServer(tlsFromPki(pki.pki, pki.serverCert, pki.serverKey), handler);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `https://localhost:${(server.address() as AddressInfo).port}/mcp`;

const entry = JSON.parse(mcpMtls('client-config', '--client', 'claude-desktop', '--name', 'notes', '--bundle', pki.bundle('alice'), '--url', url, '--json'));
console.log(`Claude Desktop entry (${entry.file}):\n${JSON.stringify({ mcpServers: entry.mcpServers }, null, 2)}`);
const { command, args } = entry.mcpServers.notes as { command: string; args: string[] };
c.check(command === process.execPath && args[0] === fs.realpathSync(BIN) && args[1] === 'connect', 'the entry runs this node and this installed bridge, by absolute path');

// what the app does with the entry: that command, those arguments
const transport = new StdioClientTransport({ command, args, stderr: 'ignore' });
const app = new Client({ name: 'claude-desktop', version: '1.0.0' });
await app.connect(transport);
const r = (await app.callTool({ name: 'read_notes', arguments: {} })) as { content: { text: string }[] };
console.log(`through the bridge: read_notes -> ${r.content[0]!.text}`);
c.check(r.content[0]!.text === 'standup at 10', 'the desktop app reaches the mTLS server through the bridge');
await app.close();
await handler.close();
server.closeAllConnections();
server.close();
pki.cleanup();
c.done();
