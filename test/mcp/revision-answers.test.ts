/**
 * Hidden answers exactly as unknown, per protocol revision (issue 19, findings 2, 4, 5): for
 * 2025-11-25 and 2026-07-28, what the SDK adapters and the gateway answer for a tool, prompt
 * or resource the caller may not see, for an unknown method and for a routing header that
 * disagrees with the body, compared with what a bare SDK server answers for a truly unknown
 * one (HTTP status and the JSON-RPC message, ids apart: the requests use the same ids).
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { McpServer as McpServer1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createMtlsAgent } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';
import { bareSdk1, bareSdk2, post, rawRequest, type BareServer, type Build, type RawAnswer, type Revision } from '../support/revisions.js';

const POLICY = policyFromText(`
version: 1
rules:
  - id: public
    subjects: { any: true }
    tools: [search]
    prompts: [greet]
    resources: ["docs://public"]
`);

// what everyone may see: the bare reference servers have only this
const publicPart: Build = (s) => {
  const server = s as McpServer1;
  server.registerTool('search', { description: 'search' }, async () => ({ content: [{ type: 'text', text: 'results' }] }));
  server.registerPrompt('greet', { description: 'a greeting' }, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'hello' } }] }));
  server.registerResource('public', 'docs://public', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'public' }] }));
};
// and what the policy hides from every caller
const everything: Build = (s) => {
  publicPart(s);
  const server = s as McpServer1;
  server.registerTool('deploy', { description: 'deploy' }, async () => ({ content: [{ type: 'text', text: 'deployed' }] }));
  server.registerPrompt('secret_prompt', { description: 'hidden' }, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'secret' } }] }));
  server.registerResource('secret', 'docs://secret', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'secret' }] }));
};

// a server whose tools and prompts `build` installs on the low-level server itself (dynamic tools)
const lowLevel: Build = (s) => {
  const low = (s as unknown as { server: { registerCapabilities(c: object): void; setRequestHandler(m: string, h: (r: { params: { name: string } }) => unknown): void } }).server;
  low.registerCapabilities({ tools: {}, prompts: {} });
  low.setRequestHandler('tools/list', async () => ({ tools: ['search', 'deploy'].map((name) => ({ name, inputSchema: { type: 'object' } })) }));
  low.setRequestHandler('tools/call', async (r) => ({ content: [{ type: 'text', text: `ran ${r.params.name}` }] }));
  low.setRequestHandler('prompts/list', async () => ({ prompts: [{ name: 'greet' }, { name: 'secret_prompt' }] }));
  low.setRequestHandler('prompts/get', async (r) => ({ messages: [{ role: 'user', content: { type: 'text', text: r.params.name } }] }));
};

const closers: (() => Promise<void> | void)[] = [];
let agent: ReturnType<typeof createMtlsAgent>;
const bare: Record<'sdk1' | 'sdk2', BareServer> = {} as never;
const listeners: Record<'sdk1' | 'sdk2' | 'sdk2-low-level' | 'sdk1-stateful' | 'sdk2-stateful' | 'gateway-sdk1' | 'gateway-sdk2', string> = {} as never;
// the 2025-11-25 session each stateful listener opened for bob (initialize, then its id on every request)
const sessionOf: Partial<Record<keyof typeof listeners, string>> = {};

before(async () => {
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  const bob = await pki.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
  agent = createMtlsAgent(bundleOf({ cert: bob.files.cert, key: bob.files.key as string, ca: bob.files.ca }));
  closers.push(() => agent.close());
  const tls = tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string);
  const serve = async (handler: Parameters<typeof createMtlsServer>[1] & { close(): Promise<void> }) => {
    const server: MtlsServer = createMtlsServer({ ...tls, log: () => undefined }, handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(async () => { await handler.close(); server.closeAllConnections(); server.close(); });
    return `https://localhost:${(server.address() as AddressInfo).port}/mcp`;
  };
  bare.sdk1 = await bareSdk1(publicPart);
  bare.sdk2 = await bareSdk2(publicPart);
  const up1 = await bareSdk1(everything);
  const up2 = await bareSdk2(everything);
  for (const b of [bare.sdk1, bare.sdk2, up1, up2]) closers.push(() => b.close());
  listeners.sdk1 = await serve(createMcpSdk1Handler({ serverInfo: { name: 'a1', version: '1' }, policy: POLICY, build: everything as never, enableJsonResponse: true }));
  listeners.sdk2 = await serve(createMcpSdk2Handler({ serverInfo: { name: 'a2', version: '1' }, policy: POLICY, build: everything as never }));
  listeners['sdk2-low-level'] = await serve(createMcpSdk2Handler({ serverInfo: { name: 'a2l', version: '1' }, policy: POLICY, build: lowLevel as never }));
  listeners['sdk1-stateful'] = await serve(createMcpSdk1Handler({ serverInfo: { name: 'a1s', version: '1' }, policy: POLICY, build: everything as never, enableJsonResponse: true, stateful: true }));
  listeners['sdk2-stateful'] = await serve(createMcpSdk2Handler({ serverInfo: { name: 'a2s', version: '1' }, policy: POLICY, build: everything as never, stateful: true }));
  for (const l of ['sdk1-stateful', 'sdk2-stateful'] as const) {
    const init = await post(listeners[l], rawRequest('2025-11-25', 0, 'initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } }), agent);
    sessionOf[l] = String(init.headers['mcp-session-id']);
    assert.match(sessionOf[l]!, /^[0-9a-f-]{36}$/, `${l} opened a session: ${JSON.stringify(init.message)}`);
    await post(listeners[l], { body: { jsonrpc: '2.0', method: 'notifications/initialized' }, headers: { 'mcp-protocol-version': '2025-11-25' } }, agent, { 'mcp-session-id': sessionOf[l] });
  }
  const gatewayUrl = await serve(createGatewayHandler({ routes: [{ prefix: '/v1', upstream: new URL(up1.url), policy: () => POLICY }, { prefix: '/v2', upstream: new URL(up2.url), policy: () => POLICY }], log: () => undefined }));
  listeners['gateway-sdk1'] = gatewayUrl.replace(/\/mcp$/, '/v1');
  listeners['gateway-sdk2'] = gatewayUrl.replace(/\/mcp$/, '/v2');
});
after(async () => {
  for (const c of closers.reverse()) await c();
});

const shape = (a: RawAnswer) => ({ status: a.status, message: a.message });

const hiddenRequests = (revision: Revision) => [
  rawRequest(revision, 1, 'tools/call', { name: 'deploy', arguments: {} }),
  rawRequest(revision, 2, 'prompts/get', { name: 'secret_prompt' }),
  rawRequest(revision, 3, 'resources/read', { uri: 'docs://secret' }),
  rawRequest(revision, 4, 'admin/shutdown'),
  ...(revision === '2026-07-28' ? [rawRequest(revision, 5, 'resources/subscribe', {})] : []),
];

// who is compared with which bare SDK, per revision: on 2025-11-25 the gateway answers as SDK 1.x
// (it cannot know its upstream's SDK; docs/gateway.md), so only its 1.x route is compared there
const cases: { revision: Revision; listener: keyof typeof listeners; sdk: 'sdk1' | 'sdk2' }[] = [
  { revision: '2025-11-25', listener: 'sdk1', sdk: 'sdk1' },
  { revision: '2025-11-25', listener: 'sdk2', sdk: 'sdk2' },
  { revision: '2025-11-25', listener: 'sdk1-stateful', sdk: 'sdk1' },
  { revision: '2025-11-25', listener: 'sdk2-stateful', sdk: 'sdk2' },
  { revision: '2025-11-25', listener: 'gateway-sdk1', sdk: 'sdk1' },
  { revision: '2026-07-28', listener: 'sdk2', sdk: 'sdk2' },
  { revision: '2025-11-25', listener: 'sdk2-low-level', sdk: 'sdk2' },
  { revision: '2026-07-28', listener: 'sdk2-low-level', sdk: 'sdk2' },
  { revision: '2026-07-28', listener: 'gateway-sdk2', sdk: 'sdk2' },
];

for (const { revision, listener, sdk } of cases) {
  test(`${revision}, ${listener}: a hidden tool, prompt, resource and an unknown method get exactly what bare SDK ${sdk.slice(3)}.x answers for unknown ones`, async () => {
    for (const req of hiddenRequests(revision)) {
      const reference = shape(await post(bare[sdk].url, req));
      const session = sessionOf[listener];
      const answer = shape(await post(listeners[listener], req, agent, session ? { 'mcp-session-id': session } : {}));
      assert.deepEqual(answer, reference, `${(req.body as { method: string }).method}: ${JSON.stringify(answer)} vs ${JSON.stringify(reference)}`);
    }
  });
}

test('2026-07-28: an Mcp-Method header that disagrees with the body is -32020 (HeaderMismatch) on HTTP 400, as the SDK answers; 2025-11-25 keeps -32600', async () => {
  const modern = rawRequest('2026-07-28', 7, 'tools/list');
  const mismatch = { 'mcp-method': 'tools/call' };
  const reference = await post(bare.sdk2.url, modern, undefined, mismatch);
  assert.equal(reference.status, 400);
  assert.equal((reference.message as { error: { code: number } }).error.code, -32020);
  for (const listener of ['sdk2', 'gateway-sdk2'] as const) {
    const a = await post(listeners[listener], modern, agent, mismatch);
    assert.equal(a.status, 400, listener);
    assert.equal((a.message as { error: { code: number } }).error.code, -32020, `${listener}: ${JSON.stringify(a.message)}`);
    assert.match((a.message as { error: { message: string } }).error.message, /^Bad Request: the request headers and body disagree: /);
  }
  const legacy = await post(listeners.sdk1, rawRequest('2025-11-25', 8, 'tools/list'), agent, mismatch);
  assert.equal(legacy.status, 400);
  assert.equal((legacy.message as { error: { code: number } }).error.code, -32600);
});
