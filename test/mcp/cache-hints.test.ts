/**
 * Caching hints of per-caller results (issue 19, finding 3; 2026-07-28, SEP-2549): a server
 * configured with `cacheScope: "public"` lists must not have them marked public once mcp-mtls
 * filters them per caller, through the 2.x adapter and through the gateway; the author's
 * `ttlMs` stays; 2025-11-25 answers get no caching fields.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { McpServer } from '@modelcontextprotocol/server';
import { createMtlsAgent } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';
import { bareSdk2, post, rawRequest, type Build } from '../support/revisions.js';

const POLICY = policyFromText(`
version: 1
rules:
  - id: sre
    subjects: { teams: [sre] }
    tools: ["*"]
    prompts: ["*"]
    resources: ["**"]
  - id: dev
    subjects: { teams: [dev] }
    tools: [t0]
    prompts: [p0]
    resources: ["docs://r0", "docs://own", "docs://t0/{x}"]
`);
const PUBLIC = { ttlMs: 60_000, cacheScope: 'public' as const };
const HINTS = { 'tools/list': PUBLIC, 'prompts/list': PUBLIC, 'resources/list': PUBLIC, 'resources/templates/list': PUBLIC, 'resources/read': PUBLIC };

const build: Build = (s) => {
  const server = s as McpServer;
  for (let i = 0; i < 5; i++) {
    server.registerTool(`t${i}`, { description: 't' }, async () => ({ content: [{ type: 'text', text: 'ok' }] }));
    server.registerPrompt(`p${i}`, { description: 'p' }, async () => ({ messages: [] }));
    server.registerResource(`r${i}`, `docs://r${i}`, { mimeType: 'text/plain', cacheHint: PUBLIC }, async (uri) => ({ contents: [{ uri: uri.href, text: 'r' }] }));
  }
  const { ResourceTemplate } = templates;
  server.registerResource('t0', new ResourceTemplate('docs://t0/{x}', { list: undefined }), {}, async (uri) => ({ contents: [{ uri: uri.href, text: 't' }] }));
  server.registerResource('t1', new ResourceTemplate('docs://t1/{x}', { list: undefined }), {}, async (uri) => ({ contents: [{ uri: uri.href, text: 't' }] }));
  // a read callback that sets the result's own caching fields (the SDK prefers them to any hint)
  server.registerResource('own', 'docs://own', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'own' }], ...PUBLIC }));
};
// resources/read installed by build on the low-level server itself, its result marked public
const lowLevel: Build = (s) => {
  const low = (s as unknown as { server: { registerCapabilities(c: object): void; setRequestHandler(m: string, h: (r: { params: { uri: string } }) => unknown): void } }).server;
  low.registerCapabilities({ resources: {} });
  low.setRequestHandler('resources/read', async (r) => ({ contents: [{ uri: r.params.uri, text: 'low' }], ...PUBLIC }));
};
let templates: typeof import('@modelcontextprotocol/server');

const closers: (() => Promise<void> | void)[] = [];
const agents: Record<'alice' | 'bob', ReturnType<typeof createMtlsAgent>> = {} as never;
const urls: Record<'adapter' | 'gateway' | 'adapter-low-level', string> = {} as never;

before(async () => {
  templates = await import('@modelcontextprotocol/server');
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  for (const [who, team] of [['alice', 'sre'], ['bob', 'dev']] as const) {
    const c = await pki.issue(['issue', 'client', '--user', who, '--team', team]);
    agents[who] = createMtlsAgent(bundleOf({ cert: c.files.cert, key: c.files.key as string, ca: c.files.ca }));
    closers.push(() => agents[who].close());
  }
  const tls = tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string);
  const serve = async (handler: Parameters<typeof createMtlsServer>[1] & { close(): Promise<void> }) => {
    const server = createMtlsServer({ ...tls, log: () => undefined }, handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(async () => { await handler.close(); server.closeAllConnections(); server.close(); });
    return `https://localhost:${(server.address() as AddressInfo).port}/mcp`;
  };
  urls.adapter = await serve(createMcpSdk2Handler({ serverInfo: { name: 'a2', version: '1' }, policy: POLICY, build: build as never, serverOptions: { cacheHints: HINTS } }));
  urls['adapter-low-level'] = await serve(createMcpSdk2Handler({ serverInfo: { name: 'a2l', version: '1' }, policy: POLICY, build: lowLevel as never }));
  const upstream = await bareSdk2(build, { cacheHints: HINTS });
  closers.push(() => upstream.close());
  urls.gateway = await serve(createGatewayHandler({ routes: [{ prefix: '/mcp', upstream: new URL(upstream.url), policy: () => POLICY }], log: () => undefined }));
});
after(async () => {
  for (const c of closers.reverse()) await c();
});

const LISTS = [['tools/list', 'tools'], ['prompts/list', 'prompts'], ['resources/list', 'resources'], ['resources/templates/list', 'resourceTemplates']] as const;

for (const listener of ['adapter', 'gateway'] as const) {
  test(`${listener}, 2026-07-28: lists that differ per caller are never public; the ttl stays; resources/read is private too`, async () => {
    for (const [method, key] of LISTS) {
      const a = (await post(urls[listener], rawRequest('2026-07-28', 1, method), agents.alice)).message as { result: Record<string, unknown> };
      const b = (await post(urls[listener], rawRequest('2026-07-28', 1, method), agents.bob)).message as { result: Record<string, unknown> };
      assert.notEqual((a.result[key] as unknown[]).length, (b.result[key] as unknown[]).length, `${method}: the two callers see different lists`);
      for (const [who, r] of [['alice', a], ['bob', b]] as const) {
        assert.equal(r.result.cacheScope, 'private', `${listener} ${method} for ${who}: ${JSON.stringify({ ttlMs: r.result.ttlMs, cacheScope: r.result.cacheScope })}`);
        assert.equal(r.result.ttlMs, 60_000);
      }
    }
    const read = (await post(urls[listener], rawRequest('2026-07-28', 2, 'resources/read', { uri: 'docs://r0' }), agents.bob)).message as { result: Record<string, unknown> };
    assert.equal(read.result.cacheScope, 'private', `resources/read: ${JSON.stringify(read.result)}`);
  });

  test(`${listener}, 2025-11-25: no caching fields appear`, async () => {
    const r = (await post(urls[listener], rawRequest('2025-11-25', 1, 'tools/list'), agents.bob)).message as { result: Record<string, unknown> };
    assert.deepEqual((r.result.tools as { name: string }[]).map((t) => t.name), ['t0']);
    assert.equal('cacheScope' in r.result, false);
    assert.equal('ttlMs' in r.result, false);
  });
}

// found in review: the 2.x adapter made its hints private, but a result that names its own
// cacheScope wins over any hint in the SDK, and the adapter did not rewrite resources/read results
for (const listener of ['adapter', 'adapter-low-level', 'gateway'] as const) {
  test(`${listener}, 2026-07-28: a resources/read result that marks itself public leaves private`, async () => {
    const r = await post(urls[listener], rawRequest('2026-07-28', 3, 'resources/read', { uri: 'docs://own' }), agents.bob);
    const result = (r.message as { result?: Record<string, unknown> }).result;
    assert.ok(result, `${listener}: ${JSON.stringify(r.message)}`);
    assert.equal(result.cacheScope, 'private', `${listener} resources/read docs://own: ${JSON.stringify({ ttlMs: result.ttlMs, cacheScope: result.cacheScope })}`);
    assert.equal(result.ttlMs, 60_000);
  });
}
