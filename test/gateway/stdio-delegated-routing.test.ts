/**
 * A shared stdio process serving bob himself and a platform acting for bob (issue 21 review):
 * what the gateway routes by "one principal" (log messages, server-to-client requests, other
 * notifications that name no request) must not treat the two as one caller. The platform acts
 * for bob only within what he delegated (tools may be limited, #23), and bob's own calls are
 * not the platform's to watch. Before, both were "bob": bob's log messages went to the
 * platform's stream as if it were his own session.
 *
 * Driven over the stdio upstream's own socket (what the gateway's proxy talks to), the identity
 * in `_meta` as the proxy writes it (identity-meta.ts), with the notify fixture server.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { IDENTITY_META_KEY } from '../../src/gateway/identity-meta.js';
import { StdioUpstream } from '../../src/gateway/stdio-upstream.js';
import { ROOT } from '../support/cli.js';

const NOTIFY = path.join(ROOT, 'test/fixtures/stdio/notify-server.mjs');
let up: StdioUpstream;

before(async () => {
  up = new StdioUpstream({ name: '/mcp/notify', command: process.execPath, args: [NOTIFY], env: {}, processModel: 'shared', maxProcesses: 1, idleMs: 60_000, maxLineBytes: 1 << 20, timeoutMs: 10_000, baseEnv: { PATH: process.env.PATH }, log: () => undefined });
  await up.listen();
});
after(async () => {
  await up?.close();
});

const BOB = 'spiffe://acme.test/user/bob';
const bob = { [IDENTITY_META_KEY]: { principal: BOB, teams: ['dev'], roles: [], scopes: [] } };
const platformForBob = { [IDENTITY_META_KEY]: { principal: 'spiffe://acme.test/service/chat-platform', teams: [], roles: [], scopes: [], actingFor: { principal: BOB, teams: ['dev'], roles: [] }, actors: ['spiffe://acme.test/service/chat-platform'] } };

async function post(body: unknown, sid?: string): Promise<{ sid?: string; text: string }> {
  const r = await request(up.url, { method: 'POST', dispatcher: up.dispatcher, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(sid ? { 'mcp-session-id': sid } : {}) }, body: JSON.stringify(body) });
  const text = await r.body.text();
  const s = r.headers['mcp-session-id'];
  return { ...(typeof s === 'string' ? { sid: s } : {}), text };
}
const open = async (meta: object) => (await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' }, _meta: meta } })).sid!;

/** A session's GET stream: what it received so far, and its end. */
async function stream(sid: string): Promise<{ got: () => string; close: () => void }> {
  const r = await request(up.url, { method: 'GET', dispatcher: up.dispatcher, headers: { accept: 'text/event-stream', 'mcp-session-id': sid } });
  let got = '';
  r.body.on('data', (c: Buffer) => (got += c.toString()));
  r.body.on('error', () => undefined);
  return { got: () => got, close: () => r.body.destroy() };
}

test("bob's own log messages (nothing in flight) reach bob, who asked for them, not the platform that acts for him", async () => {
  const mine = await open(bob);
  const platform = await open(platformForBob);
  await post({ jsonrpc: '2.0', id: 2, method: 'logging/setLevel', params: { level: 'info', _meta: bob } }, mine);
  const [b, p] = [await stream(mine), await stream(platform)];
  try {
    await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'later', arguments: { levels: ['info'], data: "bob's private note", delayMs: 150 }, _meta: bob } }, mine);
    for (let i = 0; i < 40 && !b.got().includes('private note'); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    assert.match(b.got(), /bob's private note/, 'bob did not get his own log message');
    assert.doesNotMatch(p.got(), /bob's private note/, `the platform acting for bob got bob's own log message: ${p.got()}`);
  } finally {
    b.close();
    p.close();
  }
});
