/**
 * One caller cannot push the other callers' sessions out (issue 21 review): the gateway's
 * session table and a stdio upstream's own sessions are bounded (least recently used
 * forgotten first), and one certificate or principal opening sessions without end filled
 * them, so everyone else's next request was 'Session not found'. Each now holds at most a
 * share per certificate (the gateway) or per caller (a stdio upstream): past it, that
 * caller's own least recently used session goes.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { IDENTITY_META_KEY } from '../../src/gateway/identity-meta.js';
import { SessionTable } from '../../src/gateway/sessions.js';
import { StdioUpstream } from '../../src/gateway/stdio-upstream.js';
import { ROOT } from '../support/cli.js';

const TINY = path.join(ROOT, 'test/fixtures/stdio/tiny-server.mjs');

test("the gateway's session table: one certificate opening sessions without end keeps its own share, and bob's session stays", () => {
  const table = new SessionTable({ max: 50, maxPerCertificate: 10 });
  const opened = (sid: string, fp: string) => table.answered('/mcp', { method: 'POST', sid: undefined }, { statusCode: 200, headers: { 'mcp-session-id': sid } }, fp);
  opened('bob-1', 'fp-bob');
  for (let i = 0; i < 100; i++) opened(`m-${i}`, 'fp-mallory');
  assert.equal(table.refusal('/mcp', 'bob-1', 'fp-bob'), undefined, "bob's session was pushed out by mallory's");
  // mallory keeps her 10 most recent
  assert.equal(table.refusal('/mcp', 'm-99', 'fp-mallory'), undefined);
  assert.equal(table.refusal('/mcp', 'm-90', 'fp-mallory'), undefined);
  assert.equal(table.refusal('/mcp', 'm-89', 'fp-mallory'), 'unknown session');
  // a session ended is no longer counted
  table.answered('/mcp', { method: 'DELETE', sid: 'm-99' }, { statusCode: 200, headers: {} }, 'fp-mallory');
  opened('m-100', 'fp-mallory');
  assert.equal(table.refusal('/mcp', 'm-90', 'fp-mallory'), undefined);
});

let up: StdioUpstream;
before(async () => {
  up = new StdioUpstream({ name: '/mcp/tiny', command: process.execPath, args: [TINY], env: {}, processModel: 'shared', maxProcesses: 1, idleMs: 60_000, maxLineBytes: 1 << 20, timeoutMs: 10_000, maxSessions: 50, maxSessionsPerCaller: 10, baseEnv: { PATH: process.env.PATH }, log: () => undefined });
  await up.listen();
});
after(async () => {
  await up?.close();
});

const meta = (user: string) => ({ [IDENTITY_META_KEY]: { principal: `spiffe://acme.test/user/${user}`, teams: [], roles: [], scopes: [] } });
async function post(body: unknown, sid?: string): Promise<{ status: number; sid?: string; text: string }> {
  const r = await request(up.url, { method: 'POST', dispatcher: up.dispatcher, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(sid ? { 'mcp-session-id': sid } : {}) }, body: JSON.stringify(body) });
  const text = await r.body.text();
  const s = r.headers['mcp-session-id'];
  return { status: r.statusCode, ...(typeof s === 'string' ? { sid: s } : {}), text };
}
const open = async (user: string) => (await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: user, version: '1' }, _meta: meta(user) } })).sid!;
const ping = (sid: string, user: string) => post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'pid', arguments: {}, _meta: meta(user) } }, sid);

test("a stdio upstream's sessions: mallory's 100 sessions leave bob's, and keep her 10 most recent", async () => {
  const bob = await open('bob');
  const mallory: string[] = [];
  for (let i = 0; i < 100; i++) mallory.push(await open('mallory'));
  const b = await ping(bob, 'bob');
  assert.equal(b.status, 200, `bob's session was pushed out by mallory's: ${b.status} ${b.text}`);
  assert.equal((await ping(mallory[99]!, 'mallory')).status, 200);
  assert.equal((await ping(mallory[90]!, 'mallory')).status, 200);
  assert.equal((await ping(mallory[89]!, 'mallory')).status, 404);
  assert.equal(up.counts().sessions, 11);
});

test('a session holds at most 1,000 resource subscriptions: the next is refused with the reason, an unsubscribe makes room', async () => {
  const sid = await open('carol');
  const sub = (i: number, id: number) => ({ jsonrpc: '2.0', id, method: 'resources/subscribe', params: { uri: `note://n/${i}`, _meta: meta('carol') } });
  const batch = await post(Array.from({ length: 1001 }, (_, i) => sub(i, 100 + i)), sid);
  const answers = batch.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as { id: number; error?: { message: string } });
  const last = answers.find((a) => a.id === 1100);
  assert.match(last?.error?.message ?? '', /at most 1000 resource subscriptions/, `the 1001st subscription was taken: ${JSON.stringify(last)}`);
  await post({ jsonrpc: '2.0', id: 2, method: 'resources/unsubscribe', params: { uri: 'note://n/0', _meta: meta('carol') } }, sid);
  const again = await post(sub(1000, 3), sid);
  assert.doesNotMatch(again.text, /at most 1000/);
});
