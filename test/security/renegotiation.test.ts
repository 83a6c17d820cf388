/**
 * TLS 1.2 renegotiation must not swap the identity of a connection (issue 16, finding 1).
 *
 * The attacker is a small OpenSSL client, compiled here: it connects over TLS 1.2 with
 * certificate A (alice, issued by the project's CA), then swaps in certificate B from a CA of
 * its own (user/root-admin, role admin) and renegotiates, then sends one HTTP request. Node
 * accepts client-initiated renegotiation, and afterwards `getPeerX509Certificate()` returns B
 * while `authorized` still says true from A's handshake. Every TLS listener the project
 * creates or documents must refuse the renegotiation, and nothing may ever answer (or
 * forward) as B.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createCaServer } from '../../src/ca/serve/server.js';
import { Authority } from '../../src/ca/authority.js';
import { startGateway } from '../../src/gateway/run.js';
import { certFromXfcc, formatXfcc } from '../../src/mtls/xfcc.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { captureHandshakes } from '../../src/mtls/handshake-certificate.js';
import { createMtlsMiddleware, mtlsServerOptions } from '../../src/mtls/middleware.js';
import { tlsFromPki, type MtlsTlsMaterial } from '../../src/mtls/mtls-server.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { readCertificates } from '../../src/x509/pem.js';
import { isMtlsError } from '../../src/errors.js';
import { tmpDir } from '../support/cli.js';
import { bundleOf, startFixture, type McpFixture } from '../support/mcp.js';
import { makePki, type TestPki } from '../support/pki.js';

const CLIENT_C = String.raw`
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void fail(const char *what) {
  char buf[256];
  unsigned long e = ERR_get_error();
  ERR_error_string_n(e, buf, sizeof buf);
  printf("%s: failed: %s\n", what, e ? buf : "(no OpenSSL error)");
  fflush(stdout);
}

/* PORT CERT_A KEY_A CERT_B KEY_B METHOD PATH [BODY] */
int main(int argc, char **argv) {
  if (argc < 8) { fprintf(stderr, "usage: %s PORT CERT_A KEY_A CERT_B KEY_B METHOD PATH [BODY]\n", argv[0]); return 2; }
  const char *body = argc > 8 ? argv[8] : "";
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION); /* TLS 1.3 has no renegotiation */
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 || SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) { fail("load A"); return 3; }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[1]));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("connect"); return 4; }
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  if (SSL_connect(ssl) != 1) { fail("handshake"); return 5; }
  printf("handshake: ok %s\n", SSL_get_version(ssl));
  fflush(stdout);
  /* present certificate B from now on, and renegotiate before the first request */
  if (SSL_use_certificate_chain_file(ssl, argv[4]) != 1 || SSL_use_PrivateKey_file(ssl, argv[5], SSL_FILETYPE_PEM) != 1) { fail("load B"); return 6; }
  if (SSL_renegotiate(ssl) == 1 && SSL_do_handshake(ssl) == 1) printf("renegotiate: ok\n"); else fail("renegotiate");
  fflush(stdout);
  char req[16384];
  int n = snprintf(req, sizeof req,
    "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
    argv[6], argv[7], strlen(body), body);
  if (SSL_write(ssl, req, n) <= 0) { fail("request"); return 0; }
  printf("response:\n");
  char buf[4096];
  int r;
  while ((r = SSL_read(ssl, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)r, stdout);
  printf("\n");
  return 0;
}
`;

/** Compiles the attacker client; a machine without gcc or the OpenSSL headers fails the test, saying what to install. */
async function compileClient(dir: string): Promise<string> {
  const src = path.join(dir, 'renegotiate.c');
  const bin = path.join(dir, 'renegotiate');
  fs.writeFileSync(src, CLIENT_C);
  await new Promise<void>((resolve, reject) =>
    execFile('gcc', ['-O0', '-o', bin, src, '-lssl', '-lcrypto'], { timeout: 60_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`cannot compile the TLS renegotiation client (gcc -lssl -lcrypto): install gcc and libssl-dev (apt-get install gcc libssl-dev)\n${stderr || err.message}`)) : resolve(),
    ),
  );
  return bin;
}

interface Attack {
  out: string;
  renegotiated: boolean;
  status?: number;
  body: string;
}

let client: string;
let pki: TestPki;
let A: { cert: string; key: string; ca: string };
let B: { cert: string; key: string };
let material: MtlsTlsMaterial;
const ROOT_ADMIN = 'spiffe://acme.test/user/root-admin';

/** Runs the attacker client against 127.0.0.1:port: handshake as `a`, renegotiate as B, then `method path`. */
function attack(port: number, method: string, urlPath: string, body = '', a: { cert: string; key: string } = A): Promise<Attack> {
  return new Promise((resolve, reject) =>
    execFile(client, [String(port), a.cert, a.key, B.cert, B.key, method, urlPath, body], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err && (err as { killed?: boolean }).killed) return reject(new Error(`the renegotiation client timed out:\n${stdout}${stderr}`));
      if (!/^handshake: ok/m.test(stdout)) return reject(new Error(`the first handshake (certificate A) failed:\n${stdout}${stderr}`));
      const status = /^HTTP\/1\.1 (\d{3})/m.exec(stdout);
      resolve({ out: stdout, renegotiated: /^renegotiate: ok$/m.test(stdout), ...(status ? { status: Number(status[1]) } : {}), body: stdout.split('\r\n\r\n').slice(1).join('\r\n\r\n') });
    }),
  );
}

/** What every listener must do: refuse the renegotiation, and never answer as B. */
function assertRefused(r: Attack): void {
  assert.equal(r.renegotiated, false, `the server accepted a client-initiated renegotiation:\n${r.out}`);
  assert.match(r.out, /renegotiate: failed: .*no renegotiation/, r.out);
  assert.doesNotMatch(r.out, /root-admin/, `answered as B:\n${r.out}`);
}

const listen = (s: http.Server | https.Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
const close = (s: http.Server | https.Server) => {
  s.closeAllConnections();
  return new Promise((r) => s.close(r));
};

before(async () => {
  client = await compileClient(tmpDir('reneg-client-'));
  pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  material = tlsFromPki(pki.pki, srv.files.cert, srv.files.key!);
  const alice = await pki.issue(['issue', 'client', '--user', 'alice', '--team', 'dev']);
  A = { cert: alice.files.cert, key: alice.files.key!, ca: alice.files.ca };
  // B: same trust domain and a principal worth stealing, from a CA the attacker made itself
  const attacker = await makePki();
  const b = await attacker.issue(['issue', 'client', '--user', 'root-admin', '--role', 'admin']);
  B = { cert: b.files.cert, key: b.files.key! };
});

/** A request handler that answers who the middleware says is calling. */
function whoServer(options: https.ServerOptions, mtls = createMtlsMiddleware()) {
  return https.createServer(options, (req, res) =>
    mtls(req, res, () => {
      const auth = (req as typeof req & { auth: { clientId: string } }).auth;
      const body = JSON.stringify({ principal: auth.clientId });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    }),
  );
}

test('your own https server with mtlsServerOptions + createMtlsMiddleware: renegotiation refused, never root-admin', async () => {
  const server = whoServer(mtlsServerOptions(material));
  const port = await listen(server);
  try {
    assertRefused(await attack(port, 'GET', '/whoami'));
    // a client that does not renegotiate is alice, over TLS 1.2 as over TLS 1.3
    const agent = createMtlsAgent(bundleOf(A));
    try {
      const r = await createMtlsFetch(agent)(`https://localhost:${port}/whoami`);
      assert.deepEqual(await r.json(), { principal: 'spiffe://acme.test/user/alice' });
    } finally {
      await agent.close();
    }
  } finally {
    await close(server);
  }
});

test('the middleware on a server that allows renegotiation refuses TLS 1.2 with TLS_RENEGOTIATION_ALLOWED, unless the server captures handshakes', async () => {
  // an operator's own options that dropped the renegotiation bit (their own secureOptions)
  const loose = { ...mtlsServerOptions(material), secureOptions: crypto.constants.SSL_OP_NO_TICKET };
  const server = whoServer(loose);
  const port = await listen(server);
  try {
    const r = await attack(port, 'GET', '/whoami');
    assert.equal(r.renegotiated, true, 'this server lets the client renegotiate');
    assert.equal(r.status, 500, r.out);
    assert.equal(JSON.parse(r.body).error, 'TLS_RENEGOTIATION_ALLOWED');
    assert.match(JSON.parse(r.body).hint, /mtlsServerOptions/);
    assert.doesNotMatch(r.out, /root-admin/);
    // TLS 1.3 has no renegotiation: such a client is served as itself
    const agent = createMtlsAgent(bundleOf(A));
    try {
      const ok = await createMtlsFetch(agent)(`https://localhost:${port}/whoami`);
      assert.deepEqual(await ok.json(), { principal: 'spiffe://acme.test/user/alice' });
    } finally {
      await agent.close();
    }
  } finally {
    await close(server);
  }
  // the same server with captureHandshakes: the renegotiation goes through, the identity stays A's
  const captured = whoServer(loose);
  captureHandshakes(captured);
  const port2 = await listen(captured);
  try {
    const r = await attack(port2, 'GET', '/whoami');
    assert.equal(r.renegotiated, true);
    assert.equal(r.status, 200, r.out);
    assert.deepEqual(JSON.parse(r.body), { principal: 'spiffe://acme.test/user/alice' });
  } finally {
    await close(captured);
  }
});

let fixture: McpFixture;
after(async () => {
  await fixture?.close();
});

test('createMtlsServer with the SDK adapter: renegotiation refused, also after setCertificate', async () => {
  fixture = await startFixture();
  const port = Number(new URL(fixture.url).port);
  const whoami = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } });
  const a = fixture.clients.bob; // certificate A: any valid client of the fixture's CA
  assertRefused(await attack(port, 'POST', '/mcp', whoami, a));
  // a certificate reload builds a new secure context: it must keep renegotiation off
  fixture.server.setCertificate({ cert: fs.readFileSync(fixture.serverFiles.cert), key: fs.readFileSync(fixture.serverFiles.key) });
  assertRefused(await attack(port, 'POST', '/mcp', whoami, a));
});

test('the gateway (startGateway): renegotiation refused, and the upstream never gets B in x-forwarded-client-cert', async () => {
  const gwCert = await pki.issue(['issue', 'server', '--dns', 'localhost', '--out', path.join(pki.base, 'gw')]);
  // an upstream that reports the x-forwarded-client-cert it got, and whose certificate that is
  const upstream = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const xfcc = String(req.headers['x-forwarded-client-cert'] ?? '');
      const der = certFromXfcc(xfcc);
      const hash = /Hash=([0-9a-f]+)/.exec(xfcc)?.[1];
      const forwarded = der ? decodeIdentity(der).principal : null;
      const id = (JSON.parse(raw || '{}') as { id?: unknown }).id ?? null;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, result: { forwarded, hashMatches: der ? hash === crypto.createHash('sha256').update(der).digest('hex') : null } }));
    });
  });
  const upPort = await listen(upstream);
  const policy = path.join(pki.base, 'gw-policy.yaml');
  fs.writeFileSync(policy, 'version: 1\nrules:\n  - id: all\n    subjects: { any: true }\n    tools: ["*"]\n');
  const gw = await startGateway(
    {
      listen: '127.0.0.1:0',
      mode: 'default',
      tls: { cert: gwCert.files.cert, key: gwCert.files.key!, pki: pki.pki },
      routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${upPort}/mcp`, policy }],
      upstreamTimeout: '10s',
      maxBodyBytes: 1_000_000,
      shutdownGrace: '1s',
    },
    () => undefined,
  );
  try {
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' });
    const r = await attack(gw.address.port, 'POST', '/mcp', ping);
    assertRefused(r);
    // what a client that does not renegotiate gets forwarded: its own certificate, with its hash
    const agent = createMtlsAgent(bundleOf(A));
    try {
      const ok = await createMtlsFetch(agent)(`https://localhost:${gw.address.port}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: ping });
      assert.deepEqual(((await ok.json()) as { result: unknown }).result, { forwarded: 'spiffe://acme.test/user/alice', hashMatches: true });
    } finally {
      await agent.close();
    }
  } finally {
    await gw.stop();
    await close(upstream);
  }
});

test('ca serve: renegotiation refused, POST /renew never renews B', async () => {
  const caTls = await pki.issue(['issue', 'server', '--ip', '127.0.0.1', '--out', path.join(pki.base, 'ca-tls')]);
  const authority = Authority.open(pki.pki);
  const audit: Record<string, unknown>[] = [];
  const server = createCaServer({ authority, cert: fs.readFileSync(caTls.files.cert, 'utf8'), key: fs.readFileSync(caTls.files.key!, 'utf8'), audit: (e) => audit.push(e), log: () => undefined });
  const port = await listen(server);
  try {
    const r = await attack(port, 'POST', '/renew');
    assertRefused(r);
    assert.equal(audit.filter((e) => e.event === 'ca.renew' && e.status === 200).length, 0, JSON.stringify(audit));
  } finally {
    await server.shutdown(1000);
    await authority.store.close();
  }
});

test('formatXfcc never pairs an identity with another certificate', () => {
  const [a] = readCertificates(fs.readFileSync(A.cert));
  const [b] = readCertificates(fs.readFileSync(B.cert));
  const alice = decodeIdentity(a!);
  assert.match(formatXfcc(alice, a!), new RegExp(`^Hash=${alice.fingerprint};Cert="`));
  assert.throws(() => formatXfcc(alice, b!), (e) => isMtlsError(e, 'CERT_INVALID') && /is not the one spiffe:\/\/acme\.test\/user\/alice was authenticated with/.test(e.message));
});
