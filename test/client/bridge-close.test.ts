/**
 * Issue 18: a normal close of the bridge (the app closes stdin) logs nothing; it used to log
 * `server: SSE stream disconnected: AbortError: This operation was aborted` every time, the
 * SDK's report of the streams the bridge itself aborts on close.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { BIN, cliOk, ROOT } from '../support/cli.js';
import { aliceProfile, startFixture, type McpFixture } from '../support/mcp.js';

let f: McpFixture;
let alice: string;
before(async () => {
  f = await startFixture();
  alice = await aliceProfile(f);
});
after(async () => f.close());

/** Runs the bridge as a desktop app does, makes two calls, closes stdin, waits for the bridge to exit, and returns what it wrote to stderr. */
async function session(args: string[]): Promise<string> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'connect', ...args], cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: f.pki.base }, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'desktop-app', version: '1.0.0' });
  await client.connect(transport);
  const exited = new Promise<void>((resolve) => {
    // the SDK's transport owns the child; its pid is what we can watch
    const pid = transport.pid;
    assert.ok(pid);
    const poll = setInterval(() => {
      try {
        process.kill(pid, 0);
      } catch {
        clearInterval(poll);
        resolve();
      }
    }, 50);
  });
  assert.ok((await client.listTools()).tools.some((t) => t.name === 'deploy'));
  await client.callTool({ name: 'whoami', arguments: {} });
  await client.close(); // closes the bridge's stdin
  await exited;
  return stderr;
}

test('a normal close logs nothing but the start-up line (no "SSE stream disconnected: AbortError")', async () => {
  const stderr = await session(['--bundle', alice]);
  const lines = stderr.trim().split('\n');
  assert.match(lines[0] ?? '', /^mcp-mtls connect: relaying stdio to https:\/\/localhost:\d+\/mcp as spiffe:\/\/acme\.test\/user\/alice$/);
  assert.doesNotMatch(stderr, /AbortError|disconnected|aborted/, stderr);
  assert.deepEqual(lines.slice(1), [], `nothing else is logged:\n${stderr}`);
});
