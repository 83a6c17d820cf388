/** The server adapter with the SDK 2.x packages (createMcpHandler + toNodeHandler) and the real 2.x client. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { McpServer } from '@modelcontextprotocol/server';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { policyFromText } from '../../src/policy/compile.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMtlsServer } from '../../src/mtls/mtls-server.js';
import { bundleOf, TEST_POLICY } from '../support/mcp.js';
import { startSdk2Fixture, type Sdk2Fixture } from '../support/mcp-sdk2.js';

const envSchema = { env: z.string() };
function build(server: McpServer) {
  server.registerTool('deploy', { description: 'deploy', inputSchema: envSchema }, async ({ env }) => ({ content: [{ type: 'text' as const, text: `deployed to ${env}` }] }));
  server.registerTool('deploy_staging', { description: 'staging', inputSchema: envSchema }, async ({ env }) => ({ content: [{ type: 'text' as const, text: `deployed to ${env}` }] }));
  server.registerTool('search', { description: 'search' }, async () => ({ content: [{ type: 'text' as const, text: 'results' }] }));
  server.registerTool('who', { description: 'who calls' }, async (ctx) => ({
    content: [{ type: 'text' as const, text: JSON.stringify({ clientId: ctx.http?.authInfo?.clientId, scopes: ctx.http?.authInfo?.scopes, identity: (ctx.http?.authInfo?.extra as { identity?: unknown })?.identity }) }],
  }));
}

let fixture: Sdk2Fixture;
let url: string;
let clients: Sdk2Fixture['clients'];
const audit = memoryAudit();
let tls: Sdk2Fixture['tls'];

before(async () => {
  fixture = await startSdk2Fixture({ serverInfo: { name: 'sdk2', version: '1.0.0' }, build, policy: policyFromText(TEST_POLICY), audit, whoami: true });
  ({ url, clients, tls } = fixture);
});
after(() => fixture.close());

async function connect(files: { cert: string; key: string; ca: string }) {
  const agent = createMtlsAgent(bundleOf(files));
  const client = new Client({ name: 'sdk2-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: createMtlsFetch(agent) as typeof fetch }));
  return { client, close: async () => { await client.close(); await agent.close(); } };
}

const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0] as { text: string }).text;

test('SDK 2.x: alice and bob see different tools; hidden = unknown; conditions name the rule; authInfo reaches tools', async () => {
  const alice = await connect(clients.alice!);
  const bob = await connect(clients.bob!);
  try {
    assert.deepEqual((await alice.client.listTools()).tools.map((t) => t.name).sort(), ['deploy', 'search', 'who', 'whoami']);
    assert.deepEqual((await bob.client.listTools()).tools.map((t) => t.name).sort(), ['deploy_staging', 'search', 'who', 'whoami']);
    assert.equal(text(await alice.client.callTool({ name: 'deploy', arguments: { env: 'prod' } })), 'deployed to prod');
    const hidden = await bob.client.callTool({ name: 'deploy', arguments: { env: 'prod' } }).catch((e: Error) => ({ thrown: e.message.replaceAll('deploy', 'X') }));
    const unknown = await bob.client.callTool({ name: 'nothing_here', arguments: {} }).catch((e: Error) => ({ thrown: e.message.replaceAll('nothing_here', 'X') }));
    assert.deepEqual(JSON.parse(JSON.stringify(hidden).replaceAll('deploy', 'X')), JSON.parse(JSON.stringify(unknown).replaceAll('nothing_here', 'X')));
    const denied = await bob.client.callTool({ name: 'deploy_staging', arguments: { env: 'prod' } });
    assert.match(text(denied), /Denied by policy rule "dev-staging"/);
    const who = JSON.parse(text(await bob.client.callTool({ name: 'who', arguments: {} })));
    assert.equal(who.clientId, 'spiffe://acme.test/user/bob');
    assert.deepEqual(who.identity.teams, ['dev']);
    assert.ok(audit.events.some((e) => e.event === 'decision' && e.target === 'deploy' && e.allowed === false));
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('SDK 2.x: whoami reports the policy in force when it answers, after a reload too (it reported the policy its server was built under, unlike 1.x)', async () => {
  const before = policyFromText(TEST_POLICY);
  const reloaded = policyFromText(`${TEST_POLICY}scopes:\n  - subjects: { teams: [dev] }\n    grant: [deploy:staging]\n`);
  let current = before;
  // a reload that lands while a request is being served: after its server was built, before whoami answers
  let reloadWhileServing = false;
  const reloading = createMcpSdk2Handler({
    serverInfo: { name: 'sdk2-reload', version: '1.0.0' },
    policy: () => current,
    whoami: true,
    build: (s) => {
      build(s);
      if (reloadWhileServing) current = reloaded;
    },
  });
  const srv = createMtlsServer({ ...tls, log: () => undefined }, reloading);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const agent = createMtlsAgent(bundleOf(clients.bob!));
  const client = new Client({ name: 'sdk2-reload-test', version: '1.0.0' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(`https://localhost:${(srv.address() as AddressInfo).port}/mcp`), { fetch: createMtlsFetch(agent) as typeof fetch }));
    const scopes = async () => JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} }))).scopes;
    assert.deepEqual(await scopes(), []);
    current = reloaded;
    assert.deepEqual(await scopes(), ['deploy:staging']);
    current = before;
    assert.deepEqual(await scopes(), []);
    reloadWhileServing = true;
    assert.deepEqual(await scopes(), ['deploy:staging']);
  } finally {
    await client.close();
    await agent.close();
    await reloading.close();
    srv.closeAllConnections();
    srv.close();
  }
});
