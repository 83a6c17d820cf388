/**
 * A server that knows its tools warns once, through its log, about policy rules naming tools it
 * does not have: the SDK 1.x and 2.x adapters, with the real SDK clients, on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { McpServer } from '@modelcontextprotocol/server';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { bundleOf, connect, startFixture, TEST_POLICY } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

// the test policy plus a typo and a pattern that matches nothing
const TYPO_POLICY = `${TEST_POLICY}
  - id: ops
    subjects: { teams: [sre] }
    tools: [restart_servce, "cache_*"]
`;

test('SDK 1.x adapter: one warning per unmatched tool name, once per policy, again after a reload to a policy with other typos', async () => {
  const lines: string[] = [];
  const fx = await startFixture({ policyText: TYPO_POLICY, log: (l) => lines.push(l), stateful: false });
  try {
    for (const who of ['alice', 'bob', 'alice'] as const) {
      const c = await connect(fx.url, fx.clients[who]);
      await c.client.listTools();
      await c.close();
    }
    assert.deepEqual(lines, [
      `policy: rule "ops" names tool "restart_servce", which matches none of the server's 7 tools`,
      `policy: rule "ops" names tool pattern "cache_*", which matches none of the server's 7 tools`,
    ]);
    fx.policy.current = policyFromText(TYPO_POLICY.replace('restart_servce, "cache_*"', 'serch'));
    const c = await connect(fx.url, fx.clients.bob);
    await c.client.listTools();
    await c.close();
    assert.equal(lines.length, 3);
    assert.equal(lines[2], `policy: rule "ops" names tool "serch", which matches none of the server's 7 tools (did you mean "search"?)`);
  } finally {
    await fx.close();
  }
  // the test policy names only tools the fixture registers (whoami included): silence
  const quiet: string[] = [];
  const ok = await startFixture({ log: (l) => quiet.push(l) });
  try {
    const c = await connect(ok.url, ok.clients.alice);
    await c.client.listTools();
    await c.close();
    assert.deepEqual(quiet, []);
  } finally {
    await ok.close();
  }
});

test('SDK 2.x adapter: the same warning, once', async () => {
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const alice = await pki.issue(['issue', 'client', '--user', 'alice', '--team', 'sre']);
  const build = (server: McpServer) => {
    for (const name of ['restart_service', 'status']) server.registerTool(name, { description: name }, async () => ({ content: [{ type: 'text' as const, text: name }] }));
  };
  const lines: string[] = [];
  const policy = policyFromText('version: 1\nrules:\n  - id: ops\n    subjects: { teams: [sre] }\n    tools: [restart_servce, status]\n');
  const handler = createMcpSdk2Handler({ serverInfo: { name: 't', version: '1' }, build, policy, log: (l) => lines.push(l) });
  const server = createMtlsServer({ ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), log: () => undefined }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `https://localhost:${(server.address() as AddressInfo).port}/mcp`;
    for (let i = 0; i < 2; i++) {
      const agent = createMtlsAgent(bundleOf({ cert: alice.files.cert, key: alice.files.key as string, ca: alice.files.ca }));
      const client = new Client({ name: 't', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: createMtlsFetch(agent) as typeof fetch }));
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['status'], 'the typo hides restart_service from everyone');
      await client.close();
      await agent.close();
    }
    assert.deepEqual(lines, [`policy: rule "ops" names tool "restart_servce", which matches none of the server's 2 tools (did you mean "restart_service"?)`]);
  } finally {
    await handler.close();
    server.closeAllConnections();
    server.close();
  }
});
