/**
 * CRLs from URLs: a running server (and the gateway) fetches the CA's CRLs on an interval,
 * applies a revocation live (the revoked client's open connection is closed, new ones get 401),
 * answers 304s to ETags, keeps the last good CRL when a fetch fails, and refuses CRLs of
 * another CA and older cRLNumbers. Real TLS on 127.0.0.1, CRLs re-signed by the real CLI.
 * Plus a URL that answers with another CA's CRL: the CRL it served before is kept.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { before, test } from 'node:test';
import { revokeCertificate, writeCrls } from '../../src/ca/revocation.js';
import { GatewayConfigSchema } from '../../src/gateway/config.js';
import { createCrlFetcher } from '../../src/mtls/crl-fetch.js';
import { createMtlsServer, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { pemDecodeAll, pemEncode } from '../../src/x509/pem.js';
import { BIN, cliOk } from '../support/cli.js';
import { clientCreds, makeCa, serverCreds } from '../support/ca-serve.js';
import { makePki, type IssuedFiles, type TestPki } from '../support/pki.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 8_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Serves pki/crl/{root,intermediate}.crl (root as PEM, intermediate as DER) with ETags; `override` answers instead when set. */
function crlServer(pki: string, secure = false) {
  const stats = { requests: 0, conditional: 0, notModified: 0 };
  const state: { override?: (name: string, res: http.ServerResponse) => boolean } = {};
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    stats.requests++;
    const name = path.basename(req.url ?? '');
    if (state.override?.(name, res)) return;
    const file = path.join(pki, 'crl', name);
    if (!/^(root|intermediate)\.crl$/.test(name) || !fs.existsSync(file)) return void res.writeHead(404).end();
    const pem = fs.readFileSync(file);
    const body = name === 'root.crl' ? pem : pemDecodeAll(pem.toString('utf8'))[0]!.der;
    const etag = `"${crypto.createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
    if (req.headers['if-none-match']) stats.conditional++;
    if (req.headers['if-none-match'] === etag) {
      stats.notModified++;
      return void res.writeHead(304, { etag }).end();
    }
    res.writeHead(200, { 'content-type': 'application/pkix-crl', etag, 'cache-control': 'max-age=60' }).end(body);
  };
  // https: no certificate yet (the CA that issues it must first know the port), setSecureContext later
  const server = secure ? https.createServer({}, handler) : http.createServer(handler);
  return { server, stats, state };
}

const listen = async (s: http.Server | https.Server) => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
};

/** A client with one keep-alive connection: `get` reuses it, `socket` is that connection. */
function keepAliveClient(port: number, files: IssuedFiles['files'], ca: string) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, cert: fs.readFileSync(files.cert), key: fs.readFileSync(files.key!), ca: fs.readFileSync(ca), servername: 'localhost' });
  let socket: import('node:tls').TLSSocket | undefined;
  const get = (p = '/') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: p, agent, servername: 'localhost' }, (res) => {
        socket = res.socket as import('node:tls').TLSSocket;
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  return { get, socket: () => socket, close: () => agent.destroy() };
}

const revoke = (t: TestPki, who: IssuedFiles) => cliOk(['revoke', who.files.cert, '--dir', t.pki, '--reason', 'keyCompromise', '--json']);
const hello = (req: { auth?: { clientId: string } }, res: http.ServerResponse) => void res.end(`hello ${req.auth?.clientId}`);

let t: TestPki;
let other: TestPki;
let serverFiles: IssuedFiles;
before(async () => {
  [t, other] = await Promise.all([makePki(), makePki()]);
  serverFiles = await t.issue(['issue', 'server', '--dns', 'localhost']);
});

test('crlUrls: a revocation reaches a running server within its interval; 304s; failures, foreign and older CRLs keep the last good one', async () => {
  const [alice, bob] = await Promise.all([t.issue(['issue', 'client', '--user', 'alice']), t.issue(['issue', 'client', '--user', 'bob'])]);
  const crls = crlServer(t.pki);
  const crlPort = await listen(crls.server);
  const base = `http://127.0.0.1:${crlPort}/crl`;
  const oldIntermediate = pemDecodeAll(fs.readFileSync(path.join(t.pki, 'crl', 'intermediate.crl'), 'utf8'))[0]!.der;
  const logs: string[] = [];
  const audit: Record<string, unknown>[] = [];
  const server: MtlsServer = createMtlsServer(
    { cert: fs.readFileSync(serverFiles.files.cert), key: fs.readFileSync(serverFiles.files.key!), ca: fs.readFileSync(path.join(t.pki, 'root.crt')), crlUrls: [`${base}/root.crl`, `${base}/intermediate.crl`], crlFetch: { intervalMs: 1000 }, log: (m) => logs.push(m), audit: { write: (e) => void audit.push(e as Record<string, unknown>), includeArgs: false } },
    hello,
  );
  const port = await listen(server);
  const a = keepAliveClient(port, alice.files, path.join(t.pki, 'root.crt'));
  const b = keepAliveClient(port, bob.files, path.join(t.pki, 'root.crt'));
  try {
    await server.refreshCrls();
    assert.deepEqual(server.crlSources().map((s) => [s.status, s.crls[0]?.number]), [['ok', '1'], ['ok', '1']]);
    assert.equal(server.revocation().crls.length, 2);
    assert.equal((await a.get()).status, 200);
    assert.equal((await b.get()).status, 200);
    const bobSocket = b.socket()!;
    const aliceSocket = a.socket()!;
    const closed = new Promise<number>((r) => bobSocket.once('close', () => r(Date.now())));

    await revoke(t, bob); // writes intermediate.crl #2
    const revokedAt = Date.now();
    const ms = (await closed) - revokedAt;
    assert.ok(ms < 2500, `bob's connection closed ${ms} ms after the CRL was published (interval 1 s)`);
    process.stdout.write(`# revocation to closed connection: ${ms} ms (interval 1000 ms)\n`);
    const again = await b.get();
    assert.equal(again.status, 401);
    assert.match(again.body, /certificate_revoked/);
    assert.equal((await a.get()).status, 200);
    assert.equal(a.socket(), aliceSocket, 'alice keeps her connection');
    assert.ok(audit.some((e) => e.event === 'reload' && e.source === `${base}/intermediate.crl` && e.closedConnections === 1));
    assert.ok(logs.some((l) => /CRL from http:.*intermediate\.crl applied: #2/.test(l)), logs.join('\n'));

    // unchanged CRLs: conditional requests answered 304
    await until('304s for both URLs', () => server.crlSources().every((s) => s.fetches.notModified > 0 && s.status === 'ok'));
    assert.ok(crls.stats.notModified >= 2 && crls.stats.conditional >= crls.stats.notModified);

    // failures keep the last good CRL: an HTTP error, a CRL of another CA, an older cRLNumber
    const otherCrl = pemDecodeAll(fs.readFileSync(path.join(other.pki, 'crl', 'intermediate.crl'), 'utf8'))[0]!.der;
    const failures: [string, (res: http.ServerResponse) => void, RegExp][] = [
      ['HTTP 503', (res) => res.writeHead(503).end(), /HTTP 503/],
      ['another CA', (res) => res.writeHead(200).end(otherCrl), /not signed by any trusted CA/],
      ['older number', (res) => res.writeHead(200).end(oldIntermediate), /CRL #1 of .* is older than the #2 applied/],
      ['garbage', (res) => res.writeHead(200).end('not a crl'), /malformed/],
    ];
    for (const [what, answer, reason] of failures) {
      const before = logs.length;
      crls.state.override = (name, res) => (name === 'intermediate.crl' ? (answer(res), true) : false);
      await until(`a failed fetch (${what})`, () => logs.slice(before).some((l) => reason.test(l)));
      const line = logs.slice(before).find((l) => reason.test(l))!;
      assert.match(line, new RegExp(`CRL fetch from ${base}/intermediate\\.crl failed: .*; keeping #2 of`));
      const src = server.crlSources().find((s) => s.url.endsWith('intermediate.crl'))!;
      assert.equal(src.status, 'error');
      assert.equal(src.crls[0]?.number, '2');
      assert.equal((await b.get()).status, 401, `${what}: bob stays revoked`);
      assert.equal((await a.get()).status, 200, `${what}: alice keeps working`);
    }
    crls.state.override = undefined;
    await until('recovery', () => server.crlSources().every((s) => s.status === 'ok'));
  } finally {
    a.close();
    b.close();
    server.close();
    crls.server.close();
  }
});

test('crlFromCertificates: the URL in a client certificate is learned at its first connection and fetched over https (the CA issued that server); until then its clients are refused', async () => {
  // the CRL server needs a port before the CA can name it, and a certificate the CA issues after
  const crls = crlServer('', true);
  const httpsServer = crls.server as https.Server;
  const crlPort = await listen(httpsServer);
  const url = `https://127.0.0.1:${crlPort}/crl/intermediate.crl`;
  const ca = await makePki(['--crl-url', url]);
  const [crlCert, carol] = [await ca.issue(['issue', 'server', '--ip', '127.0.0.1']), await ca.issue(['issue', 'client', '--user', 'carol'])];
  httpsServer.setSecureContext({ cert: fs.readFileSync(crlCert.files.cert), key: fs.readFileSync(crlCert.files.key!) });
  crls.state.override = (name, res) => {
    if (name !== 'intermediate.crl') return false;
    res.writeHead(200).end(fs.readFileSync(path.join(ca.pki, 'crl', 'intermediate.crl')));
    return true;
  };
  const logs: string[] = [];
  // this server's own certificate comes from another CA (no distribution point): only carol's names the URL
  const server = createMtlsServer(
    {
      cert: fs.readFileSync(serverFiles.files.cert),
      key: fs.readFileSync(serverFiles.files.key!),
      ca: [fs.readFileSync(path.join(ca.pki, 'root.crt')), fs.readFileSync(path.join(ca.pki, 'intermediate.crt'))],
      crlFromCertificates: true,
      crlFetch: { intervalMs: 1000 },
      log: (m) => logs.push(m),
    },
    hello,
  );
  const port = await listen(server);
  const c = keepAliveClient(port, carol.files, path.join(t.pki, 'root.crt'));
  try {
    assert.deepEqual(server.crlSources(), []);
    // fail closed: carol's CA names a CRL URL nothing was fetched from yet
    const first = await c.get();
    assert.equal(first.status, 401);
    assert.match(first.body, /"error":"revocation_unknown".*no CRL of its CA has been fetched yet from https:\/\/127\.0\.0\.1/);
    await until('the learned URL fetched', () => server.crlSources()[0]?.status === 'ok');
    assert.equal((await c.get()).status, 200, 'the same connection is served once the CRL is there');
    assert.deepEqual(server.crlSources().map((s) => [s.url, s.origin, s.crls[0]?.number]), [[url, 'certificate', '1']]);
    const closed = new Promise<void>((r) => c.socket()!.once('close', () => r()));
    await revoke(ca, carol);
    await closed;
    assert.equal((await c.get()).status, 401);
    assert.equal(server.crlSources().length, 1, 'learned once per issuing CA');
  } finally {
    c.close();
    server.close();
    httpsServer.close();
  }
});

test('mcp-mtls gateway --crl-url: fetched on --crl-refresh, closes the revoked client, reports in /healthz and /metrics', async () => {
  const dave = await t.issue(['issue', 'client', '--user', 'dave']);
  const crls = crlServer(t.pki);
  const crlPort = await listen(crls.server);
  const base = `http://127.0.0.1:${crlPort}/crl`;
  const policy = path.join(t.base, 'gw-policy.yaml');
  fs.writeFileSync(policy, 'version: 1\nrules: []\n');
  const probe = http.createServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  const child = spawn(process.execPath, [BIN, 'gateway', '--listen', `127.0.0.1:${port}`, '--upstream', 'http://127.0.0.1:9/mcp', '--policy', policy, '--cert', serverFiles.files.cert, '--key', serverFiles.files.key!, '--ca', path.join(t.pki, 'root.crt'), '--crl-url', `${base}/root.crl`, '--crl-url', `${base}/intermediate.crl`, '--crl-refresh', '1s'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.once('exit', r));
  const d = keepAliveClient(port, dave.files, path.join(t.pki, 'root.crt'));
  try {
    await until('the gateway', () => /listening on/.test(stderr));
    await until('both CRLs fetched', async () => {
      const h = JSON.parse((await d.get('/healthz')).body);
      return h.crlSources?.length === 2 && h.crlSources.every((s: { status: string }) => s.status === 'ok');
    });
    const metrics = (await d.get('/metrics')).body;
    assert.match(metrics, /mcp_mtls_crl_fetch_up\{url="http:\/\/127\.0\.0\.1:\d+\/crl\/intermediate\.crl"\} 1/);
    assert.match(metrics, /mcp_mtls_crl_number\{issuer="[^"]+",source="http[^"]+"\} \d+/);
    assert.notEqual((await d.get('/mcp')).status, 401); // authenticated (the upstream is down: 502)
    const closed = new Promise<void>((r) => d.socket()!.once('close', () => r()));
    const r = await revoke(t, dave);
    assert.ok(r);
    await closed;
    const after = await d.get('/mcp');
    assert.equal(after.status, 401);
    assert.match(stderr, /CRL from http:.*intermediate\.crl applied/);
  } finally {
    d.close();
    child.kill('SIGTERM');
    await exited;
    crls.server.close();
  }
});

test('the fetcher refuses oversized bodies, slow servers and redirects, and bad URLs and intervals up front', async () => {
  const srv = http.createServer((req, res) => {
    if (req.url === '/big') return void res.writeHead(200, { 'content-length': 4096 }).end(Buffer.alloc(4096));
    if (req.url === '/chunked') {
      res.writeHead(200);
      for (let i = 0; i < 8; i++) res.write(Buffer.alloc(512));
      return void res.end();
    }
    if (req.url === '/moved') return void res.writeHead(302, { location: 'http://169.254.169.254/' }).end();
    // /slow: never answers
  });
  const port = await listen(srv);
  const logs: string[] = [];
  let verified = 0;
  const fetcher = createCrlFetcher({
    urls: ['big', 'chunked', 'moved', 'slow'].map((p) => `http://127.0.0.1:${port}/${p}`),
    verifier: { verify: () => (verified++, []) },
    applied: () => [],
    onUpdate: () => assert.fail('nothing to apply'),
    log: (m) => logs.push(m),
    maxBytes: 1000,
    timeoutMs: 300,
  });
  try {
    await fetcher.refresh();
    const errors = Object.fromEntries(fetcher.status().map((s) => [new URL(s.url).pathname, s.error]));
    assert.match(errors['/big']!, /4096 bytes, more than the 1000 allowed/);
    assert.match(errors['/chunked']!, /larger than the 1000 bytes allowed/);
    assert.match(errors['/moved']!, /HTTP 302 \(redirects are not followed/);
    assert.match(errors['/slow']!, /no answer within 300 ms/);
    assert.equal(verified, 0);
    assert.ok(fetcher.status().every((s) => s.status === 'error' && s.failures === 1 && s.nextFetch));
  } finally {
    fetcher.stop();
    srv.closeAllConnections();
    srv.close();
  }
  assert.throws(() => createCrlFetcher({ urls: ['https://user:secret@ca.test/crl'], verifier: { verify: () => [] }, applied: () => [], onUpdate: () => undefined, log: () => undefined }), (e: Error) => /without credentials/.test(e.message) && !/secret/.test(e.message));
  assert.throws(() => createCrlFetcher({ urls: ['ftp://x/crl'], verifier: { verify: () => [] }, applied: () => [], onUpdate: () => undefined, log: () => undefined }), /not an http\(s\) URL/);
  assert.throws(() => createCrlFetcher({ urls: [], intervalMs: 10, verifier: { verify: () => [] }, applied: () => [], onUpdate: () => undefined, log: () => undefined }), /at least 1000 ms/);
  assert.equal(GatewayConfigSchema.safeParse({ listen: '127.0.0.1:1', tls: { cert: 'c', key: 'k', pki: 'p', crlUrls: ['file:///etc/passwd'] }, routes: [{ path: '/mcp', upstream: 'http://127.0.0.1:1/mcp', policy: 'p.yaml' }] }).success, false);
});

test('the fetcher honours a shorter Cache-Control max-age, and warns on a failed fetch when the kept CRL is about to expire', async () => {
  let up = true;
  const srv = http.createServer((_req, res) => (up ? res.writeHead(200, { 'cache-control': 'public, max-age=60' }).end('crl') : res.writeHead(503).end()));
  const port = await listen(srv);
  const logs: string[] = [];
  const now = Date.now();
  const crl = { der: Buffer.from('crl'), caKey: 'ca', issuerNameHex: 'ab', issuer: 'CN=Test CA', number: 7n, thisUpdate: new Date(now - 60_000), nextUpdate: new Date(now + 3_600_000), serials: new Set<string>() };
  const applied: (typeof crl)[] = [];
  const fetcher = createCrlFetcher({ urls: [`http://127.0.0.1:${port}/crl`], verifier: { verify: () => [crl] }, applied: () => applied, onUpdate: (_u, c) => void applied.push(...(c as (typeof crl)[])), log: (m) => logs.push(m) });
  try {
    await fetcher.refresh();
    const [s] = fetcher.status();
    assert.equal(s!.status, 'ok');
    assert.equal(applied.length, 1);
    const wait = s!.nextFetch!.getTime() - Date.now();
    assert.ok(wait > 55_000 && wait <= 60_000, `max-age=60 with a 5 min interval: next fetch in ${wait} ms`);
    up = false;
    await fetcher.refresh();
    assert.match(logs.join('\n'), /failed: HTTP 503; keeping #7 of CN=Test CA/);
    assert.match(logs.join('\n'), /the kept CRL #7 of CN=Test CA from http:\S+ expires at \S+, in 60 minutes, and fetching a fresh one fails/);
    const retry = fetcher.status()[0]!.nextFetch!.getTime() - Date.now();
    assert.ok(retry > 4_000 && retry <= 5_000, `first retry after 5 s (${retry} ms)`);
  } finally {
    fetcher.stop();
    srv.close();
  }
});

test('a CRL URL that answers with another CA\'s CRL (a root CRL at the intermediate\'s URL) does not drop the CRL it served before', async () => {
  const t = makeCa();
  await writeCrls(t.ca);
  const victim = await clientCreds(t.ca, { id: 'mallory' });
  await revokeCertificate(t.ca, victim.serial, 'keyCompromise');
  let rootCrl = (await t.ca.store.readCrl('root'))!;
  const interCrl = (await t.ca.store.readCrl('intermediate'))!;
  let wrongAnswer = false;
  const web = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/pkix-crl' });
    res.end(req.url === '/root.crl' || wrongAnswer ? rootCrl : interCrl);
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  const tls = await serverCreds(t.ca);
  const srv = createMtlsServer({ cert: tls.cert, key: tls.key, ca: [t.rootPem, pemEncode('CERTIFICATE', t.ca.intermediateDer)], crlUrls: [`${base}/intermediate.crl`, `${base}/root.crl`], log: () => undefined }, () => undefined);
  const revoked = () => [...srv.revocation().byCa.values()].some((s) => s.has(victim.serial));
  try {
    await srv.refreshCrls();
    assert.ok(revoked(), 'revoked after the first fetch');
    wrongAnswer = true; // someone in the path of the plain-http URL answers with the (valid) root CRL
    await srv.refreshCrls();
    await writeCrls(t.ca); // then a legitimate update of the root CRL makes the server rebuild
    rootCrl = (await t.ca.store.readCrl('root'))!;
    await srv.refreshCrls();
    assert.ok(revoked(), 'still revoked: the intermediate CRL of that source was kept');
  } finally {
    srv.close();
    web.close();
  }
});
