/**
 * The gateway as operators run it (`mcp-mtls gateway`): flags, live policy reload, graceful
 * SIGTERM with a request in flight; and an upstream over mTLS that trusts the forwarded
 * identity only from the gateway (trustForwardedIdentity).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { startGateway } from '../../src/gateway/run.js';
import { trustForwardedIdentity } from '../../src/mtls/trust-forwarded.js';
import { createMtlsMiddleware, mtlsServerOptions } from '../../src/mtls/middleware.js';
import { tlsFromPki } from '../../src/mtls/mtls-server.js';
import { readCertificates } from '../../src/x509/pem.js';
import { BIN } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

function upstreamApp(describe: (req: http.IncomingMessage) => unknown) {
  return async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const server = new McpServer({ name: 'up', version: '1' });
    server.registerTool('report', { description: 'who' }, async () => ({ content: [{ type: 'text', text: JSON.stringify(describe(req)) }] }));
    server.registerTool('sleepy', { description: 'takes a while' }, async () => {
      await new Promise((r) => setTimeout(r, 800));
      return { content: [{ type: 'text', text: 'woke up' }] };
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close());
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };
}

const call = (name: string) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {} } });
const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

test('mcp-mtls gateway from flags: serves, reloads its policy, and stops gracefully on SIGTERM', async () => {
  const t = await makePki();
  const gwCert = await t.issue(['issue', 'server', '--dns', 'localhost']);
  const bob = await t.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
  const upstream = http.createServer(upstreamApp(() => 'ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const policy = path.join(t.base, 'policy.yaml');
  const allow = (tools: string) => `version: 1\nrules:\n  - id: dev\n    subjects: { teams: [dev] }\n    tools: [${tools}]\n`;
  fs.writeFileSync(policy, allow('report, sleepy'));
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const audit = path.join(t.base, 'audit.jsonl');
  const child = spawn(process.execPath, [BIN, 'gateway', '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`, '--policy', policy, '--cert', gwCert.files.cert, '--key', gwCert.files.key!, '--pki', t.pki, '--audit', audit], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  for (let i = 0; i < 100 && !/listening on/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(stderr, /listening on https:\/\/127\.0\.0\.1:\d+ \(\/mcp -> http/);
  const agent = createMtlsAgent(bundleOf({ cert: bob.files.cert, key: bob.files.key!, ca: bob.files.ca }));
  const f = createMtlsFetch(agent);
  const url = `https://localhost:${port}/mcp`;
  try {
    assert.match(await (await f(url, { method: 'POST', headers, body: JSON.stringify(call("report")) })).text(), /\\"ok\\"/);
    fs.writeFileSync(`${policy}.new`, allow('sleepy'));
    fs.renameSync(`${policy}.new`, policy);
    let text = '';
    for (let i = 0; i < 50 && !/not found/.test(text); i++) {
      await new Promise((r) => setTimeout(r, 50));
      text = await (await f(url, { method: 'POST', headers, body: JSON.stringify(call('report')) })).text();
    }
    assert.match(text, /Tool report not found/, `the new policy hides report; gateway said: ${stderr}`);
    assert.match(stderr, /policy .* reloaded/);
    // SIGTERM while a slow call is in flight: the call completes, then the gateway exits 0
    const inFlight = f(url, { method: 'POST', headers, body: JSON.stringify(call('sleepy')) }).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    assert.match(await inFlight, /woke up/);
    assert.equal(await exited, 0);
    assert.match(fs.readFileSync(audit, 'utf8'), /"event":"decision".*"target":"report"/);
  } finally {
    child.kill();
    await agent.close();
    upstream.close();
  }
});

test('an upstream over mTLS trusts x-forwarded-client-cert only from the gateway\'s principal', async () => {
  const t = await makePki();
  const upCert = await t.issue(['issue', 'server', '--dns', 'localhost']);
  const gwCert = await t.issue(['issue', 'server', '--dns', 'localhost', '--out', path.join(t.base, 'gw')]);
  const gwClient = await t.issue(['issue', 'client', '--service', 'gateway', '--out', path.join(t.base, 'gw')]);
  const bob = await t.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
  const alice = await t.issue(['issue', 'client', '--user', 'alice', '--team', 'sre']);
  const logs: string[] = [];
  const mtls = createMtlsMiddleware();
  const trust = trustForwardedIdentity({ gateways: ['spiffe://acme.test/service/gateway'], log: (l) => void logs.push(l) });
  type R = http.IncomingMessage & { auth?: { extra: { identity: { principal: string }; via?: { principal: string } } } };
  const app = upstreamApp((req) => ({ user: (req as R).auth?.extra.identity.principal, via: (req as R).auth?.extra.via?.principal ?? null }));
  const upstream = https.createServer(mtlsServerOptions(tlsFromPki(t.pki, upCert.files.cert, upCert.files.key!)), (req, res) => mtls(req, res, () => trust(req as never, res, () => void app(req, res))));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upUrl = `https://localhost:${(upstream.address() as AddressInfo).port}/mcp`;
  const policy = path.join(t.base, 'p.yaml');
  fs.writeFileSync(policy, 'version: 1\nrules:\n  - id: all\n    subjects: { any: true }\n    tools: ["*"]\n');
  const gw = await startGateway(
    {
      listen: '127.0.0.1:0',
      mode: 'default',
      tls: { cert: gwCert.files.cert, key: gwCert.files.key!, pki: t.pki },
      routes: [{ path: '/mcp', upstream: upUrl, policy, upstreamTls: { ca: path.join(t.pki, 'root.crt'), cert: gwClient.files.cert, key: gwClient.files.key! } }],
      upstreamTimeout: '10s',
      maxBodyBytes: 1_000_000,
      shutdownGrace: '1s',
    },
    () => undefined,
  );
  const bobAgent = createMtlsAgent(bundleOf({ cert: bob.files.cert, key: bob.files.key!, ca: bob.files.ca }));
  const aliceAgent = createMtlsAgent(bundleOf({ cert: alice.files.cert, key: alice.files.key!, ca: alice.files.ca }));
  try {
    const viaGateway = await (await createMtlsFetch(bobAgent)(`https://localhost:${gw.address.port}/mcp`, { method: 'POST', headers, body: JSON.stringify(call('report')) })).json();
    assert.deepEqual(JSON.parse((viaGateway as { result: { content: { text: string }[] } }).result.content[0]!.text), { user: 'spiffe://acme.test/user/bob', via: 'spiffe://acme.test/service/gateway' });
    // alice goes to the upstream directly and claims to be bob: ignored
    const bobCert = fs.readFileSync(bob.files.cert, 'utf8');
    const forged = await (await createMtlsFetch(aliceAgent)(upUrl, { method: 'POST', headers: { ...headers, 'x-forwarded-client-cert': `Hash=00;Cert="${encodeURIComponent(bobCert)}";URI=spiffe://acme.test/user/bob` }, body: JSON.stringify(call('report')) })).json();
    assert.deepEqual(JSON.parse((forged as { result: { content: { text: string }[] } }).result.content[0]!.text), { user: 'spiffe://acme.test/user/alice', via: null });
    assert.ok(logs.some((l) => /ignored x-forwarded-client-cert from spiffe:\/\/acme\.test\/user\/alice/.test(l)));

    // from the gateway's own certificate: Hash= must be the SHA-256 of the Cert= it comes with
    // (a gateway that read a renegotiated socket paired one identity with another certificate)
    const gwAgent = createMtlsAgent(bundleOf({ cert: gwClient.files.cert, key: gwClient.files.key!, ca: gwClient.files.ca }));
    try {
      const asGateway = async (xfcc: string) => {
        const r = await createMtlsFetch(gwAgent)(upUrl, { method: 'POST', headers: { ...headers, 'x-forwarded-client-cert': xfcc }, body: JSON.stringify(call('report')) });
        return (await r.json()) as { result: { content: { text: string }[] } };
      };
      const sha = (file: string) => crypto.createHash('sha256').update(readCertificates(fs.readFileSync(file))[0]!).digest('hex');
      const bobXfcc = `Cert="${encodeURIComponent(fs.readFileSync(bob.files.cert, 'utf8'))}";URI=spiffe://acme.test/user/bob`;
      const good = await asGateway(`Hash=${sha(bob.files.cert)};${bobXfcc}`);
      assert.deepEqual(JSON.parse(good.result.content[0]!.text), { user: 'spiffe://acme.test/user/bob', via: 'spiffe://acme.test/service/gateway' });
      // the fetch of mcp-mtls turns the 401 into an error carrying its reason
      for (const xfcc of [`Hash=${sha(alice.files.cert)};${bobXfcc}`, bobXfcc, `Hash=${sha(bob.files.cert).toUpperCase().slice(0, 63)};${bobXfcc}`]) {
        await assert.rejects(asGateway(xfcc), /invalid_identity: the forwarded certificate is not usable: .*Hash/, xfcc.slice(0, 80));
      }
    } finally {
      await gwAgent.close();
    }

    // a start that fails (the port is taken) closes what it opened: a policy watcher left behind
    // would go on reloading (and logging) when the file changes
    const secondLogs: string[] = [];
    const second = startGateway(
      { listen: `127.0.0.1:${gw.address.port}`, mode: 'default', tls: { cert: gwCert.files.cert, key: gwCert.files.key!, pki: t.pki }, routes: [{ path: '/mcp', upstream: upUrl, policy }], upstreamTimeout: '10s', maxBodyBytes: 1_000_000, shutdownGrace: '1s' },
      (l) => void secondLogs.push(l),
    );
    await assert.rejects(second, /EADDRINUSE/);
    fs.writeFileSync(policy, fs.readFileSync(policy, 'utf8') + '# changed\n');
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(secondLogs.filter((l) => /policy/.test(l)), [], 'no watcher left behind by the failed start');
  } finally {
    await bobAgent.close();
    await aliceAgent.close();
    await gw.stop();
    upstream.closeAllConnections();
    upstream.close();
  }
});
