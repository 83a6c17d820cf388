/**
 * Issue 18: `connect --json` and `gateway --json` write their start-up line, warnings and
 * errors on stderr as one JSON object per line, as the other commands with --json do
 * (`ca serve --json`; errors as `{"error":{code,message,hint}}`). The bridge's stdout stays
 * JSON-RPC only.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { BIN, cli, cliOk, ROOT } from '../support/cli.js';
import { revoke, aliceProfile, startFixture, type McpFixture } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

let f: McpFixture;
let alice: string;
before(async () => {
  f = await startFixture();
  alice = await aliceProfile(f);
});
after(async () => f.close());

/** Every non-empty line of `text`, each parsed as JSON (fails on a line that is not). */
function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`not a JSON line: ${l}\n--- all of it:\n${text}`);
      }
    });
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

test('connect --json: the start-up line is one JSON object; a session and its close add nothing else', async () => {
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'connect', '--bundle', alice, '--json'], cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: f.pki.base }, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'desktop-app', version: '1.0.0' });
  try {
    await client.connect(transport);
    assert.ok((await client.listTools()).tools.length > 0);
  } finally {
    await client.close();
  }
  const lines = jsonLines(stderr);
  assert.equal(lines.length, 1, stderr);
  const [start] = lines;
  assert.equal(start!.level, 'info');
  assert.equal(start!.event, 'start');
  assert.equal(start!.url, f.url);
  assert.equal(start!.principal, 'spiffe://acme.test/user/alice');
  assert.match(String(start!.message), /^relaying stdio to https:/);
  assert.ok(!Number.isNaN(Date.parse(String(start!.time))));
});

test('connect --json: an unreachable server is one JSON error line with its code and hint (exit 69); a usage error is JSON too', async () => {
  const url = `https://127.0.0.1:${await freePort()}/mcp`;
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'connect', url, '--bundle', alice, '--json'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: f.pki.base } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill(), 15_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'app', version: '1' } } })}\n`);
  });
  assert.equal(r.code, 69, r.stderr);
  const lines = jsonLines(r.stderr);
  assert.deepEqual(lines.map((l) => l.event), ['start', 'error'], r.stderr);
  const error = lines[1]!;
  assert.equal(error.level, 'error');
  assert.equal(error.code, 'SERVER_UNREACHABLE');
  assert.match(String(error.message), /ECONNREFUSED/);
  assert.match(String(error.hint), /check that the server is running/);
  assert.match(r.stdout, /"id":1.*"error"/, 'stdout still answers the request in JSON-RPC');

  const usage = await cli(['connect', 'ftp://localhost/mcp', '--bundle', alice, '--json']);
  assert.equal(usage.code, 64, usage.stderr);
  const [err] = jsonLines(usage.stderr);
  assert.match(String((err!.error as { message: string }).message), /must be https:/);
});

test('connect --json: a refused certificate is one JSON line (event refused, its hint), logged once, exit 77', async () => {
  const dave = await f.pki.issue(['issue', 'client', '--user', 'dave']);
  const daveFile = path.join(f.pki.base, 'dave.yaml');
  await cliOk(['bundle', dave.files.cert, '--dir', f.pki.pki, '--format', 'profile', '--url', f.url, '--out', daveFile]);
  f.server.reloadCrls(await revoke(f.pki, dave.serial));
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'connect', '--bundle', daveFile, '--json'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: f.pki.base } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill(), 15_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'app', version: '1' } } })}\n`);
  });
  assert.equal(r.code, 77, r.stderr);
  const lines = jsonLines(r.stderr);
  assert.deepEqual(lines.map((l) => l.event), ['start', 'refused'], r.stderr);
  assert.match(String(lines[1]!.message), /refused the client certificate: certificate_revoked/);
  assert.ok(String(lines[1]!.hint ?? '').length > 0, 'with its hint');
});

test('gateway --json: the start-up line is one JSON object with the port it got; a taken port is a JSON error', async () => {
  const t = await makePki();
  const gw = await t.issue(['issue', 'server', '--dns', 'localhost']);
  const policy = path.join(t.base, 'policy.yaml');
  fs.writeFileSync(policy, 'version: 1\nrules:\n  - id: dev\n    subjects: { teams: [dev] }\n    tools: [report]\n');
  const args = ['--upstream', 'http://127.0.0.1:9/mcp', '--policy', policy, '--cert', gw.files.cert, '--key', gw.files.key!, '--pki', t.pki, '--json'];
  const child = spawn(process.execPath, [BIN, 'gateway', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  try {
    for (let i = 0; i < 200 && !/"event":"start"/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
    const [start] = jsonLines(stderr);
    assert.equal(start!.event, 'start', stderr);
    assert.equal(start!.level, 'info');
    const port = Number(new URL(String(start!.url)).port);
    assert.ok(port > 0, `the actual port, not 0: ${String(start!.url)}`);
    assert.deepEqual(start!.routes, [{ path: '/mcp', upstream: 'http://127.0.0.1:9/mcp' }]);
    // that port is the one listening: a TCP connect is enough to show it
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve();
      });
      s.on('error', reject);
    });

    const taken = await cli(['gateway', '--listen', `127.0.0.1:${port}`, ...args]);
    assert.equal(taken.code, 74, taken.stderr);
    const [err] = jsonLines(taken.stderr);
    const e = err!.error as { code: string; message: string; hint: string };
    assert.equal(e.code, 'IO_ERROR');
    assert.match(e.message, /address is in use/);
    assert.match(e.hint, /choose another --listen port/);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  assert.deepEqual(jsonLines(stderr).map((l) => l.event), ['start', 'stop'], stderr);
});
