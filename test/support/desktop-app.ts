/**
 * A client-config entry run as a desktop app runs it: its command and args over stdio, in the
 * app's folder with the app's environment (a bare PATH: the entry must name what it needs), and
 * the real SDK 1.x client as the app. For the client-config tests (test/cli/client-config,
 * test/client/transport-safety), which check the written entry by running it against a fixture
 * server (startFixture in mcp.ts, named 'test') with alice's bundle.
 */
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

/** Runs `entry`, checks that it relays initialize and tools/list to the fixture as alice (the bridge says so on stderr); its stderr is in every failure message. */
export async function assertRelaysAsAlice(entry: { command: string; args: string[] }, cwd: string, env: Record<string, string>): Promise<void> {
  const transport = new StdioClientTransport({ command: entry.command, args: entry.args, cwd, env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'desktop-app', version: '1.0.0' });
  try {
    await client.connect(transport);
    assert.equal(client.getServerVersion()?.name, 'test', stderr);
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'deploy'), stderr);
  } finally {
    await client.close();
  }
  assert.match(stderr, /relaying stdio to https:\/\/localhost:\d+\/mcp as spiffe:\/\/acme\.test\/user\/alice/);
}
