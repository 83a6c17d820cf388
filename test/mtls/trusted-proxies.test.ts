/**
 * trustedProxies on createMtlsServer (and so the SDK adapters): forwarded client certificates are
 * read only from the listed proxies (matched on the connection's remote address, IPv4-mapped
 * or not, and on the proxy's own principal when given), verified like handshake certificates
 * (same 401 reasons, revocation on the next request of a kept-alive connection), and refused
 * 400 from anyone else. Proxies are stood in for by requests from other loopback addresses
 * (127.0.0.2...); the real nginx and HAProxy are in real-proxies.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { forwardedCertificateOf } from '../../src/mtls/trusted-proxies.js';
import crypto from 'node:crypto';
import { createMtlsMiddleware, mtlsServerOptions } from '../../src/mtls/middleware.js';
import { pemEncode } from '../../src/x509/pem.js';
import { revoke, startFixture, type McpFixture } from '../support/mcp.js';
import { makePki } from '../support/pki.js';
import { leafOfFile, nginxEscaped, rawPost, toolNames } from '../support/forwarded.js';

let fx: McpFixture;
let ca: Buffer;
let other: { cert: string; key?: string };
const CAROL = 'spiffe://acme.test/user/carol';

before(async () => {
  fx = await startFixture({
    host: '::', // dual-stack: IPv4 peers show as ::ffff:127.0.0.x
    trustedProxies: [
      { from: '127.0.0.2', format: 'nginx' },
      { from: ['127.0.0.3/32'], format: 'rfc9440' },
      { from: '127.0.0.4', format: 'xfcc', principal: CAROL },
      { from: '::1', format: 'traefik' },
    ],
  });
  ca = fs.readFileSync(path.join(fx.pki.pki, 'root.crt'));
  const foreign = await makePki(['--name', 'Other CA']);
  other = (await foreign.issue(['issue', 'client', '--user', 'alice', '--team', 'sre'])).files;
});
after(async () => fx.close());

const url = () => fx.url.replace('localhost', '127.0.0.1');
const lastRefusal = () => fx.audit.events.filter((e) => e.event === 'auth.refused').at(-1) as Record<string, unknown> | undefined;

test('from a listed proxy: the forwarded certificate is the caller (alice her tools, bob his)', async () => {
  const a = await rawPost(url(), { ca, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': nginxEscaped(fx.clients.alice.cert) } });
  assert.equal(a.status, 200, a.body);
  assert.ok(toolNames(a.body).includes('deploy'), a.body);
  const b = await rawPost(url(), { ca, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': nginxEscaped(fx.clients.bob.cert) } });
  assert.equal(b.status, 200, b.body);
  assert.ok(!toolNames(b.body).includes('deploy') && toolNames(b.body).includes('deploy_staging'), b.body);
  // RFC 9440 from its own proxy, Traefik's format over IPv6 loopback
  const r = await rawPost(url(), { ca, localAddress: '127.0.0.3', headers: { 'client-cert': `:${leafOfFile(fx.clients.alice.cert).toString('base64')}:` } });
  assert.ok(toolNames(r.body).includes('deploy'), r.body);
  const t = await rawPost(fx.url.replace('localhost', '[::1]'), { ca, localAddress: '::1', headers: { 'x-forwarded-tls-client-cert': leafOfFile(fx.clients.bob.cert).toString('base64') } });
  assert.ok(toolNames(t.body).includes('deploy_staging'), t.body);
});

test('the same header from a client that is not a listed proxy: 400, audited; without a header it is itself', async () => {
  const r = await rawPost(url(), { ca, localAddress: '127.0.0.1', cert: fx.clients.bob.cert, key: fx.clients.bob.key, headers: { 'ssl-client-cert': nginxEscaped(fx.clients.alice.cert) } });
  assert.equal(r.status, 400, r.body);
  assert.equal(JSON.parse(r.body).error, 'forwarded_header_untrusted');
  assert.match(JSON.parse(r.body).message, /ssl-client-cert.*does not come from a trusted proxy \(::ffff:127\.0\.0\.1\)/);
  assert.equal(lastRefusal()?.reason, 'forwarded_header_untrusted');
  assert.equal(lastRefusal()?.status, 400);
  // a proxy's address with another format's header: not from that proxy's format
  const x = await rawPost(url(), { ca, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': nginxEscaped(fx.clients.bob.cert), 'client-cert': `:${leafOfFile(fx.clients.alice.cert).toString('base64')}:` } });
  assert.equal(x.status, 400);
  assert.equal(JSON.parse(x.body).error, 'forwarded_header_unexpected');
  // bob directly, no header: bob, as before
  const d = await rawPost(url(), { ca, localAddress: '127.0.0.1', cert: fx.clients.bob.cert, key: fx.clients.bob.key });
  assert.ok(toolNames(d.body).includes('deploy_staging') && !toolNames(d.body).includes('deploy'), d.body);
});

test("a proxy entry with a principal: only that proxy's connection counts as it", async () => {
  const value = `Cert="${encodeURIComponent(pemEncode('CERTIFICATE', leafOfFile(fx.clients.alice.cert)))}"`;
  const ok = await rawPost(url(), { ca, localAddress: '127.0.0.4', cert: fx.clients.carol.cert, key: fx.clients.carol.key, headers: { 'x-forwarded-client-cert': value } });
  assert.ok(toolNames(ok.body).includes('deploy'), ok.body);
  const wrong = await rawPost(url(), { ca, localAddress: '127.0.0.4', cert: fx.clients.bob.cert, key: fx.clients.bob.key, headers: { 'x-forwarded-client-cert': value } });
  assert.equal(wrong.status, 400);
  const none = await rawPost(url(), { ca, localAddress: '127.0.0.4', headers: { 'x-forwarded-client-cert': value } });
  assert.equal(none.status, 400);
});

test('another CA, truncated, doubled, none: refused with the reason', async () => {
  const foreign = await rawPost(url(), { ca, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': nginxEscaped(other.cert) } });
  assert.equal(foreign.status, 401, foreign.body);
  assert.equal(JSON.parse(foreign.body).error, 'unknown_ca');
  assert.equal(lastRefusal()?.forwarded, 'nginx');
  // cut at 400 characters, but never inside a %XX escape (base64's + and / are escaped, and the
  // certificate is new each run): that would be bad URL-encoding, another refusal than a truncation
  const escaped = nginxEscaped(fx.clients.alice.cert);
  const pct = escaped.lastIndexOf('%', 399);
  const cut = await rawPost(url(), { ca, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': escaped.slice(0, pct > 397 ? pct : 400) } });
  assert.equal(cut.status, 400);
  assert.deepEqual(JSON.parse(cut.body), { error: 'forwarded_certificate_malformed', message: 'the forwarded client certificate is not usable: ssl-client-cert is truncated: a PEM block has no END line' });
  const twice = await rawPost(url(), { ca, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': [nginxEscaped(fx.clients.bob.cert), nginxEscaped(fx.clients.alice.cert)] } });
  assert.equal(twice.status, 400);
  assert.match(JSON.parse(twice.body).message, /ssl-client-cert was sent 2 times/);
  const both = await rawPost(url(), { ca, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': encodeURIComponent(pemEncode('CERTIFICATE', leafOfFile(fx.clients.bob.cert)) + pemEncode('CERTIFICATE', leafOfFile(fx.clients.alice.cert))) } });
  assert.match(JSON.parse(both.body).message, /2 certificates where one is meant/);
  const none = await rawPost(url(), { ca, localAddress: '127.0.0.2' });
  assert.equal(none.status, 401);
  assert.equal(JSON.parse(none.body).error, 'certificate_required');
});

test('revoked: refused on the next request of the same kept-alive proxy connection', async () => {
  const dave = await fx.pki.issue(['issue', 'client', '--user', 'dave', '--team', 'dev']);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const first = await rawPost(url(), { ca, agent, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': nginxEscaped(dave.files.cert) } });
  assert.equal(first.status, 200, first.body);
  fx.server.reloadCrls(await revoke(fx.pki, dave.serial));
  const next = await rawPost(url(), { ca, agent, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': nginxEscaped(dave.files.cert) } });
  assert.ok(next.reused, 'the proxy connection was kept open');
  assert.equal(next.status, 401, next.body);
  assert.equal(JSON.parse(next.body).error, 'certificate_revoked');
  // the proxy's connection stays: others go on through it
  const alice = await rawPost(url(), { ca, agent, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': nginxEscaped(fx.clients.alice.cert) } });
  assert.ok(alice.reused && alice.status === 200, alice.body);
  agent.destroy();
});

test('forwardedCertificateOf gives the forwarded DER on every request that repeats a value, and nothing for a direct caller', async () => {
  const material = tlsFromPki(fx.pki.pki, fx.serverFiles.cert, fx.serverFiles.key);
  const server = createMtlsServer({ ...material, log: () => undefined, trustedProxies: [{ from: '127.0.0.2', format: 'nginx' }] }, (req, res) => {
    const der = forwardedCertificateOf(req);
    res.end(der ? crypto.createHash('sha256').update(der).digest('hex') : 'none');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const u = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const alice = crypto.createHash('sha256').update(leafOfFile(fx.clients.alice.cert)).digest('hex');
  try {
    for (let i = 0; i < 2; i++) {
      // the second is answered from the kept value: the DER is known by its identity, not set per request
      const r = await rawPost(u, { ca, localAddress: '127.0.0.2', headers: { 'ssl-client-cert': nginxEscaped(fx.clients.alice.cert) } });
      assert.equal(r.body, alice);
    }
    const direct = await rawPost(u, { ca, cert: fx.clients.bob.cert, key: fx.clients.bob.key });
    assert.equal(direct.body, 'none');
  } finally {
    server.closeAllConnections();
    await new Promise((r2) => server.close(r2));
  }
});

test('without trustedProxies nothing changes: the header is not read, the connection is the caller', async () => {
  const material = tlsFromPki(fx.pki.pki, fx.serverFiles.cert, fx.serverFiles.key);
  const server = createMtlsServer({ ...material, log: () => undefined }, (req, res) => {
    res.end(req.auth?.clientId);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const u = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const r = await rawPost(u, { ca, localAddress: '127.0.0.2', cert: fx.clients.bob.cert, key: fx.clients.bob.key, headers: { 'ssl-client-cert': nginxEscaped(fx.clients.alice.cert) } });
  assert.equal(r.body, 'spiffe://acme.test/user/bob');
  server.closeAllConnections();
  await new Promise((r2) => server.close(r2));
});

test('the middleware takes trustedProxies too; strict mode needs each proxy to present a certificate; bad entries are refused', async () => {
  const material = tlsFromPki(fx.pki.pki, fx.serverFiles.cert, fx.serverFiles.key);
  const mw = createMtlsMiddleware({ tls: material, log: () => undefined, trustedProxies: [{ from: '127.0.0.0/8', format: 'alb' }] });
  const server = https.createServer(mtlsServerOptions(material), (req, res) => mw(req, res, () => res.end((req as { auth?: { clientId: string } }).auth?.clientId)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const u = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const r = await rawPost(u, { ca, headers: { 'x-amzn-mtls-clientcert-leaf': encodeURIComponent(pemEncode('CERTIFICATE', leafOfFile(fx.clients.carol.cert))) } });
  assert.equal(r.body, CAROL);
  server.closeAllConnections();
  await new Promise((r2) => server.close(r2));
  mw.close();
  // behind a proxy on plain HTTP: the forwarded certificate from the proxy; anyone else has no certificate at all
  const plainMw = createMtlsMiddleware({ tls: material, log: () => undefined, trustedProxies: [{ from: '127.0.0.2', format: 'nginx' }] });
  const plain = http.createServer((req, res) => plainMw(req, res, () => res.end((req as { auth?: { clientId: string } }).auth?.clientId)));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const get = (localAddress: string, headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: (plain.address() as AddressInfo).port, path: '/', localAddress, headers, agent: false }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      }).on('error', reject);
    });
  assert.equal((await get('127.0.0.2', { 'ssl-client-cert': nginxEscaped(fx.clients.bob.cert) })).body, 'spiffe://acme.test/user/bob');
  const direct = await get('127.0.0.1', {});
  assert.equal(direct.status, 401);
  assert.equal(JSON.parse(direct.body).error, 'certificate_required');
  assert.equal((await get('127.0.0.1', { 'ssl-client-cert': nginxEscaped(fx.clients.bob.cert) })).status, 400);
  plain.close();
  plainMw.close();
  assert.throws(() => createMtlsServer({ ...material, mode: 'strict', trustedProxies: [{ from: '10.0.0.0/8', format: 'nginx' }] }, () => undefined), /strict mode .* must present one/);
  assert.throws(() => createMtlsServer({ ...material, trustedProxies: [{ from: '10.0.0.1/8', format: 'nginx' }] }, () => undefined), /bits are set after the prefix/);
  assert.throws(() => createMtlsServer({ ...material, trustedProxies: [{ from: '10.0.0.0/8', format: 'haproxy' as 'nginx' }] }, () => undefined), /unknown format "haproxy"/);
  assert.throws(() => createMtlsServer({ ...material, trustedProxies: [{ from: '10.0.0.0/8', format: 'xfcc', header: 'x-cert' }] }, () => undefined), /header name is set for format xfcc/);
});
