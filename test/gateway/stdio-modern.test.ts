/**
 * A 2026-07-28 (stateless) client on a stdio route (stdio-modern.ts): the real SDK 2.x client
 * pinned to 2026-07-28 discovers, lists (filtered per caller) and calls tools of
 * server-everything in stdio mode, which speaks a 2025 revision; progress reaches it; a 2025
 * client (SDK 1.x) shares the same process at the same time.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { ROOT } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { useGateway } from '../support/gateway.js';

const EVERYTHING = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const POLICY = `
version: 1
rules:
  - id: sre-everything
    subjects: { teams: [sre] }
    tools: ["*"]
  - id: dev-echo
    subjects: { teams: [dev] }
    tools: [echo]
`;

const g = useGateway({
  people: { alice: ['--team', 'sre'], bob: ['--team', 'dev'] },
  policy: POLICY,
  routes: (policy) => [{ path: '/mcp/everything', policy, stdio: { command: process.execPath, args: [EVERYTHING, 'stdio'] } }],
  inheritEnv: true,
});
const { clients, logged } = g;

async function modern(who: string, seen?: string[]) {
  const agent = createMtlsAgent(bundleOf(clients[who]!));
  const mtlsFetch = createMtlsFetch(agent) as typeof fetch;
  // what the gateway answered: to check no session is opened for a stateless client
  const f: typeof fetch = async (u, init) => {
    const r = await mtlsFetch(u, init);
    seen?.push(r.headers.get('mcp-session-id') ?? '');
    return r;
  };
  const client = new Client2({ name: `${who}-2026`, version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new Transport2(new URL(`${g.url}/mcp/everything`), { fetch: f }));
  return { client, close: async () => { await client.close(); await agent.close(); } };
}

const text = (r: unknown) => ((r as { content: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');

test('SDK 2.x client pinned to 2026-07-28 on a stdio route: discover, lists filtered per caller, calls, a hidden tool as unknown, progress, no session', async () => {
  const seen: string[] = [];
  const alice = await modern('alice', seen);
  const bob = await modern('bob');
  try {
    const aliceTools = (await alice.client.listTools()).tools.map((t) => t.name);
    assert.ok(aliceTools.includes('echo') && aliceTools.includes('trigger-long-running-operation'), aliceTools.join(','));
    assert.deepEqual((await bob.client.listTools()).tools.map((t) => t.name), ['echo']);
    assert.equal(text(await bob.client.callTool({ name: 'echo', arguments: { message: 'stateless bob' } })), 'Echo: stateless bob');
    const hidden = await bob.client.callTool({ name: 'get-env', arguments: {} }).catch((e: Error) => e);
    const unknown = await bob.client.callTool({ name: 'no-such-tool', arguments: {} }).catch((e: Error) => e);
    const said = (x: unknown) => (x instanceof Error ? x.message : text(x));
    assert.match(said(unknown), /no-such-tool/);
    assert.equal(said(hidden).replaceAll('get-env', 'X'), said(unknown).replaceAll('no-such-tool', 'X'));
    const progress: number[] = [];
    const r = await alice.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, { onprogress: (p) => void progress.push(p.progress), timeout: 30_000 });
    assert.match(text(r), /completed/i);
    assert.deepEqual(progress, [1, 2, 3]);
    assert.ok(seen.length > 0 && seen.every((s) => s === ''), `Mcp-Session-Id sent to a 2026-07-28 client: ${seen.join(',')}`);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('a 2025 client and a 2026-07-28 client share one stdio process at the same time', async () => {
  const agent = createMtlsAgent(bundleOf(clients.alice!));
  const old = new Client1({ name: 'alice-2025', version: '1' });
  await old.connect(new Transport1(new URL(`${g.url}/mcp/everything`), { fetch: createMtlsFetch(agent) as typeof fetch }));
  const neu = await modern('alice');
  try {
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? old : neu.client).callTool({ name: 'echo', arguments: { message: `m${i}` } })));
    assert.deepEqual(answers.map(text), Array.from({ length: 10 }, (_, i) => `Echo: m${i}`));
    assert.equal(logged.filter((l) => / started$/.test(l)).length, 1, logged.join('\n'));
  } finally {
    await old.close();
    await agent.close();
    await neu.close();
  }
});
