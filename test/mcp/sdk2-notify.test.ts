/**
 * The SDK 2.x adapter's change notifications (2026-07-28 `subscriptions/listen`) with the real
 * 2.x client: `handler.notify` reaches the listen streams, per caller: a change named by what
 * changed reaches only callers who may see it; resource updates only callers who may read.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { McpServer } from '@modelcontextprotocol/server';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { policyFromText } from '../../src/policy/compile.js';
import { bundleOf, TEST_POLICY } from '../support/mcp.js';
import { startSdk2Fixture, type Sdk2Fixture } from '../support/mcp-sdk2.js';

function build(server: McpServer) {
  server.registerTool('deploy', { description: 'deploy' }, async () => ({ content: [{ type: 'text' as const, text: 'deployed' }] }));
  server.registerTool('search', { description: 'search' }, async () => ({ content: [{ type: 'text' as const, text: 'results' }] }));
  server.registerPrompt('greet', { description: 'a greeting' }, async () => ({ messages: [{ role: 'user' as const, content: { type: 'text' as const, text: 'hello' } }] }));
  server.registerResource('handbook', 'docs://handbook', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'the handbook' }] }));
  server.registerResource('payroll', 'hr://payroll', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'salaries' }] }));
}

let fixture: Sdk2Fixture;
let url: string;
let clients: Sdk2Fixture['clients'];
let handler: Sdk2Fixture['handler'];
let policy = policyFromText(TEST_POLICY);

before(async () => {
  fixture = await startSdk2Fixture({ serverInfo: { name: 'sdk2-notify', version: '1.0.0' }, build, policy: () => policy, serverOptions: { capabilities: { resources: { subscribe: true } } } });
  ({ url, clients, handler } = fixture);
});
after(() => fixture.close());

/** a 2.x client listening for every change; `heard` lists what reached it */
async function listener(files: { cert: string; key: string; ca: string }, resources: string[]) {
  const agent = createMtlsAgent(bundleOf(files));
  const client = new Client({ name: 'notify-test', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: createMtlsFetch(agent) as typeof fetch }));
  const heard: string[] = [];
  client.setNotificationHandler('notifications/tools/list_changed', () => void heard.push('tools'));
  client.setNotificationHandler('notifications/prompts/list_changed', () => void heard.push('prompts'));
  client.setNotificationHandler('notifications/resources/list_changed', () => void heard.push('resources'));
  client.setNotificationHandler('notifications/resources/updated', (n) => void heard.push(`updated ${n.params.uri}`));
  const sub = await client.listen({ toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true, ...(resources.length ? { resourceSubscriptions: resources } : {}) });
  return { heard, sub, close: async () => { await sub.close(); await client.close(); await agent.close(); } };
}

const settle = () => new Promise((r) => setTimeout(r, 300));

test('notify reaches 2.x listen streams, each caller told only of what they may see', async () => {
  assert.equal(typeof handler.notify?.toolsChanged, 'function', 'the adapter exposes no notify');
  const alice = await listener(clients.alice!, ['docs://handbook']);
  const bob = await listener(clients.bob!, ['docs://handbook']);
  try {
    handler.notify.toolsChanged(['deploy']); // alice (sre) may see deploy, bob may not
    await settle();
    assert.deepEqual(alice.heard, ['tools']);
    assert.deepEqual(bob.heard, []);
    handler.notify.toolsChanged(['search', 'deploy']);
    handler.notify.promptsChanged(['greet']);
    handler.notify.resourcesChanged(['hr://payroll']); // nobody may read payroll
    handler.notify.resourceUpdated('docs://handbook');
    await settle();
    assert.deepEqual(alice.heard, ['tools', 'tools', 'prompts', 'updated docs://handbook']);
    assert.deepEqual(bob.heard, ['tools', 'prompts', 'updated docs://handbook']);
    handler.notify.toolsChanged(); // nothing named: everyone who listens
    await settle();
    assert.equal(alice.heard.at(-1), 'tools');
    assert.equal(bob.heard.at(-1), 'tools');
    // the policy in force when the change is published decides: the handbook taken from bob
    policy = policyFromText(TEST_POLICY.replace('resources: ["docs://**"]', 'resources: ["none://nothing"]') + `
  - id: sre-docs
    subjects: { teams: [sre] }
    resources: ["docs://**"]
`);
    handler.notify.resourceUpdated('docs://handbook');
    await settle();
    assert.equal((alice.heard as string[]).filter((h) => h.startsWith('updated')).length, 2);
    assert.equal((bob.heard as string[]).filter((h) => h.startsWith('updated')).length, 1);
  } finally {
    await alice.close();
    await bob.close();
  }
});
