/**
 * Real proxies ending mTLS in front of mcp-mtls, forwarding the client certificate: nginx
 * (`$ssl_client_escaped_cert` in `ssl-client-cert`, as ingress-nginx does) in front of an SDK 1.x
 * adapter server and in front of the gateway, and HAProxy (RFC 9440 `Client-Cert`,
 * `:%[ssl_c_der,base64]:`). nginx verifies nothing itself here (`ssl_verify_client
 * optional_no_ca`): what is refused is refused by the server, which checks the forwarded
 * certificate as it checks a handshake one. The proxies connect to the servers from 127.0.0.2
 * (nginx) and 127.0.0.3 (HAProxy), the addresses listed in trustedProxies; test clients connect
 * from 127.0.0.1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { startGateway, type RunningGateway } from '../../src/gateway/run.js';
import { buildTestServer, connect, revoke, startFixture, TEST_POLICY, type McpFixture } from '../support/mcp.js';
import { makePki } from '../support/pki.js';
import { tmpDir } from '../support/cli.js';
import { nginxEscaped, rawPost, toolNames } from '../support/forwarded.js';
import { freePort, startHaproxy, startNginx, type RunningProxy } from '../support/proxies.js';

let fx: McpFixture;
let dir: string;
let root: string;
let nginx: RunningProxy;
let haproxy: RunningProxy;
let upstream: http.Server;
let gw: RunningGateway;
let other: { cert: string; key?: string };
const proxies: RunningProxy[] = [];

/** one nginx server block: mTLS towards clients (any certificate: the backend decides), TLS with SNI to `backend`, from 127.0.0.2 */
const nginxServer = (port: number, backendPort: number) => `
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${fx.serverFiles.cert};
    ssl_certificate_key ${fx.serverFiles.key};
    ssl_verify_client optional_no_ca;
    location / {
      proxy_pass https://127.0.0.1:${backendPort};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host localhost;
      proxy_bind 127.0.0.2;
      proxy_ssl_trusted_certificate ${root};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
      proxy_buffering off;
      proxy_set_header ssl-client-cert $ssl_client_escaped_cert;
    }`;

const serverPem = () => {
  const pem = path.join(dir, 'server.pem');
  fs.writeFileSync(pem, fs.readFileSync(fx.serverFiles.cert, 'utf8') + fs.readFileSync(fx.serverFiles.key, 'utf8'));
  return pem;
};

before(async () => {
  fx = await startFixture({ trustedProxies: [{ from: '127.0.0.2', format: 'nginx' }, { from: '127.0.0.3/32', format: 'rfc9440' }] });
  dir = tmpDir();
  root = path.join(fx.pki.pki, 'root.crt');
  const appPort = Number(new URL(fx.url).port);
  const foreign = await makePki(['--name', 'Other CA']);
  other = (await foreign.issue(['issue', 'client', '--user', 'alice', '--team', 'sre'])).files;

  // the gateway, its upstream an SDK 1.x server without authentication of its own
  upstream = http.createServer(async (req, res) => {
    const server = new McpServer({ name: 'upstream', version: '1' });
    buildTestServer(server);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => void transport.close());
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const policy = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policy, TEST_POLICY);
  gw = await startGateway(
    {
      listen: '127.0.0.1:0',
      mode: 'default',
      tls: { cert: fx.serverFiles.cert, key: fx.serverFiles.key, pki: fx.pki.pki },
      trustedProxies: [{ from: ['127.0.0.2'], format: 'nginx' }],
      routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${(upstream.address() as { port: number }).port}/mcp`, policy }],
      upstreamTimeout: '10s',
      maxBodyBytes: 1_000_000,
      shutdownGrace: '1s',
    },
    () => undefined,
  );

  const nginxPort = await freePort();
  const nginxGwPort = await freePort();
  const nginxDir = path.join(dir, 'nginx');
  fs.mkdirSync(nginxDir);
  nginx = await startNginx(nginxDir, nginxPort, `${nginxServer(nginxPort, appPort)}\n  }\n  server {\n${nginxServer(nginxGwPort, gw.address.port)}`);
  proxies.push(nginx);
  nginxGateway = nginxGwPort;

  const haproxyPort = await freePort();
  const haDir = path.join(dir, 'haproxy');
  fs.mkdirSync(haDir);
  haproxy = await startHaproxy(
    haDir,
    haproxyPort,
    `frontend mtls
  bind 127.0.0.1:${haproxyPort} ssl crt ${serverPem()} ca-file ${root} verify required
  http-request del-header Client-Cert-Chain
  http-request set-header Client-Cert :%[ssl_c_der,base64]:
  default_backend app

backend app
  server app 127.0.0.1:${appPort} ssl verify required ca-file ${root} sni str(localhost) source 127.0.0.3
`,
  );
  proxies.push(haproxy);
});

let nginxGateway = 0;

after(async () => {
  for (const p of proxies) await p.stop();
  await gw?.stop();
  upstream?.close();
  await fx.close();
});

const via = (port: number) => `https://localhost:${port}/mcp`;

for (const target of ['SDK 1.x adapter server', 'gateway'] as const) {
  test(`nginx in front of the ${target}: alice gets her tools, bob his, a revoked certificate is refused on its next request`, async () => {
    const port = target === 'gateway' ? nginxGateway : nginx.port;
    const alice = await connect(via(port), fx.clients.alice);
    const bob = await connect(via(port), fx.clients.bob);
    const dave = await fx.pki.issue(['issue', 'client', '--user', target === 'gateway' ? 'dave' : 'erin', '--team', 'sre']);
    const daveFiles = { cert: dave.files.cert, key: dave.files.key as string, ca: dave.files.ca };
    const d = await connect(via(port), daveFiles);
    try {
      const names = async (c: typeof alice) => (await c.client.listTools()).tools.map((t) => t.name).sort();
      assert.ok((await names(alice)).includes('deploy'), nginx.output());
      const bobs = await names(bob);
      assert.ok(bobs.includes('deploy_staging') && !bobs.includes('deploy'), bobs.join());
      assert.ok((await names(d)).includes('deploy'));
      // dave is revoked: his next request (nginx keeps its upstream connection) is refused
      const crls = await revoke(fx.pki, dave.serial);
      (target === 'gateway' ? gw.server : fx.server).reloadCrls(crls);
      await assert.rejects(d.client.listTools(), /certificate_revoked|revoked/);
      assert.ok((await names(alice)).includes('deploy'), 'the proxy connection serves the others on');
    } finally {
      await alice.close();
      await bob.close();
      await d.close().catch(() => undefined);
    }
  });
}

test('through nginx: another CA refused by the server (unknown_ca); no certificate: certificate_required; a client-sent header is not taken for the certificate', async () => {
  const foreign = await rawPost(via(nginx.port), { ca: fs.readFileSync(root), cert: other.cert, key: other.key as string });
  assert.equal(foreign.status, 401, foreign.body);
  assert.equal(JSON.parse(foreign.body).error, 'unknown_ca');
  const none = await rawPost(via(nginx.port), { ca: fs.readFileSync(root) });
  assert.equal(none.status, 401, none.body);
  assert.equal(JSON.parse(none.body).error, 'certificate_required');
  // bob sends alice's certificate in the header nginx sets: nginx replaces it with bob's
  const spoof = await rawPost(via(nginx.port), { ca: fs.readFileSync(root), cert: fx.clients.bob.cert, key: fx.clients.bob.key, headers: { 'ssl-client-cert': nginxEscaped(fx.clients.alice.cert) } });
  assert.ok(!toolNames(spoof.body).includes('deploy') && toolNames(spoof.body).includes('deploy_staging'), spoof.body);
  // ... and in another format's header, which nginx passes through: refused, never read
  const other9440 = await rawPost(via(nginx.port), { ca: fs.readFileSync(root), cert: fx.clients.bob.cert, key: fx.clients.bob.key, headers: { 'client-cert': ':AAAA:' } });
  assert.equal(other9440.status, 400, other9440.body);
  assert.equal(JSON.parse(other9440.body).error, 'forwarded_header_unexpected');
});

test('the same header sent by a client connecting directly (not from a listed proxy): 400', async () => {
  for (const url of [fx.url, `https://localhost:${gw.address.port}/mcp`]) {
    const r = await rawPost(url, { ca: fs.readFileSync(root), cert: fx.clients.bob.cert, key: fx.clients.bob.key, headers: { 'ssl-client-cert': nginxEscaped(fx.clients.alice.cert) } });
    assert.equal(r.status, 400, r.body);
    assert.equal(JSON.parse(r.body).error, 'forwarded_header_untrusted');
  }
});

test('HAProxy ending mTLS, forwarding RFC 9440 Client-Cert (ssl_c_der, base64): alice her tools, bob his', async () => {
  const alice = await connect(via(haproxy.port), fx.clients.alice);
  const bob = await connect(via(haproxy.port), fx.clients.bob);
  try {
    assert.ok((await alice.client.listTools()).tools.some((t) => t.name === 'deploy'), haproxy.output());
    const bobs = (await bob.client.listTools()).tools.map((t) => t.name);
    assert.ok(bobs.includes('deploy_staging') && !bobs.includes('deploy'));
    const who = await alice.client.callTool({ name: 'whoami', arguments: {} });
    assert.match(JSON.stringify(who), /spiffe:\/\/acme\.test\/user\/alice/);
  } finally {
    await alice.close();
    await bob.close();
  }
  // HAProxy verifies the client against the CA itself (verify required): another CA never reaches the server
  await assert.rejects(rawPost(via(haproxy.port), { ca: fs.readFileSync(root), cert: other.cert, key: other.key as string }));
});
