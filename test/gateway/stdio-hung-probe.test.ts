/**
 * A slow call is not a hung process (issue 21 review): a request unanswered within the timeout
 * gets an error, but the process is killed only when it answers no ping either. Before, a
 * process that wrote nothing while one call waited was killed, so any caller of a shared (or
 * per-team) process with one slow call (a fetch of a URL that trickles, a long query) killed
 * it under every other caller, their calls in flight and the process's state with it, and
 * could do so again every timeout.
 *
 * Driven over the stdio upstream's own socket (what the gateway's proxy talks to), with the
 * identity in `_meta` as the proxy writes it, and the tiny fixture server (`hang` never
 * answers its call but answers ping; `freeze` blocks its event loop).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { IDENTITY_META_KEY } from '../../src/gateway/identity-meta.js';
import { StdioUpstream } from '../../src/gateway/stdio-upstream.js';
import { ROOT } from '../support/cli.js';

const TINY = path.join(ROOT, 'test/fixtures/stdio/tiny-server.mjs');
const logged: string[] = [];
let up: StdioUpstream;

before(async () => {
  up = new StdioUpstream({ name: '/mcp/tiny', command: process.execPath, args: [TINY], env: {}, processModel: 'shared', maxProcesses: 1, idleMs: 60_000, maxLineBytes: 1 << 20, timeoutMs: 400, baseEnv: { PATH: process.env.PATH }, log: (l) => void logged.push(l) });
  await up.listen();
});

after(async () => {
  await up?.close();
});

const meta = (user: string) => ({ [IDENTITY_META_KEY]: { principal: `spiffe://acme.test/user/${user}`, teams: [], roles: [], scopes: [] } });

async function post(body: unknown, sid?: string): Promise<{ sid?: string; text: string }> {
  const r = await request(up.url, { method: 'POST', dispatcher: up.dispatcher, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(sid ? { 'mcp-session-id': sid } : {}) }, body: JSON.stringify(body) });
  const text = await r.body.text();
  const s = r.headers['mcp-session-id'];
  return { ...(typeof s === 'string' ? { sid: s } : {}), text };
}

async function session(user: string): Promise<string> {
  const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: user, version: '1' }, _meta: meta(user) } });
  assert.ok(init.sid, init.text);
  return init.sid;
}

const call = (sid: string, user: string, name: string, id = 2) => post({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, _meta: meta(user) } }, sid);
const pidOf = async (sid: string, user: string) => /"text":"(\d+)"/.exec((await call(sid, user, 'pid')).text)?.[1];

test("mallory's call that never answers times out for her; the shared process that still answers ping is not killed under bob", async () => {
  const bob = await session('bob');
  const mallory = await session('mallory');
  const pid = await pidOf(bob, 'bob');
  assert.ok(pid);
  assert.match((await call(mallory, 'mallory', 'hang')).text, /did not answer within 400 ms/);
  await new Promise((r) => setTimeout(r, 600)); // the ping's time
  assert.equal(await pidOf(bob, 'bob'), pid, `the shared process was killed by one slow call:\n${logged.join('\n')}`);
});

test('a process that answers no ping either (its event loop blocked) is killed, and the next call gets a new one', async () => {
  const bob = await session('bob');
  const pid = await pidOf(bob, 'bob');
  assert.match((await call(bob, 'bob', 'freeze')).text, /did not answer within 400 ms/);
  let now: string | undefined;
  for (let i = 0; i < 40 && (now === undefined || now === pid); i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = await pidOf(bob, 'bob').catch(() => undefined);
  }
  assert.ok(now && now !== pid, `still ${pid}:\n${logged.join('\n')}`);
  assert.ok(logged.some((l) => /answered no ping within \d+ ms either: killing it/.test(l)), logged.join('\n'));
});

test("a request of the gateway's own that the process never answers (an ended session's unsubscribe) does not keep the process from its idle stop", async () => {
  const logs: string[] = [];
  const idle = new StdioUpstream({ name: '/mcp/idle', command: process.execPath, args: [TINY], env: {}, processModel: 'per-principal', maxProcesses: 2, idleMs: 300, maxLineBytes: 1 << 20, timeoutMs: 400, baseEnv: { PATH: process.env.PATH }, log: (l) => void logs.push(l) });
  await idle.listen();
  try {
    const req = async (body: unknown, sid?: string, method = 'POST') => {
      const r = await request(idle.url, { method: method as 'POST', dispatcher: idle.dispatcher, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(sid ? { 'mcp-session-id': sid } : {}) }, ...(method === 'POST' ? { body: JSON.stringify(body) } : {}) });
      return { sid: r.headers['mcp-session-id'] as string | undefined, text: await r.body.text() };
    };
    const { sid } = await req({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bob', version: '1' }, _meta: meta('bob') } });
    assert.ok(sid);
    await req({ jsonrpc: '2.0', id: 2, method: 'resources/subscribe', params: { uri: 'note://a', _meta: meta('bob') } }, sid);
    assert.match((await req({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'mute', arguments: {}, _meta: meta('bob') } }, sid)).text, /muted/);
    // the session ends: the gateway unsubscribes what only it held, and the muted process never answers
    await req(undefined, sid, 'DELETE');
    for (let i = 0; i < 30 && idle.counts().running > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(idle.counts().running, 0, `the process was never stopped though idle:\n${logs.join('\n')}`);
  } finally {
    await idle.close();
  }
});

test("a shared process is not told at initialize that its caller is whoever came first: no identity in the initialize's _meta (each request names its own)", async () => {
  const bob = await session('bob');
  const mallory = await session('mallory');
  const init = (await call(mallory, 'mallory', 'init')).text;
  assert.doesNotMatch(init, /mcp-mtls\/identity/, `the shared process was initialized as one caller: ${init}`);
  void bob;
});
