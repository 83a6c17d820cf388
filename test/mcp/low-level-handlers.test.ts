/**
 * Review of issue 16 finding 6: the SDK adapters remove what a caller may not see through the
 * handles McpServer's registration returns, and pass a hidden tool or prompt on to the SDK,
 * which then does not have it. A `build` may also install handlers on the low-level server
 * (`server.server.setRequestHandler`, as servers with dynamic tools do): such a handler has
 * every tool, so its `tools/list` listed hidden tools and its `tools/call` ran them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema, GetPromptRequestSchema, ListPromptsRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { connect, startFixture, type McpFixture } from '../support/mcp.js';

const POLICY = `
version: 1
rules:
  - id: everyone
    subjects: { any: true }
    tools: [search]
    prompts: [greet]
  - id: sre
    subjects: { teams: [sre] }
    tools: [deploy]
    prompts: [incident]
`;

const ran: string[] = [];
function build(server: McpServer): void {
  const low = server.server;
  low.registerCapabilities({ tools: {}, prompts: {} });
  low.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: ['search', 'deploy'].map((name) => ({ name, inputSchema: { type: 'object' as const } })) }));
  low.setRequestHandler(CallToolRequestSchema, async (r) => {
    ran.push(r.params.name);
    return { content: [{ type: 'text' as const, text: `ran ${r.params.name}` }] };
  });
  low.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: [{ name: 'greet' }, { name: 'incident' }] }));
  low.setRequestHandler(GetPromptRequestSchema, async (r) => ({ messages: [{ role: 'user' as const, content: { type: 'text' as const, text: `prompt ${r.params.name}` } }] }));
}

let fx: McpFixture;
before(async () => {
  fx = await startFixture({ policyText: POLICY, build, whoami: false });
});
after(async () => fx.close());

test('low-level handlers: bob (dev) neither sees nor runs deploy, nor gets the incident prompt; alice (sre) does', async () => {
  const bob = await connect(fx.url, fx.clients.bob);
  try {
    assert.deepEqual((await bob.client.listTools()).tools.map((t) => t.name), ['search']);
    assert.deepEqual((await bob.client.listPrompts()).prompts.map((p) => p.name), ['greet']);
    const call = await bob.client.callTool({ name: 'deploy', arguments: {} }).catch((e: Error) => ({ error: e.message }));
    assert.doesNotMatch(JSON.stringify(call), /ran deploy/);
    assert.match(JSON.stringify(call), /Tool deploy not found/);
    assert.deepEqual(ran, [], 'the hidden tool did not run');
    await assert.rejects(bob.client.getPrompt({ name: 'incident' }), /Prompt incident not found/);
    assert.match(JSON.stringify(await bob.client.callTool({ name: 'search', arguments: {} })), /ran search/);
  } finally {
    await bob.close();
  }
  const alice = await connect(fx.url, fx.clients.alice);
  try {
    assert.deepEqual((await alice.client.listTools()).tools.map((t) => t.name), ['search', 'deploy']);
    assert.match(JSON.stringify(await alice.client.callTool({ name: 'deploy', arguments: {} })), /ran deploy/);
    assert.match(JSON.stringify(await alice.client.getPrompt({ name: 'incident' })), /prompt incident/);
  } finally {
    await alice.close();
  }
});

test('SDK 2.x: low-level handlers neither list nor run a hidden tool', async () => {
  const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  const { createMcpSdk2Handler } = await import('../../src/mcp/sdk2.js');
  const { createMtlsServer, tlsFromPki } = await import('../../src/mtls/mtls-server.js');
  const { createMtlsAgent, createMtlsFetch } = await import('../../src/client/agent.js');
  const { policyFromText } = await import('../../src/policy/compile.js');
  const { bundleOf } = await import('../support/mcp.js');
  const ran2: string[] = [];
  const handler = createMcpSdk2Handler({
    serverInfo: { name: 'low2', version: '1' },
    policy: policyFromText(POLICY),
    build: (server) => {
      const low = server.server as unknown as { registerCapabilities(c: object): void; setRequestHandler(m: string, h: (r: { params: { name: string } }) => unknown): void };
      low.registerCapabilities({ tools: {} });
      low.setRequestHandler('tools/list', async () => ({ tools: ['search', 'deploy'].map((name) => ({ name, inputSchema: { type: 'object' } })) }));
      low.setRequestHandler('tools/call', async (r) => {
        ran2.push(r.params.name);
        return { content: [{ type: 'text', text: `ran ${r.params.name}` }] };
      });
    },
  });
  const server = createMtlsServer({ ...tlsFromPki(fx.pki.pki, fx.serverFiles.cert, fx.serverFiles.key), log: () => undefined }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const agent = createMtlsAgent(bundleOf(fx.clients.bob));
  const client = new Client({ name: 'low2', version: '1' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(`https://localhost:${(server.address() as { port: number }).port}/mcp`), { fetch: createMtlsFetch(agent) as typeof fetch }));
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['search']);
    const call = await client.callTool({ name: 'deploy', arguments: {} }).catch((e: Error) => ({ error: e.message }));
    assert.doesNotMatch(JSON.stringify(call), /ran deploy/);
    assert.deepEqual(ran2, []);
  } finally {
    await client.close().catch(() => undefined);
    await agent.close();
    await handler.close();
    server.closeAllConnections();
    server.close();
  }
});
