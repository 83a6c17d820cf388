/**
 * The rest of the server adapter: stateful sessions bound to the certificate that opened
 * them, live policy reload, the server's own certificate swapped without restart, CRL
 * expiry warnings, and the middleware for servers built by hand.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { policyFromText } from '../../src/policy/compile.js';
import { watchPolicy } from '../../src/policy-file/watch.js';
import { createMtlsMiddleware, mtlsServerOptions } from '../../src/mtls/middleware.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { cliOk } from '../support/cli.js';
import { bundleOf, connect, startFixture, TEST_POLICY } from '../support/mcp.js';

const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } };
const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

test('stateful sessions: another certificate presenting the session id is refused', async () => {
  const f = await startFixture({ stateful: true });
  try {
    const alice = await connect(f.url, f.clients.alice);
    assert.ok((await alice.client.listTools()).tools.some((t) => t.name === 'deploy'));
    const sessionId = (alice.client as unknown as { _transport: { sessionId?: string } })._transport.sessionId;
    assert.ok(sessionId, 'the server opened a session');
    const bobAgent = createMtlsAgent(bundleOf(f.clients.bob));
    const res = await createMtlsFetch(bobAgent)(f.url, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'deploy', arguments: { env: 'prod' } } }),
    });
    assert.equal(res.status, 404);
    assert.match(await res.text(), /Session not found/);
    assert.ok(f.audit.events.some((e) => e.event === 'session.refused' && e.principal === 'spiffe://acme.test/user/bob'));
    // the owner carries on in the same session
    assert.match(JSON.stringify(await alice.client.callTool({ name: 'deploy', arguments: { env: 'prod' } })), /deployed to prod/);
    // a policy change applies to open sessions: deploy becomes hidden and answers as unknown
    f.policy.current = policyFromText(TEST_POLICY.replace('tools: [deploy]', 'tools: [nothing]'));
    assert.match(JSON.stringify(await alice.client.callTool({ name: 'deploy', arguments: { env: 'prod' } })), /MCP error -32602: Tool deploy not found/);
    await alice.close();
    await bobAgent.close();
  } finally {
    await f.close();
  }
});

test('live policy reload from a watched file: the next request uses the new policy', async () => {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'pol-'));
  const file = path.join(dir, 'policy.yaml');
  fs.writeFileSync(file, TEST_POLICY);
  const watcher = watchPolicy(file, { debounceMs: 20 });
  const f = await startFixture({ policy: () => watcher.current() });
  try {
    const bob = await connect(f.url, f.clients.bob);
    assert.ok(!(await bob.client.listTools()).tools.some((t) => t.name === 'deploy'));
    fs.writeFileSync(`${file}.new`, TEST_POLICY.replace('teams: [sre] }\n    tools: [deploy]', 'teams: [sre, dev] }\n    tools: [deploy]'));
    fs.renameSync(`${file}.new`, file);
    for (let i = 0; i < 100 && !watcher.current().visible({ principal: 'spiffe://acme.test/user/bob', trustDomain: 'acme.test', kind: 'user', id: 'bob', teams: ['dev'], roles: [] }, { kind: 'tool', name: 'deploy' }); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok((await bob.client.listTools()).tools.some((t) => t.name === 'deploy'), 'bob sees deploy after the reload');
    await bob.close();
  } finally {
    watcher.close();
    await f.close();
  }
});

test('the server certificate is replaced without a restart; new handshakes see it', async () => {
  const f = await startFixture();
  try {
    const port = (f.server.address() as AddressInfo).port;
    const serialSeen = () =>
      new Promise<string>((resolve, reject) => {
        const b = bundleOf(f.clients.alice);
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: fs.readFileSync(f.clients.alice.ca), cert: fs.readFileSync(f.clients.alice.cert), key: b.key.export({ format: 'pem', type: 'pkcs8' }) }, () => {
          resolve(s.getPeerX509Certificate()!.serialNumber.toLowerCase());
          s.destroy();
        });
        s.on('error', reject);
      });
    const before = await serialSeen();
    const renewed = await cliOk<{ serial: string; files: { cert: string; key: string } }>(['issue', 'server', '--dir', f.pki.pki, '--dns', 'localhost', '--out', path.join(f.pki.base, 'new-server'), '--json']);
    f.server.setCertificate({ cert: fs.readFileSync(renewed.files.cert), key: fs.readFileSync(renewed.files.key) });
    const after = await serialSeen();
    assert.notEqual(before, after);
    assert.equal(after, renewed.serial);
  } finally {
    await f.close();
  }
});

test('a CRL within a day of its nextUpdate is reported when loaded', async () => {
  const f = await startFixture();
  try {
    await cliOk(['crl', '--dir', f.pki.pki, '--ttl', '2h']);
    const logs: string[] = [];
    const tlsMaterial = tlsFromPki(f.pki.pki, f.serverFiles.cert, f.serverFiles.key);
    const s = createMtlsServer({ ...tlsMaterial, log: (m) => void logs.push(m) }, (_req, res) => void res.end());
    assert.ok(logs.some((l) => /CRL of .*Intermediate.* expires at .* in 1(19|20) minutes/.test(l)), logs.join('\n'));
    s.close();
  } finally {
    await f.close();
  }
});

test('the middleware authenticates requests on a server built by hand', async () => {
  const f = await startFixture();
  try {
    const tlsMaterial = tlsFromPki(f.pki.pki, f.serverFiles.cert, f.serverFiles.key);
    const mtls = createMtlsMiddleware();
    const srv = https.createServer(mtlsServerOptions(tlsMaterial), (req, res) =>
      mtls(req, res, () => void res.end(JSON.stringify({ who: (req as unknown as { auth: { clientId: string } }).auth.clientId }))),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const agent = createMtlsAgent(bundleOf(f.clients.bob));
    const res = await createMtlsFetch(agent)(`https://localhost:${(srv.address() as AddressInfo).port}/`, { headers });
    assert.deepEqual(await res.json(), { who: 'spiffe://acme.test/user/bob' });
    await agent.close();
    srv.closeAllConnections();
    srv.close();
  } finally {
    await f.close();
  }
});
