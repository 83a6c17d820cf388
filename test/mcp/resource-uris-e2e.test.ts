/**
 * Issue 16, findings 3 and 6, end to end with the real SDK clients, over real TLS: the SDK 1.x
 * adapter, the SDK 2.x adapter and the gateway (in front of a plain SDK 1.x server) serve a
 * template `file:///srv/{+path}` whose handler reads a temporary folder with `fileURLToPath`.
 *
 * - Finding 3: `file:///srv/%73ecret/key` (and other spellings of the denied file) read the
 *   secret; now every spelling gets the answer of the plain denied read, and the handler is
 *   handed the canonical URI.
 * - Finding 6: the template's `list` callback and its completions showed bob the secret;
 *   a hidden prompt's argument completions answered.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { completable as completable1 } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer as McpServer1, ResourceTemplate as ResourceTemplate1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { completable as completable2, ResourceTemplate as ResourceTemplate2 } from '@modelcontextprotocol/server';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { policyFromText } from '../../src/policy/compile.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { tmpDir } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const POLICY = `
version: 1
rules:
  - id: files
    subjects: { any: true }
    resources: ["file:///srv/**", "notes://team/**"]
    prompts: [summarize]
  - id: no-secrets-for-bob
    effect: deny
    subjects: { users: [bob] }
    resources: ["file:///srv/secret/**"]
  - id: sre-prompts
    subjects: { teams: [sre] }
    prompts: [rotate]
`;

const root = tmpDir();
fs.mkdirSync(path.join(root, 'public'));
fs.mkdirSync(path.join(root, 'secret'));
fs.writeFileSync(path.join(root, 'public/readme'), 'public text');
fs.writeFileSync(path.join(root, 'secret/key'), 'THE SECRET KEY');
fs.writeFileSync(path.join(root, 'public/café'), 'un café');

/** What the handlers were asked to read, as they received it. */
const handed: string[] = [];

// file:///srv/... is read from the temporary folder, as a real file server would from /srv
function read(uri: URL) {
  handed.push(uri.href);
  const rel = path.relative('/srv', fileURLToPath(uri));
  if (rel.startsWith('..')) throw new Error('outside /srv');
  return { contents: [{ uri: uri.href, mimeType: 'text/plain', text: fs.readFileSync(path.join(root, rel), 'utf8') }] };
}
const listed = async () => ({ resources: [{ uri: 'file:///srv/public/readme', name: 'readme' }, { uri: 'file:///srv/secret/key', name: 'key' }] });
const paths = async () => ['public/readme', 'secret/key'];

// both SDKs have the same public API; their classes differ
type AnyServer = { registerResource(...a: unknown[]): unknown; registerPrompt(...a: unknown[]): unknown };
function builder(ResourceTemplate: new (t: string, cb: Record<string, unknown>) => unknown, completable: (s: z.ZodString, cb: () => string[]) => unknown) {
  const summarizeArgs = { file: completable(z.string(), () => ['public/readme', 'secret/key']) };
  const rotateArgs = { key: completable(z.string(), () => ['k1', 'k2']) };
  return (server: AnyServer) => {
    server.registerResource('files', new ResourceTemplate('file:///srv/{+path}', { list: listed, complete: { path: paths } }), { mimeType: 'text/plain' }, async (uri: URL) => read(uri));
    // a static resource registered in another spelling than the canonical one
    server.registerResource('notes', 'notes://TEAM/%7ebob/todo', { mimeType: 'text/plain' }, async (uri: URL) => ({ contents: [{ uri: uri.href, text: 'todo' }] }));
    server.registerPrompt('summarize', { argsSchema: summarizeArgs }, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'summarize' } }] }));
    server.registerPrompt('rotate', { argsSchema: rotateArgs }, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'rotate' } }] }));
  };
}
const build1 = builder(ResourceTemplate1 as never, completable1 as never);
const build2 = builder(ResourceTemplate2 as never, completable2 as never);

interface McpClient {
  readResource(p: { uri: string }): Promise<{ contents: { uri: string; text?: unknown }[] }>;
  listResources(): Promise<{ resources: { uri: string }[] }>;
  listResourceTemplates(): Promise<{ resourceTemplates: { uriTemplate: string }[] }>;
  complete(p: unknown): Promise<{ completion: { values: string[] } }>;
  close(): Promise<void>;
}

const servers: MtlsServer[] = [];
const closers: (() => Promise<void> | void)[] = [];
const targets: { name: string; url: string; sdk: 1 | 2 }[] = [];
const files: Record<string, { cert: string; key: string; ca: string }> = {};
const reloadable: { current: ReturnType<typeof policyFromText> } = { current: undefined as never };

before(async () => {
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  for (const [who, args] of [['alice', ['--team', 'sre']], ['bob', ['--team', 'dev']]] as const) {
    const r = await pki.issue(['issue', 'client', '--user', who, ...args]);
    files[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  }
  const tls = { ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), log: () => undefined };
  const policy = policyFromText(POLICY);

  // an upstream with no policy of its own, behind the gateway
  const upstream = http.createServer(async (req, res) => {
    const server = new McpServer1({ name: 'files', version: '1' });
    build1(server as unknown as AnyServer);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => void transport.close());
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  closers.push(() => void upstream.close());

  const sdk1 = createMcpSdk1Handler({ serverInfo: { name: 'files', version: '1' }, policy, build: (s) => build1(s as unknown as AnyServer) });
  reloadable.current = policy;
  const sdk1s = createMcpSdk1Handler({ serverInfo: { name: 'files', version: '1' }, policy: () => reloadable.current, stateful: true, build: (s) => build1(s as unknown as AnyServer) });
  const sdk2 = createMcpSdk2Handler({ serverInfo: { name: 'files', version: '1' }, policy, build: (s) => build2(s as unknown as AnyServer) });
  const gw = createGatewayHandler({ routes: [{ prefix: '/mcp', upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`), policy: () => policy }], log: () => undefined });
  closers.push(() => sdk1.close(), () => sdk1s.close(), () => sdk2.close(), () => gw.close());
  for (const [name, handler, sdk] of [['SDK 1.x adapter', sdk1, 1], ['SDK 1.x adapter, stateful', sdk1s, 1], ['SDK 2.x adapter', sdk2, 2], ['gateway', gw, 1]] as const) {
    const server = createMtlsServer(tls, handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    targets.push({ name, url: `https://localhost:${(server.address() as AddressInfo).port}/mcp`, sdk });
  }
});

after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  for (const c of closers) await c();
});

async function connect(target: { url: string; sdk: 1 | 2 }, who: 'alice' | 'bob'): Promise<McpClient> {
  const agent = createMtlsAgent(bundleOf(files[who]!));
  const fetch = createMtlsFetch(agent) as typeof globalThis.fetch;
  const client = target.sdk === 1 ? new Client1({ name: 'test', version: '1' }) : new Client2({ name: 'test', version: '1' });
  await client.connect((target.sdk === 1 ? new Transport1(new URL(target.url), { fetch }) : new Transport2(new URL(target.url), { fetch })) as never);
  const c = client as unknown as McpClient;
  return {
    readResource: (p) => c.readResource(p),
    listResources: () => c.listResources(),
    listResourceTemplates: () => c.listResourceTemplates(),
    complete: (p) => c.complete(p),
    close: async () => {
      await client.close();
      await agent.close();
    },
  };
}

/** The error a read gets, as a string; the secret must never come back. */
async function refusal(client: McpClient, uri: string): Promise<string> {
  const got = await client.readResource({ uri }).then(
    (r) => `READ: ${JSON.stringify(r)}`,
    (e: Error) => e.message,
  );
  assert.doesNotMatch(got, /THE SECRET KEY/, `${uri} returned the secret`);
  return got;
}

for (const name of ['SDK 1.x adapter', 'SDK 1.x adapter, stateful', 'SDK 2.x adapter', 'gateway']) {
  test(`${name}: another spelling of a denied file gets the answer of the plain denied read (finding 3)`, async () => {
    const target = targets.find((t) => t.name === name)!;
    const bob = await connect(target, 'bob');
    const alice = await connect(target, 'alice');
    try {
      assert.equal((await bob.readResource({ uri: 'file:///srv/public/readme' })).contents[0]?.text, 'public text');
      const plain = await refusal(bob, 'file:///srv/secret/key');
      // in the words of the SDK behind the listener (mcp/hidden-targets.ts): 1.x `Resource U not found`, 2.x `Resource not found: U`
      assert.match(plain, /Resource file:\/\/\/srv\/secret\/key not found|Resource not found: file:\/\/\/srv\/secret\/key/);
      // equivalent spellings: one decision, one answer
      for (const uri of ['file:///srv/%73ecret/key', 'file:///srv/%73%65%63%72%65%74/%6b%65%79', 'FILE:///srv/secret/key', 'file://LOCALHOST/srv/./secret/key', 'file:///srv/public/../secret/key', 'file:/srv/secret/key']) {
        assert.equal(await refusal(bob, uri), plain, uri);
      }
      // spellings whose decoding could still change the path: refused as invalid, naming why
      for (const [uri, why] of [
        ['file:///srv/public/%2e%2e/secret/key', /encoded dot segment/],
        ['file:///srv/public/..%2Fsecret/key', /encoded slash/],
        ['file:///srv//secret/key', /empty segment/],
        ['file:///srv/secret/key%00', /control character/],
        ['file:///srv/secret%5Ckey', /backslash/],
        ['file:///srv/%ff/key', /not UTF-8/],
      ] as const) {
        assert.match(await refusal(bob, uri), why, uri);
      }
      // alice may read it, and the handler is handed the canonical URI it was decided on
      handed.length = 0;
      const r = await alice.readResource({ uri: 'file:///srv/%73ecret/key' });
      assert.equal(r.contents[0]?.text, 'THE SECRET KEY');
      assert.deepEqual(handed, ['file:///srv/secret/key']);
      // non-ASCII: one file however it is spelled (2026-07-28 clients send its Mcp-Name header base64-encoded)
      handed.length = 0;
      for (const uri of ['file:///srv/public/café', 'file:///srv/public/caf%c3%a9']) assert.equal((await alice.readResource({ uri })).contents[0]?.text, 'un café', uri);
      assert.deepEqual(handed, ['file:///srv/public/caf%C3%A9', 'file:///srv/public/caf%C3%A9']);
    } finally {
      await bob.close();
      await alice.close();
    }
  });

  test(`${name}: lists and completions show only what the caller could read (finding 6)`, async () => {
    const target = targets.find((t) => t.name === name)!;
    const bob = await connect(target, 'bob');
    const alice = await connect(target, 'alice');
    try {
      // (behind the gateway the upstream lists its own spelling; the adapters register the canonical one)
      const notes = name === 'gateway' ? 'notes://TEAM/%7ebob/todo' : 'notes://team/~bob/todo';
      assert.deepEqual((await bob.listResources()).resources.map((r) => r.uri), [notes, 'file:///srv/public/readme']);
      assert.deepEqual((await alice.listResources()).resources.map((r) => r.uri), [notes, 'file:///srv/public/readme', 'file:///srv/secret/key']);
      if (name !== 'gateway') for (const uri of ['notes://TEAM/%7ebob/todo', 'notes://team/~bob/todo']) assert.equal((await bob.readResource({ uri })).contents[0]?.text, 'todo', uri);
      assert.deepEqual((await bob.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate), ['file:///srv/{+path}']);
      const ref = { type: 'ref/resource', uri: 'file:///srv/{+path}' };
      assert.deepEqual((await bob.complete({ ref, argument: { name: 'path', value: '' } })).completion.values, ['public/readme']);
      assert.deepEqual((await alice.complete({ ref, argument: { name: 'path', value: '' } })).completion.values, ['public/readme', 'secret/key']);
      // a hidden prompt's arguments are not completed; a visible one's are
      await assert.rejects(bob.complete({ ref: { type: 'ref/prompt', name: 'rotate' }, argument: { name: 'key', value: '' } }), /not found/i);
      assert.deepEqual((await alice.complete({ ref: { type: 'ref/prompt', name: 'rotate' }, argument: { name: 'key', value: '' } })).completion.values, ['k1', 'k2']);
      assert.deepEqual((await bob.complete({ ref: { type: 'ref/prompt', name: 'summarize' }, argument: { name: 'file', value: '' } })).completion.values, ['public/readme', 'secret/key']);
    } finally {
      await bob.close();
      await alice.close();
    }
  });
}

test('SDK 1.x adapter, stateful: lists in an open session follow a policy reload', async () => {
  const target = targets.find((t) => t.name === 'SDK 1.x adapter, stateful')!;
  const bob = await connect(target, 'bob');
  const before = reloadable.current;
  try {
    assert.deepEqual((await bob.listResources()).resources.map((r) => r.uri), ['notes://team/~bob/todo', 'file:///srv/public/readme']);
    reloadable.current = policyFromText(`${POLICY}\n  - id: no-public-either\n    effect: deny\n    subjects: { users: [bob] }\n    resources: ["file:///srv/public/**"]\n`);
    assert.deepEqual((await bob.listResources()).resources.map((r) => r.uri), ['notes://team/~bob/todo']);
  } finally {
    reloadable.current = before;
    await bob.close();
  }
});
