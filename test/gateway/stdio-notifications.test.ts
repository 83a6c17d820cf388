/**
 * Session-scoped notifications of a shared stdio process (stdio-notify.ts): resource updates
 * reach only the sessions that subscribed, an unsubscribe of one session leaves another's
 * subscription in place, log messages reach only the sessions that asked for their level and
 * only while the gateway can tell whose they are; with a fixture server that says what it was
 * told, and with server-everything (stdio). Two real SDK 1.x clients, real TLS.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { ROOT } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { useGateway } from '../support/gateway.js';

const EVERYTHING = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const NOTIFY = path.join(ROOT, 'test/fixtures/stdio/notify-server.mjs');
const POLICY = 'version: 1\nrules:\n  - id: all\n    subjects: { any: true }\n    tools: ["*"]\n    resources: ["**"]\n';

const g = useGateway({
  people: { alice: ['--team', 'sre'], bob: ['--team', 'dev'] },
  policy: POLICY,
  routes: (policy) => [
    { path: '/mcp/notify', policy, stdio: { command: process.execPath, args: [NOTIFY] } },
    { path: '/mcp/everything', policy, stdio: { command: process.execPath, args: [EVERYTHING, 'stdio'] } },
  ],
  inheritEnv: true,
});
const { clients } = g;

interface Heard {
  client: Client;
  logs: { level: string; data: unknown }[];
  updated: string[];
  close(): Promise<void>;
}

async function connect(route: string, who: string): Promise<Heard> {
  const agent = createMtlsAgent(bundleOf(clients[who]!));
  const client = new Client({ name: `${who}-client`, version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${g.url}${route}`), { fetch: createMtlsFetch(agent) as typeof fetch });
  // close ends the session (DELETE), as a client that is done does
  const heard: Heard = { client, logs: [], updated: [], close: async () => { await transport.terminateSession().catch(() => undefined); await client.close(); await agent.close(); } };
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void heard.logs.push({ level: n.params.level, data: n.params.data }));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void heard.updated.push(n.params.uri));
  await client.connect(transport);
  // the GET stream (where notifications that name no request arrive) opens after initialize
  await new Promise((r) => setTimeout(r, 300));
  return heard;
}

const text = (r: unknown) => ((r as { content: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');
const until = async (what: () => boolean, ms = 5_000) => {
  for (const end = Date.now() + ms; !what() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
};
const state = async (h: Heard) => JSON.parse(text(await h.client.callTool({ name: 'state', arguments: {} }))) as { level: string | null; subscribed: string[] };

test('shared process: resources/updated only to the sessions that subscribed; one unsubscribing leaves the other subscribed; an ended session unsubscribes what only it held', async () => {
  const alice = await connect('/mcp/notify', 'alice');
  const bob = await connect('/mcp/notify', 'bob');
  try {
    await alice.client.subscribeResource({ uri: 'note://a' });
    await bob.client.subscribeResource({ uri: 'note://a' });
    await bob.client.subscribeResource({ uri: 'note://b' });
    await bob.client.unsubscribeResource({ uri: 'note://a' });
    assert.deepEqual((await state(alice)).subscribed, ['note://a', 'note://b'], 'bob unsubscribing note://a must not end alice\'s subscription');
    await alice.client.callTool({ name: 'touch', arguments: { delayMs: 100 } });
    await until(() => alice.updated.length >= 1 && bob.updated.length >= 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(alice.updated, ['note://a']);
    assert.deepEqual(bob.updated, ['note://b']);
    await bob.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual((await state(alice)).subscribed, ['note://a'], 'bob\'s session ended: note://b, which only he held, is unsubscribed');
  } finally {
    await alice.close();
  }
});

test('shared process: log messages reach only the sessions that asked for their level, and none while requests of two principals are in flight', async () => {
  const alice = await connect('/mcp/notify', 'alice');
  const bob = await connect('/mcp/notify', 'bob');
  try {
    // during a call of alice's, before anyone set a level: two principals share the process, so nobody
    await alice.client.callTool({ name: 'log', arguments: { level: 'error', data: 'before any level' } });
    await alice.client.setLoggingLevel('warning');
    assert.equal((await state(alice)).level, 'warning');
    await bob.client.setLoggingLevel('debug');
    assert.equal((await state(alice)).level, 'debug', 'the process is told the most verbose level a session asked for');
    // nothing in flight: to every session that asked for the level
    await alice.client.callTool({ name: 'later', arguments: { levels: ['debug', 'info', 'error'], data: 'background', delayMs: 100 } });
    await until(() => bob.logs.length >= 3 && alice.logs.length >= 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(alice.logs.map((l) => l.level), ['error']);
    assert.deepEqual(bob.logs.map((l) => l.level), ['debug', 'info', 'error']);
    // during alice's call: to alice alone, at her level
    alice.logs.length = bob.logs.length = 0;
    await alice.client.callTool({ name: 'log', arguments: { level: 'info', data: 'alice info' } });
    await alice.client.callTool({ name: 'log', arguments: { level: 'critical', data: 'alice critical' } });
    // while bob's request is in flight too: whose it is cannot be told, so nobody
    const waiting = bob.client.callTool({ name: 'wait', arguments: { ms: 800 } });
    await new Promise((r) => setTimeout(r, 200));
    await alice.client.callTool({ name: 'log', arguments: { level: 'critical', data: 'while bob waits' } });
    await waiting;
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(alice.logs.map((l) => l.data), ['alice critical']);
    assert.deepEqual(bob.logs, []);
    // bob leaves: the process is told the level the rest asks for
    await bob.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await state(alice)).level, 'warning');
  } finally {
    await alice.close();
  }
});

test('server-everything (stdio, shared): subscriber updates and simulated logs reach only the caller that asked for them', async () => {
  const alice = await connect('/mcp/everything', 'alice');
  const bob = await connect('/mcp/everything', 'bob');
  try {
    const uris = (await alice.client.listResources()).resources.map((r) => r.uri);
    assert.ok(uris.length >= 2, uris.join(','));
    await alice.client.subscribeResource({ uri: uris[0]! });
    await bob.client.subscribeResource({ uri: uris[1]! });
    await alice.client.setLoggingLevel('debug');
    // the server sends an update per subscribed URI at once, then every 5 s
    await alice.client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await until(() => alice.updated.length >= 1 && bob.updated.length >= 1);
    // a log message at once (during alice's call), then every 5 s (nothing in flight)
    await alice.client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    await until(() => alice.logs.length >= 2, 7_000);
    assert.ok(alice.updated.length >= 1 && alice.updated.every((u) => u === uris[0]), `alice: ${alice.updated.join(',')}`);
    assert.ok(bob.updated.length >= 1 && bob.updated.every((u) => u === uris[1]), `bob: ${bob.updated.join(',')}`);
    // the one during her toggle call and at least one from the 5 s timer
    assert.ok(alice.logs.length >= 2, `alice heard ${alice.logs.length} log messages`);
    assert.deepEqual(bob.logs, [], 'bob never asked for logs');
    await alice.client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    await alice.client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('server-everything (stdio, shared): progress of two callers\' concurrent calls (the same request ids) reaches each caller for its own call only', async () => {
  const alice = await connect('/mcp/everything', 'alice');
  const bob = await connect('/mcp/everything', 'bob');
  try {
    const progress: Record<string, { progress: number; total?: number }[]> = { alice: [], bob: [] };
    const call = (h: Heard, who: string, steps: number) =>
      h.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps } }, CallToolResultSchema, { onprogress: (p) => void progress[who]!.push({ progress: p.progress, ...(p.total !== undefined ? { total: p.total } : {}) }), timeout: 30_000 });
    await Promise.all([call(alice, 'alice', 3), call(bob, 'bob', 4)]);
    assert.deepEqual(progress.alice, [1, 2, 3].map((n) => ({ progress: n, total: 3 })));
    assert.deepEqual(progress.bob, [1, 2, 3, 4].map((n) => ({ progress: n, total: 4 })));
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('a shared process started again (it crashed) is told the sessions\' subscriptions and level before the next request reaches it', async () => {
  const alice = await connect('/mcp/notify', 'alice');
  try {
    await alice.client.subscribeResource({ uri: 'note://a' });
    await alice.client.setLoggingLevel('warning');
    await assert.rejects(alice.client.callTool({ name: 'exit', arguments: {} }), /exited before answering/);
    let after: { level: string | null; subscribed: string[] } | undefined;
    // a process that exits soon after starting is started again after a backoff (0.5 s, doubling)
    for (let i = 0; i < 40 && !after; i++) after = await state(alice).catch(async () => void (await new Promise((r) => setTimeout(r, 250))));
    assert.deepEqual(after, { level: 'warning', subscribed: ['note://a'] });
  } finally {
    await alice.close();
  }
});
