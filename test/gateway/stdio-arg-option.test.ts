/**
 * A caller's name filled into an argument never becomes an option of the server (issue 21
 * review): a principal id may begin with `-` (`-x`, `--allow-all`: PRINCIPAL_ID_RE allows it,
 * and sign-in may map a name a person chose), so an argument that is `{principal.id}` alone was
 * handed to the server as an option of its own. A caller whose name would do that is refused,
 * with the reason; a template that begins with `-` itself (`--user={principal.id}`) is the
 * operator's, and is filled as usual.
 *
 * Driven over the stdio upstream's own socket, the identity in `_meta` as the proxy writes it,
 * and the tiny fixture server (`argv` says its arguments).
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
  up = new StdioUpstream({ name: '/mcp/tiny', command: process.execPath, args: [TINY, '{principal.id}', '--user={principal.id}'], env: {}, processModel: 'per-principal', maxProcesses: 4, idleMs: 60_000, maxLineBytes: 1 << 20, timeoutMs: 10_000, baseEnv: { PATH: process.env.PATH }, log: (l) => void logged.push(l) });
  await up.listen();
});
after(async () => {
  await up?.close();
});

const meta = (id: string) => ({ [IDENTITY_META_KEY]: { principal: `spiffe://acme.test/user/${id}`, teams: [], roles: [], scopes: [] } });
async function post(body: unknown, sid?: string): Promise<{ sid?: string; text: string }> {
  const r = await request(up.url, { method: 'POST', dispatcher: up.dispatcher, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(sid ? { 'mcp-session-id': sid } : {}) }, body: JSON.stringify(body) });
  const text = await r.body.text();
  const s = r.headers['mcp-session-id'];
  return { ...(typeof s === 'string' ? { sid: s } : {}), text };
}
const init = (id: string) => post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: id, version: '1' }, _meta: meta(id) } });

test("alice's name fills both arguments; a caller named --allow-all is refused, and no process gets it as an option", async () => {
  const alice = await init('alice');
  assert.ok(alice.sid, alice.text);
  const argv = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'argv', arguments: {}, _meta: meta('alice') } }, alice.sid);
  assert.match(argv.text, /\[\\"alice\\",\\"--user=alice\\"\]/);
  const evil = await init('--allow-all');
  assert.equal(evil.sid, undefined, `a process was started with the caller's name as an option: ${evil.text}`);
  assert.match(evil.text, /--allow-all would begin one with .*an option of the server/);
});
