/**
 * The bridge and the library say why they cannot connect (issue 18): server down, a server
 * certificate for another host name, a server from another CA, a refused client certificate
 * and an ftp: URL each name the cause and the next step, and `mcp-mtls connect` exits
 * non-zero, instead of `fetch failed` and exit 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { loadBundle } from '../../src/bundle/load.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { isMtlsError } from '../../src/errors.js';
import { BIN, cli, cliOk, ROOT } from '../support/cli.js';
import { revoke, aliceProfile, startFixture, type McpFixture } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const INITIALIZE = `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'desktop-app', version: '1' } } })}\n`;

/** Runs `mcp-mtls connect ARGS` as a desktop app does: stdin stays open, one initialize request is written. */
function bridge(args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'connect', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    const timer = setTimeout(() => child.kill(), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.write(INITIALIZE); // and stdin is left open, as a desktop app leaves it
  });
}

/** A TLS server on 127.0.0.1 with this certificate: the handshake is all these tests reach. */
async function tlsServer(cert: string, key: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (_req, res) => res.end('{}'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

let f: McpFixture;
let aliceFile: string;
before(async () => {
  f = await startFixture();
  aliceFile = await aliceProfile(f);
});
after(async () => f.close());

test('server down: SERVER_UNREACHABLE naming ECONNREFUSED, from the library and the bridge (exit 69)', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const url = `https://127.0.0.1:${port}/mcp`;
  const client = new Client({ name: 'x', version: '1' });
  await assert.rejects(client.connect(createSdk1Transport(await loadBundle(aliceFile), url)), (e) => isMtlsError(e, 'SERVER_UNREACHABLE') && /ECONNREFUSED/.test(e.message) && e.details?.cause === 'ECONNREFUSED');
  const r = await bridge([url, '--bundle', aliceFile]);
  assert.equal(r.code, 69, r.stderr);
  assert.match(r.stderr, /cannot connect to https:\/\/127\.0\.0\.1:\d+: connection refused .*ECONNREFUSED/);
  assert.match(r.stderr, /hint: check that the server is running/);
  assert.doesNotMatch(r.stderr, /fetch failed/);
  assert.equal(r.stderr.match(/cannot connect/g)?.length, 1, 'logged once');
  assert.match(r.stdout, /"id":1.*"error".*ECONNREFUSED/, 'the app gets an answer to its request');
});

test('a host name that does not resolve: SERVER_UNREACHABLE, check the host name', async () => {
  const client = new Client({ name: 'x', version: '1' });
  await assert.rejects(
    client.connect(createSdk1Transport(await loadBundle(aliceFile), 'https://no-such-host.invalid/mcp')),
    (e) => isMtlsError(e, 'SERVER_UNREACHABLE') && /ENOTFOUND|EAI_AGAIN/.test(e.message) && /check the host name/.test(e.hint ?? ''),
  );
});

test('a server certificate for another host name: SERVER_CERT_INVALID naming ERR_TLS_CERT_ALTNAME_INVALID', async () => {
  const other = await f.pki.issue(['issue', 'server', '--dns', 'other.acme.test']);
  const srv = await tlsServer(other.files.cert, other.files.key!);
  try {
    const url = `https://127.0.0.1:${srv.port}/mcp`;
    const client = new Client({ name: 'x', version: '1' });
    await assert.rejects(client.connect(createSdk1Transport(await loadBundle(aliceFile), url)), (e) => isMtlsError(e, 'SERVER_CERT_INVALID') && /ERR_TLS_CERT_ALTNAME_INVALID/.test(e.message));
    const r = await bridge([url, '--bundle', aliceFile]);
    assert.equal(r.code, 69, r.stderr);
    assert.match(r.stderr, /not valid for this host name \(ERR_TLS_CERT_ALTNAME_INVALID/);
    assert.match(r.stderr, /hint: use the host name the server's certificate was issued for/);
  } finally {
    await srv.close();
  }
});

test('a server from another CA: SERVER_CERT_INVALID, the bundle trusts another CA', async () => {
  const strangers = await makePki();
  const theirs = await strangers.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  const srv = await tlsServer(theirs.files.cert, theirs.files.key!);
  try {
    const url = `https://localhost:${srv.port}/mcp`;
    const client = new Client({ name: 'x', version: '1' });
    await assert.rejects(client.connect(createSdk1Transport(await loadBundle(aliceFile), url)), (e) => isMtlsError(e, 'SERVER_CERT_INVALID'));
    const r = await bridge([url, '--bundle', aliceFile]);
    assert.equal(r.code, 69, r.stderr);
    assert.match(r.stderr, /cannot connect to https:\/\/localhost:\d+: the server certificate .*(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT)/);
    assert.match(r.stderr, /hint: this bundle trusts another CA/);
  } finally {
    await srv.close();
  }
});

test("a refused client certificate: the server's 401 reason, and exit 77", async () => {
  const dave = await f.pki.issue(['issue', 'client', '--user', 'dave']);
  const daveFile = path.join(f.pki.base, 'dave.yaml');
  await cliOk(['bundle', dave.files.cert, '--dir', f.pki.pki, '--format', 'profile', '--url', f.url, '--out', daveFile]);
  f.server.reloadCrls(await revoke(f.pki, dave.serial));
  const r = await bridge(['--bundle', daveFile]);
  assert.equal(r.code, 77, r.stderr);
  assert.match(r.stderr, /the server refused the client certificate: certificate_revoked/);
  assert.match(r.stderr, /hint: the operator revoked this certificate: ask them for a new one .*`mcp-mtls renew` cannot renew a revoked certificate/);
  assert.equal(r.stderr.match(/refused the client certificate/g)?.length, 1, 'logged once');
});

test('an ftp: URL is refused before anything starts', async () => {
  const r = await cli(['connect', 'ftp://localhost/mcp', '--bundle', aliceFile]);
  assert.equal(r.code, 64, r.stderr);
  assert.match(r.stderr, /error: the server URL must be https: \(ftp:\/\/localhost\/mcp\)/);
});
