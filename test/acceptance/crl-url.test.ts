/**
 * Acceptance (#11): revoking a certificate reaches a running server through the CRL URL within
 * its interval and closes the revoked client's connections. End to end with real processes: a
 * CA whose certificates carry a cRLDistributionPoints URL, `mcp-mtls ca serve` serving that URL,
 * an mTLS MCP server that learns the URL from the certificates (crlFromCertificates) and fetches
 * it every second, and `mcp-mtls revoke` run by an operator.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import tls from 'node:tls';
import { after, test } from 'node:test';
import { policyFromText } from '../../src/policy/compile.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { BIN, cliOk, tmpDir } from '../support/cli.js';

const children: ChildProcess[] = [];
after(() => children.forEach((c) => c.kill('SIGKILL')));

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

/** one keep-alive HTTP/1.1 connection with a client certificate; resolves the status of each request */
function connection(port: number, files: { cert: string; key: string }, ca: string) {
  const socket = tls.connect({ host: '127.0.0.1', port, cert: fs.readFileSync(files.cert), key: fs.readFileSync(files.key), ca: fs.readFileSync(ca), servername: 'localhost' });
  let buffer = '';
  let waiting: ((status: number) => void) | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    buffer += d;
    const m = buffer.match(/^HTTP\/1\.1 (\d+)[\s\S]*?\r\n\r\n/);
    const length = Number(buffer.match(/content-length: (\d+)/i)?.[1] ?? 0);
    if (m && buffer.length >= m[0].length + length) {
      buffer = buffer.slice(m[0].length + length);
      waiting?.(Number(m[1]));
    }
  });
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
  socket.on('error', () => undefined);
  return {
    closed,
    get: () =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
        waiting = (status) => (clearTimeout(timer), resolve(status));
        socket.write('GET /whoami HTTP/1.1\r\nhost: localhost\r\nconnection: keep-alive\r\n\r\n');
      }),
  };
}

test('a revocation reaches a running server through the CRL URL in its certificates within the fetch interval, and closes the revoked client\'s connection', { timeout: 120_000 }, async () => {
  const base = tmpDir('acceptance-crl-');
  const pki = path.join(base, 'pki');
  const out = path.join(base, 'certs');
  const caPort = await freePort();
  const crlUrl = `https://127.0.0.1:${caPort}/crl/intermediate.crl`;
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test', '--crl-url', crlUrl]);
  const caTls = await cliOk<{ files: { cert: string; key: string } }>(['issue', 'server', '--dir', pki, '--ip', '127.0.0.1', '--out', path.join(base, 'ca-tls'), '--json']);
  const serverTls = await cliOk<{ files: { cert: string; key: string } }>(['issue', 'server', '--dir', pki, '--dns', 'localhost', '--out', out, '--json']);
  const alice = await cliOk<{ serial: string; files: { cert: string; key: string } }>(['issue', 'client', '--dir', pki, '--user', 'alice', '--out', out, '--json']);
  const bob = await cliOk<{ serial: string; files: { cert: string; key: string } }>(['issue', 'client', '--dir', pki, '--user', 'bob', '--out', out, '--json']);

  const ca = spawn(process.execPath, [BIN, 'ca', 'serve', '--dir', pki, '--listen', `127.0.0.1:${caPort}`, '--tls-cert', caTls.files.cert, '--tls-key', caTls.files.key], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  children.push(ca);
  await new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: ca.stdout! }).on('line', (l) => (JSON.parse(l).event === 'serve.start' ? resolve() : undefined));
    ca.on('exit', (code) => reject(new Error(`ca serve exited ${code}`)));
  });

  const logs: string[] = [];
  const handler = createMcpSdk1Handler({ serverInfo: { name: 'crl', version: '1.0.0' }, policy: policyFromText('version: 1\nrules: []\n'), build: () => undefined });
  const server = createMtlsServer(
    { ...tlsFromPki(pki, serverTls.files.cert, serverTls.files.key), crl: [], crlFromCertificates: true, crlFetch: { intervalMs: 1000 }, log: (l) => logs.push(l) },
    (req, res) => {
      if (req.url === '/whoami') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(req.auth!.extra.identity.principal) });
        res.end(req.auth!.extra.identity.principal);
      } else void handler(req, res);
    },
  );
  server.keepAliveTimeout = 120_000; // only the revocation may close the connections under test
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // the CRL URL of the server's own certificate (the CA's) is fetched before clients are let in:
  // until a CRL of their CA is there, clients of a CA that names a CRL URL are refused
  await server.refreshCrls();
  const port = (server.address() as AddressInfo).port;
  const root = path.join(pki, 'root.crt');

  const a = connection(port, alice.files, root);
  const b = connection(port, bob.files, root);
  assert.equal(await a.get(), 200);
  assert.equal(await b.get(), 200);
  await new Promise((r) => setTimeout(r, 1500)); // the server has learned the URL and fetched the first CRL

  await cliOk(['revoke', alice.serial, '--dir', pki, '--reason', 'keyCompromise']);
  const revokedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const closedAt = await Promise.race([a.closed, new Promise<number>((r) => (timer = setTimeout(() => r(0), 15_000)))]);
  clearTimeout(timer);
  assert.ok(closedAt > 0, `alice's connection was closed (logs: ${logs.join(' | ')})`);
  const delay = closedAt - revokedAt;
  process.stdout.write(`# revocation to closed connection: ${delay} ms (fetch interval 1 s, ca serve re-reads its store at most once a second)\n`);
  assert.ok(delay < 5_000, `within the interval plus the CA's own refresh (${delay} ms)`);

  assert.equal(await b.get(), 200, 'bob keeps his connection');
  const again = connection(port, alice.files, root);
  assert.equal(await again.get(), 401, 'a new connection of alice is refused');

  await handler.close();
  server.closeAllConnections();
  server.close();
  ca.kill('SIGTERM');
  fs.rmSync(base, { recursive: true, force: true });
});
