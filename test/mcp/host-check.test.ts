/**
 * DNS rebinding (issue 19, finding 7) and the served path (issue 18): the adapters and the
 * gateway answer a forged `Host` or a foreign `Origin` with 403, accept the server
 * certificate's names, loopback and the configured extra names; the adapters serve their
 * path only (404 elsewhere). The gateway refuses before the upstream is asked.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { McpServer as McpServer1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createMtlsAgent } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';
import { bareSdk1, rawRequest, type Build } from '../support/revisions.js';

const POLICY = policyFromText('version: 1\nrules:\n  - id: all\n    subjects: { any: true }\n    tools: ["*"]\n');
const build: Build = (s) => void (s as McpServer1).registerTool('search', { description: 'search' }, async () => ({ content: [{ type: 'text', text: 'ok' }] }));

const closers: (() => Promise<void> | void)[] = [];
let agent: ReturnType<typeof createMtlsAgent>;
let bobTls: { cert: Buffer; key: Buffer; ca: Buffer };
const ports: Record<string, number> = {};
let upstreamCalls = 0;
const gatewayLog: string[] = [];

before(async () => {
  const pki = await makePki();
  // the server's own name is not a loopback name: accepted because the certificate names it
  const srv = await pki.issue(['issue', 'server', '--dns', 'mcp.acme.test', '--dns', 'localhost', '--ip', '127.0.0.1']);
  const bob = await pki.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
  agent = createMtlsAgent(bundleOf({ cert: bob.files.cert, key: bob.files.key as string, ca: bob.files.ca }));
  bobTls = { cert: fs.readFileSync(bob.files.cert), key: fs.readFileSync(bob.files.key as string), ca: fs.readFileSync(bob.files.ca) };
  closers.push(() => agent.close());
  const tls = tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string);
  const serve = async (name: string, handler: Parameters<typeof createMtlsServer>[1] & { close(): Promise<void> }) => {
    const server = createMtlsServer({ ...tls, log: () => undefined }, handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(async () => { await handler.close(); server.closeAllConnections(); server.close(); });
    ports[name] = (server.address() as AddressInfo).port;
  };
  const extra = { allowedHosts: ['lb.acme.test'], allowedOrigins: ['https://app.acme.test'] };
  await serve('sdk1', createMcpSdk1Handler({ serverInfo: { name: 'a1', version: '1' }, policy: POLICY, build: build as never, enableJsonResponse: true, ...extra }));
  await serve('sdk2', createMcpSdk2Handler({ serverInfo: { name: 'a2', version: '1' }, policy: POLICY, build: build as never, ...extra }));
  const up = await bareSdk1(build);
  closers.push(() => up.close());
  // counts what reaches the upstream
  const counter = http.createServer((req, res) => {
    upstreamCalls++;
    const forward = http.request(up.url, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(forward);
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
  closers.push(() => { counter.closeAllConnections(); counter.close(); });
  await serve('gateway', createGatewayHandler({ routes: [{ prefix: '/mcp', upstream: new URL(`http://127.0.0.1:${(counter.address() as AddressInfo).port}/mcp`), policy: () => POLICY }], log: (l) => void gatewayLog.push(l), ...extra }));
});
after(async () => {
  for (const c of closers.reverse()) await c();
});

// node:https, so that the TLS name checked stays localhost whatever Host header is sent
function list(listener: string, headers: Record<string, string>, path = '/mcp'): Promise<{ status: number; message: unknown }> {
  const req = rawRequest('2025-11-25', 1, 'tools/list');
  return new Promise((resolve, reject) => {
    const r = https.request({ host: '127.0.0.1', servername: 'localhost', port: ports[listener], path, method: 'POST', ...bobTls, agent: false, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...req.headers, ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        // SSE answers (SDK 2.x, 2025-11-25): the first data line
        const json = String(res.headers['content-type']).startsWith('text/event-stream') ? (/^data: (.*)$/m.exec(text)?.[1] ?? '') : text;
        resolve({ status: res.statusCode ?? 0, message: json ? JSON.parse(json) : undefined });
      });
    });
    r.on('error', reject);
    r.end(JSON.stringify(req.body));
  });
}

for (const listener of ['sdk1', 'sdk2', 'gateway']) {
  test(`${listener}: a forged Host or a foreign Origin is refused 403; the certificate's names, loopback and the configured names are served`, async () => {
    const port = ports[listener]!;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `mcp.acme.test:${port}`, 'MCP.acme.test.', `lb.acme.test:${port}`, `[::1]:${port}`]) {
      const r = await list(listener, { host });
      assert.equal(r.status, 200, `Host ${host}: ${JSON.stringify(r.message)}`);
    }
    for (const origin of ['https://app.acme.test', `https://mcp.acme.test:${port}`, 'http://localhost:3000']) {
      const r = await list(listener, { origin });
      assert.equal(r.status, 200, `Origin ${origin}: ${JSON.stringify(r.message)}`);
    }
    const before = upstreamCalls;
    for (const headers of [{ host: 'evil.example' } as Record<string, string>, { host: `evil.example:${port}` }, { host: `x.mcp.acme.test:${port}` }, { host: 'localhost#.evil.example' }, { host: `localhost?.evil.example:${port}` }, { host: 'evil.example@localhost' }, { origin: 'https://evil.example' }, { origin: 'null' }, { origin: 'https://app.acme.test.evil.example' }]) {
      const r = await list(listener, headers);
      assert.equal(r.status, 403, `${JSON.stringify(headers)}: ${r.status} ${JSON.stringify(r.message)}`);
      assert.match((r.message as { error: { message: string } }).error.message, /^Forbidden: the (Host header|Origin) /);
    }
    if (listener === 'gateway') {
      assert.equal(upstreamCalls, before, 'a refused request never reaches the upstream');
      assert.ok(gatewayLog.some((l) => /^refused POST \/mcp from .*the Host header "evil\.example" .*allowedHosts/.test(l)), gatewayLog.join('\n'));
    }
  });
}

for (const listener of ['sdk1', 'sdk2']) {
  test(`${listener}: MCP is served on the configured path only (POST /wrong is 404, not a tool list)`, async () => {
    assert.equal((await list(listener, {}, '/mcp?x=1')).status, 200);
    for (const path of ['/wrong', '/', '/mcp/', '/mcpx', '/mcp/extra']) {
      const r = await list(listener, {}, path);
      assert.equal(r.status, 404, `${path}: ${r.status} ${JSON.stringify(r.message)}`);
    }
  });
}

// a7db17e keeps the Host value accepted last on each connection, so that keep-alive requests
// with the same Host skip the parse: another Host on the same connection is checked in full
for (const listener of ['sdk1', 'sdk2', 'gateway']) {
  test(`${listener}: a second request on the same keep-alive connection with a forged Host is refused`, async () => {
    const port = ports[listener]!;
    const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const send = (host: string) =>
        new Promise<{ status: number; reused: boolean; socket: unknown }>((resolve, reject) => {
          const req = rawRequest('2025-11-25', 1, 'tools/list');
          const r = https.request({ host: '127.0.0.1', servername: 'localhost', port, path: '/mcp', method: 'POST', ...bobTls, agent: keepAlive, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...req.headers, host } }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: r.reusedSocket, socket: r.socket }));
          });
          r.on('error', reject);
          r.end(JSON.stringify(req.body));
        });
      const first = await send(`localhost:${port}`);
      assert.equal(first.status, 200);
      const again = await send(`localhost:${port}`);
      assert.equal(again.status, 200);
      for (const host of ['evil.example', `evil.example:${port}`, `localhost:${port}.evil.example`]) {
        const forged = await send(host);
        assert.ok(forged.reused && forged.socket === first.socket, 'the request went on the same connection');
        assert.equal(forged.status, 403, `Host ${host} on a connection that had sent localhost: ${forged.status}`);
      }
      // and the connection's own names still pass after a refusal
      assert.equal((await send(`localhost:${port}`)).status, 200);
    } finally {
      keepAlive.destroy();
    }
  });
}
