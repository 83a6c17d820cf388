/**
 * Two `mcp-mtls ca serve` processes on one CA (the CLI run from the sources through tsx) behind
 * an imagined load balancer: the console's CSRF token a page got from replica A is accepted by
 * replica B (both derive the key from the CA key they share, src/console/csrf.ts), and never for
 * another operator's certificate. And `--decisions-file` points the Decisions page at a file.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clientCreds, makeCa, request, serverCreds, type Creds, type TestCa } from '../support/ca-serve.js';
import { tmpDir } from '../support/cli.js';

const ENTRY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/entry.ts');
const children: ChildProcess[] = [];

async function caServe(t: TestCa, tls: { cert: string; key: string }, extra: string[] = []): Promise<number> {
  const runner = path.join(path.dirname(t.dir), 'run-cli.mjs');
  if (!fs.existsSync(runner)) fs.writeFileSync(runner, `import { main } from ${JSON.stringify(ENTRY)};\nmain(process.argv);\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', runner, 'ca', 'serve', '--dir', t.dir, '--listen', '127.0.0.1:0', '--tls-cert', tls.cert, '--tls-key', tls.key, ...extra], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ca serve did not start in 30 s: ${stderr}`)), 30_000);
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      const e = JSON.parse(l) as { event: string; port?: number };
      if (e.event === 'serve.start') {
        clearTimeout(timer);
        resolve(e.port!);
      }
    });
    child.on('exit', (code) => reject(new Error(`ca serve exited ${code}: ${stderr}`)));
  });
}

describe('console replicas', { timeout: 90_000 }, () => {
  let t: TestCa;
  let ops: Creds;
  let ops2: Creds;
  let ports: number[] = [];
  let decisionsFile: string;

  before(async () => {
    t = makeCa();
    const tls = await serverCreds(t.ca);
    const dir = tmpDir('console-replicas-');
    const files = { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
    fs.writeFileSync(files.cert, tls.cert);
    fs.writeFileSync(files.key, tls.key, { mode: 0o600 });
    ops = await clientCreds(t.ca, { id: 'ops', roles: ['ca-admin'] });
    ops2 = await clientCreds(t.ca, { id: 'ops2', roles: ['ca-admin'] });
    decisionsFile = path.join(dir, 'elsewhere.jsonl');
    fs.writeFileSync(decisionsFile, `${JSON.stringify({ time: new Date().toISOString(), event: 'decision', principal: 'spiffe://acme.test/user/bob', method: 'tools/call', target: 'deploy', allowed: false, ruleId: null, reason: 'no rule allows it' })}\n`);
    ports = await Promise.all([caServe(t, files), caServe(t, files, ['--decisions-file', decisionsFile])]);
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  const session = async (port: number, who: Creds) => (await request(port, t.rootPem, { path: '/console/api/session', creds: who })).json() as { csrf: string };
  const createToken = (port: number, who: Creds, csrf: string) =>
    request(port, t.rootPem, { method: 'POST', path: '/console/api/tokens', creds: who, body: JSON.stringify({ kind: 'user', id: 'newbie', ttl: '10m' }), headers: { 'content-type': 'application/json', 'x-console-csrf': csrf } });

  it('a CSRF token from replica A is accepted by replica B', async () => {
    const [a, b] = ports as [number, number];
    const fromA = await session(a, ops);
    assert.equal((await session(b, ops)).csrf, fromA.csrf, 'both replicas derive the same token for one certificate');
    const r = await createToken(b, ops, fromA.csrf);
    assert.equal(r.status, 200, r.text());
    assert.ok((r.json() as { secret?: string }).secret);
  });

  it("a token for another operator's certificate is refused by either replica", async () => {
    const [a, b] = ports as [number, number];
    const fromA = await session(a, ops);
    assert.notEqual((await session(a, ops2)).csrf, fromA.csrf);
    for (const port of [a, b]) {
      const r = await createToken(port, ops2, fromA.csrf);
      assert.equal(r.status, 403);
      assert.equal(r.json().error?.code, 'CSRF_REFUSED');
    }
  });

  it('--decisions-file points the Decisions page at that file', async () => {
    const [a, b] = ports as [number, number];
    const withFile = (await request(b, t.rootPem, { path: '/console/api/decisions', creds: ops })).json() as { source: string | null; denied: number; byTool: { key: string }[] };
    assert.equal(withFile.source, 'file');
    assert.equal(withFile.denied, 1);
    assert.deepEqual(withFile.byTool.map((x) => x.key), ['deploy']);
    const without = (await request(a, t.rootPem, { path: '/console/api/decisions', creds: ops })).json() as { source: string | null; total: number };
    assert.deepEqual([without.source, without.total], [null, 0], 'a folder store without a decisions file has no source');
  });
});
