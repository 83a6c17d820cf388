/**
 * A stdio upstream that echoes the credential it was given (issue 21 review): a careless server
 * writes its token to stderr and names it in an error. The gateway's log (stderr is logged
 * line by line) and the caller's answer (which the model reads) must not carry it: the
 * process's output is redacted of the secrets the gateway gave it.
 *
 * Driven over the stdio upstream's own socket (what the gateway's proxy talks to), with the
 * identity in `_meta` as the proxy writes it, and the tiny fixture server.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { IDENTITY_META_KEY } from '../../src/gateway/identity-meta.js';
import { StdioUpstream } from '../../src/gateway/stdio-upstream.js';
import { ROOT } from '../support/cli.js';

const TINY = path.join(ROOT, 'test/fixtures/stdio/tiny-server.mjs');
const SECRET = 'ghp_alice-echoed-5d0c7a91';

const logged: string[] = [];
let up: StdioUpstream;

before(async () => {
  up = new StdioUpstream({
    name: '/mcp/tiny',
    command: process.execPath,
    args: [TINY],
    env: {},
    processModel: 'per-principal',
    maxProcesses: 4,
    idleMs: 60_000,
    maxLineBytes: 1 << 20,
    timeoutMs: 10_000,
    credentials: [{ principals: ['alice'], env: { SECRET_TOKEN: { env: 'TEST_ALICE_TOKEN' } } }],
    credentialsRequired: true,
    baseEnv: { PATH: process.env.PATH, TEST_ALICE_TOKEN: SECRET },
    log: (l) => void logged.push(l),
  });
  await up.listen();
});

after(async () => {
  await up?.close();
});

const who = { principal: 'spiffe://acme.test/user/alice', teams: [], roles: [], scopes: [] };

async function post(body: unknown, sid?: string): Promise<{ sid?: string; text: string }> {
  const r = await request(up.url, {
    method: 'POST',
    dispatcher: up.dispatcher,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(sid ? { 'mcp-session-id': sid } : {}) },
    body: JSON.stringify(body),
  });
  const text = await r.body.text();
  const s = r.headers['mcp-session-id'];
  return { ...(typeof s === 'string' ? { sid: s } : {}), text };
}

test('a process that echoes its credential: not in the gateway log, not in the answer', async () => {
  const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' }, _meta: { [IDENTITY_META_KEY]: who } } });
  assert.ok(init.sid, init.text);
  const call = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'leak', arguments: {}, _meta: { [IDENTITY_META_KEY]: who } } }, init.sid);
  // the process did answer (an error naming the variable), and its stderr reached the log
  assert.match(call.text, /upstream refused SECRET_TOKEN=/);
  for (let i = 0; i < 50 && !logged.some((l) => l.includes('authenticating with')); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(logged.some((l) => l.includes('stderr: tiny-server: authenticating with SECRET_TOKEN=')), logged.join('\n'));
  assert.ok(!call.text.includes(SECRET), `the answer carries the secret: ${call.text}`);
  assert.ok(!logged.join('\n').includes(SECRET), `the log carries the secret:\n${logged.join('\n')}`);
  // the rest of the answer is intact JSON-RPC
  const data = JSON.parse(call.text.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { id: number; error: { message: string; data: { env: string } } };
  assert.equal(data.id, 2);
  assert.equal(data.error.message, 'upstream refused SECRET_TOKEN=[redacted]');
  assert.equal(data.error.data.env, 'SECRET_TOKEN=[redacted]');
});

test('a secret spelled with JSON escapes (\\u0061, \\/ as PHP writes a slash) is found too', async () => {
  const { redactor } = await import('../../src/gateway/redact.js');
  const r = redactor(['abc/def+ghi==']);
  const seen = (line: string) => JSON.stringify(r.inJson(line) ? r.value(JSON.parse(line)) : JSON.parse(line));
  assert.equal(seen('{"a":"x abc\\/def+ghi== y"}'), '{"a":"x [redacted] y"}');
  assert.equal(seen('{"a":"x \\u0061bc/def+ghi== y"}'), '{"a":"x [redacted] y"}');
  assert.equal(seen('{"abc/def+ghi==":1}'), '{"[redacted]":1}');
  assert.equal(seen('{"a":"nothing"}'), '{"a":"nothing"}');
});
