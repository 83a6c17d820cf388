/**
 * Issue 18: `npm run demo -- --keep --dir DIR` listened on 8443 always (and failed when it was
 * taken). Now it listens on --port (default 0: a free port) and prints the port it got.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, tmpDir } from '../support/cli.js';

/** Runs the demo with --keep until it says where it keeps running; then stops it (by its pid). */
function keptDemo(extra: string[]): Promise<{ stdout: string; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'examples', 'demo', 'demo.ts'), '--keep', '--dir', path.join(tmpDir(), 'demo'), ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`the demo did not keep running within 120 s:\n${stdout}${stderr}`));
    }, 120_000);
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', async (d) => {
      stdout += d;
      const m = /The server keeps running on https:\/\/localhost:(\d+)\/mcp \(port (\d+)/.exec(stdout);
      if (!m || !/Try:/.test(stdout)) return;
      clearTimeout(timer);
      const port = Number(m[1]);
      assert.equal(Number(m[2]), port);
      // it is listening there
      await new Promise<void>((ok, fail) => net.connect(port, '127.0.0.1', function (this: net.Socket) { this.destroy(); ok(); }).on('error', fail));
      child.kill();
      resolve({ stdout, port });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== null) reject(new Error(`the demo exited ${code}:\n${stdout}${stderr}`));
    });
  });
}

test('demo --keep --dir: a free port, printed, even when 8443 is taken; --port N to choose', { timeout: 300_000 }, async () => {
  // hold 8443 when we can (another program may already hold it: just as good)
  const held = net.createServer();
  await new Promise<void>((r) => held.once('error', () => r()).listen(8443, '127.0.0.1', () => r()));
  try {
    const free = await keptDemo([]);
    assert.notEqual(free.port, 8443);
    assert.match(free.stdout, /demo OK/);
    assert.match(free.stdout, /a free one; --port N to choose/);
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const chosen = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const fixed = await keptDemo(['--port', String(chosen)]);
    assert.equal(fixed.port, chosen);
  } finally {
    held.close();
  }
});
