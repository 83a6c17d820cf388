/**
 * Clients: the SDK 1.x and 2.x clients with a certificate bundle, progress over SSE, the
 * stdio bridge driven by the real SDK stdio client, connection reuse (one full handshake for
 * 1,000 calls), a server restart, and refusals that say why, from the library and the bridge.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Client as Client2 } from '@modelcontextprotocol/client';
import { loadBundle } from '../../src/bundle/load.js';
import { CertificateRefusedError } from '../../src/client/agent.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { createSdk2Transport } from '../../src/client/transport-sdk2.js';
import { isMtlsError } from '../../src/errors.js';
import { BIN, cli, cliOk } from '../support/cli.js';
import { revoke, startFixture, type McpFixture } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

let f: McpFixture;
const bundles: Record<string, string> = {};
before(async () => {
  f = await startFixture();
  for (const who of ['alice', 'bob', 'carol'] as const) {
    const file = path.join(f.pki.base, `${who}.yaml`);
    await cliOk(['bundle', f.clients[who].cert, '--dir', f.pki.pki, '--format', 'profile', '--url', f.url, '--out', file]);
    bundles[who] = file;
  }
});
after(async () => f.close());

const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0] as { text: string }).text;

test('SDK 1.x client from a bundle: tools, and progress notifications over SSE', async () => {
  const client = new Client({ name: 'agent', version: '1.0.0' });
  await client.connect(createSdk1Transport(await loadBundle(bundles.alice!)));
  try {
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'deploy'));
    const progress: number[] = [];
    const r = await client.callTool({ name: 'slow', arguments: {} }, undefined, { onprogress: (p) => void progress.push(p.progress) });
    assert.equal(text(r), 'done');
    assert.deepEqual(progress, [1, 2, 3]);
  } finally {
    await client.close();
  }
});

test('SDK 2.x client from a bundle against the same server', async () => {
  const client = new Client2({ name: 'agent2', version: '1.0.0' });
  await client.connect(await createSdk2Transport(await loadBundle(bundles.bob!)));
  try {
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['deploy_staging', 'search', 'slow', 'who', 'whoami']);
    assert.equal(text(await client.callTool({ name: 'search', arguments: { q: 'x' } })), 'results for x');
  } finally {
    await client.close();
  }
});

test('1,000 sequential tools/call through one agent cost one full TLS handshake', async () => {
  let full = 0;
  const count = (s: TLSSocket) => {
    if (!s.isSessionReused()) full++;
  };
  f.server.on('secureConnection', count);
  const client = new Client({ name: 'agent', version: '1.0.0' });
  try {
    await client.connect(createSdk1Transport(await loadBundle(bundles.alice!)));
    for (let i = 0; i < 1000; i++) await client.callTool({ name: 'search', arguments: { q: String(i) } });
    assert.equal(full, 1, `${full} full handshakes`);
  } finally {
    f.server.off('secureConnection', count);
    await client.close();
  }
});

test('the stdio bridge: the real SDK stdio client lists and calls tools; closing stdin ends it within a second', async () => {
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'connect', f.url, '--bundle', bundles.alice!], stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'desktop-app', version: '1.0.0' });
  await client.connect(transport);
  assert.ok((await client.listTools()).tools.some((t) => t.name === 'deploy'), stderr);
  assert.equal(text(await client.callTool({ name: 'deploy', arguments: { env: 'prod' } })), 'deployed to prod');
  const progress: number[] = [];
  await client.callTool({ name: 'slow', arguments: {} }, undefined, { onprogress: (p) => void progress.push(p.progress) });
  assert.deepEqual(progress, [1, 2, 3], 'notifications relayed');
  const child = (transport as unknown as { _process: import('node:child_process').ChildProcess })._process;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const t0 = Date.now();
  child.stdin!.end();
  const code = await exited;
  assert.ok(Date.now() - t0 < 1000, `exit took ${Date.now() - t0} ms`);
  assert.equal(code, 0);
  assert.match(stderr, /relaying stdio to https:\/\/localhost:\d+\/mcp as spiffe:\/\/acme\.test\/user\/alice/);
  await client.close().catch(() => undefined);
});

test('a server restart: the client reconnects and carries on', async () => {
  const g = await startFixture();
  const port = Number(new URL(g.url).port);
  const file = path.join(g.pki.base, 'alice.yaml');
  await cliOk(['bundle', g.clients.alice.cert, '--dir', g.pki.pki, '--format', 'profile', '--url', g.url, '--out', file]);
  const client = new Client({ name: 'agent', version: '1.0.0' });
  await client.connect(createSdk1Transport(await loadBundle(file)));
  assert.equal(text(await client.callTool({ name: 'search', arguments: { q: 'a' } })), 'results for a');
  g.server.closeAllConnections();
  await new Promise((r) => g.server.close(r));
  await new Promise<void>((r) => g.server.listen(port, '127.0.0.1', r));
  let answer = '';
  for (let i = 0; i < 3 && !answer; i++) answer = await client.callTool({ name: 'search', arguments: { q: 'b' } }).then(text, () => '');
  assert.equal(answer, 'results for b');
  await client.close();
  await g.close();
});

test('refusals say why: no bundle, wrong CA, revoked, expired (library and bridge)', async () => {
  // no bundle
  await assert.rejects(loadBundle(path.join(f.pki.base, 'missing.yaml')), (e) => isMtlsError(e, 'FILE_NOT_FOUND'));
  const none = await cli(['connect', f.url, '--bundle', path.join(f.pki.base, 'missing.yaml')]);
  assert.equal(none.code, 66);
  assert.match(none.stderr, /no bundle at/);
  // wrong CA: a bundle from another CA, pointed at this server (trusting this server's CA to get that far)
  const other = await makePki();
  const stranger = await other.issue(['issue', 'client', '--user', 'alice']);
  const strangerBundle = await loadBundle(bundles.alice!);
  const foreign = { ...strangerBundle, chain: (await import('../../src/x509/pem.js')).readCertificates(fs.readFileSync(stranger.files.cert)), key: (await import('node:crypto')).createPrivateKey(fs.readFileSync(stranger.files.key!)) };
  const c1 = new Client({ name: 'x', version: '1' });
  await assert.rejects(c1.connect(createSdk1Transport(foreign)), (e) => e instanceof CertificateRefusedError && e.reason === 'unknown_ca');
  // revoked: carol, through the library and through the bridge
  f.server.reloadCrls(await revoke(f.pki, f.clients.carol.serial));
  const c2 = new Client({ name: 'x', version: '1' });
  await assert.rejects(c2.connect(createSdk1Transport(await loadBundle(bundles.carol!))), (e) => e instanceof CertificateRefusedError && e.reason === 'certificate_revoked');
  const bridge = new StdioClientTransport({ command: process.execPath, args: [BIN, 'connect', '--bundle', bundles.carol!], stderr: 'pipe' });
  let stderr = '';
  bridge.stderr?.on('data', (d) => (stderr += d));
  const c3 = new Client({ name: 'x', version: '1' });
  await assert.rejects(c3.connect(bridge), /certificate_revoked/);
  await new Promise((r) => setTimeout(r, 300));
  assert.match(stderr, /the server refused the client certificate: certificate_revoked/);
  await c3.close().catch(() => undefined);
  // expired: refused before any connection
  const short = await f.pki.issue(['issue', 'client', '--user', 'brief', '--ttl', '1s']);
  const briefFile = path.join(f.pki.base, 'brief.yaml');
  await cliOk(['bundle', short.files.cert, '--dir', f.pki.pki, '--format', 'profile', '--url', f.url, '--out', briefFile]);
  await new Promise((r) => setTimeout(r, 1100));
  await assert.rejects(loadBundle(briefFile), (e) => isMtlsError(e, 'CERT_EXPIRED'));
  const expired = await cli(['connect', '--bundle', briefFile]);
  assert.equal(expired.code, 65);
  assert.match(expired.stderr, /expired at/);
});

test('client-config prints the bridge entry for each desktop client and merges it with a backup', async () => {
  const home = path.join(f.pki.base, 'home');
  fs.mkdirSync(home);
  const printed = await cliOk<{ file: string; mcpServers: Record<string, { command: string; args: string[] }> }>(['client-config', '--client', 'claude-desktop', '--name', 'acme', '--bundle', bundles.alice!, '--json'], { env: { HOME: home } });
  // absolute paths of this node and this install (issue 16 finding 9: never npx; see client-transport-safety.test.ts)
  assert.deepEqual(printed.mcpServers.acme, { command: process.execPath, args: [fs.realpathSync(BIN), 'connect', f.url, '--bundle', bundles.alice!] });
  const cursorFile = path.join(home, '.cursor', 'mcp.json');
  fs.mkdirSync(path.dirname(cursorFile), { recursive: true });
  fs.writeFileSync(cursorFile, JSON.stringify({ mcpServers: { other: { command: 'x' } }, theme: 'dark' }));
  await cliOk(['client-config', '--client', 'cursor', '--name', 'acme', '--bundle', bundles.alice!, '--write'], { env: { HOME: home } });
  const merged = JSON.parse(fs.readFileSync(cursorFile, 'utf8'));
  assert.deepEqual(Object.keys(merged.mcpServers).sort(), ['acme', 'other']);
  assert.equal(merged.theme, 'dark');
  assert.ok(fs.existsSync(`${cursorFile}.bak`));
  const vscode = await cliOk<{ servers: Record<string, { type: string }> }>(['client-config', '--client', 'vscode', '--name', 'acme', '--bundle', bundles.alice!, '--json'], { env: { HOME: home } });
  assert.equal(vscode.servers.acme!.type, 'stdio');
});
