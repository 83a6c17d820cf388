/**
 * The SDK 1.x adapter's quiet close (2d4db17: a stateless request's transport and server are
 * closed with Error.stackTraceLimit 0, to skip the stack of the SDK's "Connection closed"
 * error) must not reach tool code. The SDK's close aborts the request handlers still in flight
 * synchronously (Protocol._onclose: controller.abort()), so a client that goes away mid-call
 * runs the tool's abort listeners inside that close: found in review, they ran with no stack
 * traces at all (an error they made or logged said only its message).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { bundleOf, startFixture, type McpFixture } from '../support/mcp.js';
import { createMtlsAgent } from '../../src/client/agent.js';

const POLICY = `
version: 1
rules:
  - id: everyone
    subjects: { any: true }
    tools: [hang]
`;

let f: McpFixture;
let started: () => void = () => undefined;
let aborted: (seen: { limit: number; stack: string }) => void = () => undefined;

before(async () => {
  f = await startFixture({
    policyText: POLICY,
    build: (server: McpServer) => {
      server.registerTool('hang', { description: 'waits until the caller goes away' }, async (extra) => {
        await new Promise<void>((resolve) => {
          extra.signal.addEventListener('abort', () => {
            // what tool code sees while it cleans up: an error with its stack, the limit as the process set it
            aborted({ limit: Error.stackTraceLimit, stack: String(new Error('cleanup after abort').stack) });
            resolve();
          });
          started();
        });
        return { content: [{ type: 'text', text: 'gone' }] };
      });
    },
  });
});
after(async () => f.close());

test('a tool whose caller goes away mid-call runs its abort listener with stack traces (the quiet close does not reach it)', async () => {
  const agent = createMtlsAgent(bundleOf(f.clients.alice));
  try {
    const running = new Promise<void>((r) => (started = r));
    const seen = new Promise<{ limit: number; stack: string }>((r) => (aborted = r));
    const ac = new AbortController();
    const url = new URL(f.url);
    const call = agent
      .request({
        origin: url.origin,
        path: url.pathname,
        method: 'POST',
        signal: ac.signal,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'hang', arguments: {} } }),
      })
      .then((r) => r.body.text())
      .catch(() => undefined);
    await Promise.race([running, new Promise((_, reject) => setTimeout(() => reject(new Error('the tool never started')), 10_000))]);
    ac.abort(); // the client goes away: the server's response closes with the call in flight
    await call;
    const got = await Promise.race([seen, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the abort listener never ran')), 10_000))]);
    assert.equal(got.limit, Error.stackTraceLimit, `Error.stackTraceLimit in the tool's abort listener was ${got.limit}`);
    assert.match(got.stack, /\n\s+at /, `the tool's error had no stack: ${JSON.stringify(got.stack)}`);
    // and the process's limit is as it was afterwards
    assert.equal(Error.stackTraceLimit, 10);
  } finally {
    await agent.close();
  }
});
