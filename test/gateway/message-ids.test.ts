/**
 * Review of issue 16's gateway fixes: what a client can make the gateway forward without a
 * decision, or filter with the wrong rule. The upstream is an honest JSON-RPC server (it trusts
 * the gateway, so answers every request it gets, unfiltered) that records what it received.
 *
 * - a batch that uses one id for two requests: the gateway filters answers by id, so it must
 *   not let two requests share one (a `tools/list` answer filtered as `resources/list` showed
 *   every tool);
 * - a request method sent as a notification (no id): JSON-RPC servers run notifications, they
 *   only do not answer; the gate decided nothing for it and passed it on.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { policyFromText } from '../../src/policy/compile.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const POLICY = `
version: 1
rules:
  - id: dev-echo
    subjects: { teams: [dev] }
    tools: [echo]
    resources: ["docs://**"]
`;
const SECRET = 'admin-secret';
type Msg = { jsonrpc: string; id?: unknown; method?: string; params?: Record<string, unknown> };

const received: Msg[] = [];
const headersSeen: http.IncomingHttpHeaders[] = [];
let upstream: http.Server;
let gateway: MtlsServer;
let gw: ReturnType<typeof createGatewayHandler>;
let bob: { cert: string; key: string; ca: string };

function answer(m: Msg): unknown {
  switch (m.method) {
    case 'tools/list':
      return { tools: [{ name: 'echo', inputSchema: { type: 'object' } }, { name: SECRET, inputSchema: { type: 'object' } }] };
    case 'resources/list':
      return { resources: [{ uri: 'docs://a', name: 'a' }, { uri: `hr://${SECRET}`, name: SECRET }] };
    case 'tools/call':
      return { content: [{ type: 'text', text: `ran ${String(m.params?.name)}` }] };
    default:
      return {};
  }
}

before(async () => {
  upstream = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const value = JSON.parse(body) as Msg | Msg[];
      const list = Array.isArray(value) ? value : [value];
      received.push(...list);
      headersSeen.push(req.headers);
      const out = list.filter((m) => m.method && 'id' in m).map((m) => ({ jsonrpc: '2.0', id: m.id, result: answer(m) }));
      if (out.length === 0) return res.writeHead(202).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Array.isArray(value) ? out : out[0]));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const r = await pki.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
  bob = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  const policy = policyFromText(POLICY);
  gw = createGatewayHandler({
    routes: [{ prefix: '/mcp', upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`), policy: () => policy }],
    audit: memoryAudit(),
    upstreamTimeoutMs: 2000,
    log: () => undefined,
  });
  gateway = createMtlsServer({ ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), log: () => undefined }, gw);
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
});

after(async () => {
  upstream.closeAllConnections();
  upstream.close();
  gateway.closeAllConnections();
  gateway.close();
  await gw.close();
});

async function post(body: unknown, headers: Record<string, string> = {}) {
  const agent = createMtlsAgent(bundleOf(bob));
  try {
    const res = await createMtlsFetch(agent)(`https://localhost:${(gateway.address() as AddressInfo).port}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  } finally {
    await agent.close();
  }
}

test('a batch with two requests under one id is refused: the answers could not be told apart, so not filtered by the right rule', async () => {
  const before = received.length;
  const r = await post([
    { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} },
    { jsonrpc: '2.0', id: 1, method: 'resources/list', params: {} },
  ]);
  assert.doesNotMatch(r.text, new RegExp(SECRET), r.text);
  assert.equal(received.length, before, 'nothing reached the upstream');
  // distinct ids: both answered, each filtered
  const ok = await post([
    { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} },
    { jsonrpc: '2.0', id: 2, method: 'resources/list', params: {} },
  ]);
  assert.equal(ok.status, 200, ok.text);
  assert.doesNotMatch(ok.text, new RegExp(SECRET), ok.text);
  assert.match(ok.text, /"echo"/);
  assert.match(ok.text, /docs:\/\/a/);
});

test('a request method sent as a notification (no id) is not forwarded undecided', async () => {
  const before = received.length;
  for (const body of [
    { jsonrpc: '2.0', method: 'tools/call', params: { name: SECRET, arguments: {} } },
    { jsonrpc: '2.0', method: 'resources/read', params: { uri: `hr://${SECRET}` } },
    [{ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }, { jsonrpc: '2.0', method: 'tools/call', params: { name: SECRET } }],
  ]) {
    const r = await post(body);
    assert.ok(r.status >= 400 || /error/.test(r.text), `${JSON.stringify(body)}: ${r.status} ${r.text}`);
  }
  assert.deepEqual(received.slice(before).filter((m) => m.method === 'tools/call' || m.method === 'resources/read'), [], 'the upstream never saw them');
  // real notifications still pass
  const n = await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  assert.equal(n.status, 202);
  assert.equal(received.at(-1)?.method, 'notifications/initialized');
});

test('client-certificate headers of other TLS proxies sent by the client do not reach the upstream', async () => {
  // #20 review: and RFC 9440's Client-Cert / Client-Cert-Chain (HAProxy, Cloudflare), which the gateway itself now reads from trusted proxies
  const forged = ['x-forwarded-tls-client-cert', 'x-forwarded-tls-client-cert-info', 'x-ssl-client-cert', 'ssl-client-cert', 'x-client-cert', 'x-client-dn', 'x-ssl-client-s-dn', 'x-ssl-client-verify', 'x-amzn-mtls-clientcert', 'x-arr-clientcert', 'client-cert', 'client-cert-chain', 'x-amzn-mtls-clientcert-subject', 'x-amzn-mtls-clientcert-issuer', 'x-amzn-mtls-clientcert-serial-number', 'x-amzn-mtls-clientcert-validity'];
  const r = await post({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }, Object.fromEntries(forged.map((h) => [h, 'CN=alice'])));
  assert.equal(r.status, 200, r.text);
  const seen = headersSeen.at(-1)!;
  assert.deepEqual(forged.filter((h) => h in seen), []);
  assert.ok(seen['x-forwarded-client-cert'], 'the gateway\'s own header is there');
});
