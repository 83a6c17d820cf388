/**
 * Issue 16, findings 8 and 9: a client certificate never travels (or is claimed to travel)
 * over cleartext, and the desktop entry written by `client-config` runs exactly the installed
 * mcp-mtls, by absolute paths, never a package name resolved by npx.
 *
 * - `connect http://...` (argument or bundle profile url) is refused before any byte is sent;
 *   `--allow-insecure-loopback-http` allows loopback only, with a warning that does not claim
 *   the certificate's principal; the library refuses http in the transports and in
 *   createMtlsFetch, including an https server redirecting to http.
 * - `client-config` writes `process.execPath` and the real path of this bin, no npx; the
 *   written command, run as an app would run it, completes an MCP initialize through the bridge.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { loadBundle } from '../../src/bundle/load.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { createSdk2Transport } from '../../src/client/transport-sdk2.js';
import { isMtlsError } from '../../src/errors.js';
import { BIN, cli, cliOk, ROOT, run } from '../support/cli.js';
import { assertRelaysAsAlice } from '../support/desktop-app.js';
import { bundleOf, startFixture, type McpFixture } from '../support/mcp.js';

let f: McpFixture;
let alice: string;
let plain: http.Server;
let plainUrl: string;
let plainHits = 0;

before(async () => {
  f = await startFixture();
  alice = path.join(f.pki.base, 'alice.yaml');
  await cliOk(['bundle', f.clients.alice.cert, '--dir', f.pki.pki, '--format', 'profile', '--url', f.url, '--out', alice]);
  // a real MCP server over plain http on loopback: what a developer might run locally
  plain = http.createServer(async (req, res) => {
    plainHits++;
    const server = new McpServer({ name: 'plain', version: '1.0.0' });
    server.registerTool('ping', { description: 'ping' }, async () => ({ content: [{ type: 'text', text: 'pong' }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => void transport.close());
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/mcp`;
});
after(async () => {
  plain.closeAllConnections();
  await new Promise((r) => plain.close(r));
  await f.close();
});

test('connect refuses an http: URL (argument or bundle profile) before sending anything', async () => {
  plainHits = 0;
  const byArg = await cli(['connect', plainUrl, '--bundle', alice]);
  assert.equal(byArg.code, 64, byArg.stderr);
  assert.match(byArg.stderr, /refusing cleartext http: to http:\/\/127\.0\.0\.1:\d+\/mcp: no TLS, so no client certificate/);
  assert.match(byArg.stderr, /hint: .*--allow-insecure-loopback-http/);
  assert.doesNotMatch(byArg.stderr, /relaying/);
  // a bundle profile whose url is http
  const httpProfile = path.join(f.pki.base, 'alice-http.yaml');
  fs.writeFileSync(httpProfile, fs.readFileSync(alice, 'utf8').replace(/^url: .*$/m, `url: ${plainUrl}`));
  assert.match(fs.readFileSync(httpProfile, 'utf8'), /^url: http:/m);
  const byProfile = await cli(['connect', '--bundle', httpProfile]);
  assert.equal(byProfile.code, 64, byProfile.stderr);
  assert.match(byProfile.stderr, /refusing cleartext http:/);
  // the flag is for loopback only
  const remote = await cli(['connect', 'http://mcp.acme.test/mcp', '--bundle', alice, '--allow-insecure-loopback-http']);
  assert.equal(remote.code, 64, remote.stderr);
  assert.match(remote.stderr, /refusing cleartext http: to http:\/\/mcp\.acme\.test\/mcp/);
  // nor does `bundle` write a profile for cleartext to another machine (loopback: for development)
  const remoteProfile = await cli(['bundle', f.clients.alice.cert, '--dir', f.pki.pki, '--format', 'profile', '--url', 'http://mcp.acme.test/mcp', '--out', path.join(f.pki.base, 'remote-http.yaml')]);
  assert.equal(remoteProfile.code, 64, remoteProfile.stderr);
  assert.match(remoteProfile.stderr, /refusing cleartext http: to http:\/\/mcp\.acme\.test\/mcp/);
  assert.equal(fs.existsSync(path.join(f.pki.base, 'remote-http.yaml')), false);
  await cliOk(['bundle', f.clients.alice.cert, '--dir', f.pki.pki, '--format', 'profile', '--url', plainUrl, '--out', path.join(f.pki.base, 'loopback-http.yaml')]);
  // neither is client-config willing to write one
  const cfg = await cli(['client-config', '--client', 'cursor', '--name', 'x', '--bundle', alice, '--url', plainUrl, '--json'], { env: { HOME: f.pki.base } });
  assert.equal(cfg.code, 64, cfg.stderr);
  assert.match(cfg.stderr, /refusing cleartext http:/);
  assert.equal(plainHits, 0, 'no request reached the http server');
});

test('--allow-insecure-loopback-http relays to a loopback http server, with a warning that claims no identity', async () => {
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'connect', plainUrl, '--bundle', alice, '--allow-insecure-loopback-http'], stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'dev', version: '1.0.0' });
  try {
    await client.connect(transport);
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['ping']);
  } finally {
    await client.close();
  }
  assert.match(stderr, /warning: relaying stdio to http:\/\/127\.0\.0\.1:\d+\/mcp in cleartext: no TLS, no client certificate/);
  assert.doesNotMatch(stderr, /as spiffe:/);
});

test('the library refuses http: in both transports and in createMtlsFetch, also when an https server redirects there', async () => {
  const bundle = await loadBundle(alice);
  assert.throws(() => createSdk1Transport(bundle, plainUrl), (e) => isMtlsError(e, 'INSECURE_URL') && /--allow-insecure-loopback-http|allowInsecureLoopbackHttp/.test(e.hint ?? ''));
  assert.throws(() => createSdk1Transport({ ...bundle, url: 'http://mcp.acme.test/mcp' }), (e) => isMtlsError(e, 'INSECURE_URL'));
  await assert.rejects(createSdk2Transport(bundle, plainUrl), (e) => isMtlsError(e, 'INSECURE_URL'));
  assert.throws(() => createSdk1Transport(bundle, 'ftp://mcp.acme.test/mcp'), (e) => isMtlsError(e, 'BAD_ARGUMENT'));
  assert.throws(() => createSdk1Transport(bundle, 'http://10.0.0.1/mcp', { allowInsecureLoopbackHttp: true }), (e) => isMtlsError(e, 'INSECURE_URL'));
  assert.ok(createSdk1Transport(bundle, 'http://127.0.0.2:1/mcp', { allowInsecureLoopbackHttp: true }));
  assert.ok(createSdk1Transport(bundle, 'http://[::1]:1/mcp', { allowInsecureLoopbackHttp: true }));

  const agent = createMtlsAgent(bundleOf(f.clients.alice));
  const mtlsFetch = createMtlsFetch(agent);
  plainHits = 0;
  await assert.rejects(mtlsFetch(plainUrl, { method: 'POST', body: '{}' }), (e) => isMtlsError(e, 'INSECURE_URL'));
  // an https server (trusted by the bundle) that redirects the request, body and all, to http
  const redirector = https.createServer({ cert: fs.readFileSync(f.serverFiles.cert), key: fs.readFileSync(f.serverFiles.key) }, (_req, res) => {
    res.writeHead(307, { location: plainUrl });
    res.end();
  });
  await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
  try {
    const url = `https://localhost:${(redirector.address() as AddressInfo).port}/mcp`;
    await assert.rejects(mtlsFetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"secret":1}' }), (e) => isMtlsError(e, 'INSECURE_URL'));
    assert.equal(plainHits, 0, 'the redirect was not followed to cleartext');
  } finally {
    redirector.closeAllConnections();
    await new Promise((r) => redirector.close(r));
    await agent.close();
  }
});

test('client-config writes absolute paths of this node and this installed bin (no npx), and the written command runs the bridge', async () => {
  const home = path.join(f.pki.base, 'home-pinned');
  fs.mkdirSync(home);
  const out = await cliOk<{ file: string; mcpServers: Record<string, { command: string; args: string[] }>; runs: { node: string; bin: string; sdk: { version: string; dir: string } } }>(
    ['client-config', '--client', 'claude-desktop', '--name', 'acme', '--bundle', alice, '--write', '--json'],
    { env: { HOME: home } },
  );
  const written = JSON.parse(fs.readFileSync(out.file, 'utf8')) as { mcpServers: Record<string, { command: string; args: string[] }> };
  const entry = written.mcpServers.acme!;
  assert.doesNotMatch(JSON.stringify(written), /npx/);
  assert.ok(path.isAbsolute(entry.command) && fs.existsSync(entry.command), entry.command);
  assert.equal(entry.command, process.execPath);
  const bin = entry.args[0]!;
  assert.ok(path.isAbsolute(bin) && fs.existsSync(bin), bin);
  assert.equal(bin, fs.realpathSync(path.join(ROOT, 'bin', 'mcp-mtls.js')));
  assert.equal(fs.realpathSync(bin), bin, 'a real path, not a symlink that could be repointed');
  assert.deepEqual(entry.args.slice(1), ['connect', f.url, '--bundle', alice]);
  // the SDK the bridge will load comes from this install
  assert.match(out.runs.sdk.version, /^1\./);
  assert.ok(out.runs.sdk.dir.startsWith(fs.realpathSync(ROOT)), out.runs.sdk.dir);

  // run it as the app would: that command and those args, in another folder, with a bare PATH
  await assertRelaysAsAlice(entry, home, { PATH: '/nonexistent', HOME: home });
});

test('client-config fails with a hint when this install cannot load @modelcontextprotocol/sdk', async () => {
  // a copy of the installed package whose node_modules has everything but the SDK
  const base = path.join(f.pki.base, 'no-sdk');
  const pkg = path.join(base, 'node_modules', 'mcp-mtls');
  fs.mkdirSync(pkg, { recursive: true });
  for (const entry of ['bin', 'dist', 'package.json']) fs.cpSync(path.join(ROOT, entry), path.join(pkg, entry), { recursive: true });
  const modules = path.join(base, 'node_modules');
  for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name === 'mcp-mtls' || name.startsWith('.')) continue;
    if (name === '@modelcontextprotocol') {
      fs.mkdirSync(path.join(modules, name));
      for (const scoped of fs.readdirSync(path.join(ROOT, 'node_modules', name))) {
        if (scoped !== 'sdk') fs.symlinkSync(path.join(ROOT, 'node_modules', name, scoped), path.join(modules, name, scoped));
      }
    } else fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
  }
  const r = await run(process.execPath, [path.join(pkg, 'bin', 'mcp-mtls.js'), 'client-config', '--client', 'cursor', '--name', 'acme', '--bundle', alice], { env: { HOME: base }, cwd: base });
  assert.equal(r.code, 78, r.stderr + r.stdout);
  assert.match(r.stderr, /the bridge needs @modelcontextprotocol\/sdk 1\.x, which this mcp-mtls \(.*no-sdk\/node_modules\/mcp-mtls\) cannot load/);
  assert.match(r.stderr, /hint: install it beside mcp-mtls/);
  assert.equal(fs.existsSync(path.join(base, '.cursor', 'mcp.json')), false);
});
