/**
 * Server-to-client requests (sampling, elicitation, roots) a stdio upstream sends through the
 * gateway are held until the client answers: the gateway keeps, per process, which session each
 * went to. A client that never answers (here: a sampling handler that never returns) must not
 * let a server grow that without limit. Real gateway over real TLS on 127.0.0.1, real SDK 1.x
 * clients, a real stdio process (test/fixtures/stdio/asking-server.mjs) that reports what the
 * gateway answered it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { GatewayConfigSchema } from '../../src/gateway/config.js';
import { startGateway } from '../../src/gateway/run.js';
import { MAX_SERVER_REQUESTS, MAX_SERVER_REQUESTS_PER_SESSION } from '../../src/gateway/stdio-upstream.js';
import { ROOT } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { useGateway, type ClientFiles } from '../support/gateway.js';
import { makePki } from '../support/pki.js';

const ASKING = path.join(ROOT, 'test/fixtures/stdio/asking-server.mjs');
const POLICY = 'version: 1\nrules:\n  - id: sre\n    subjects: { teams: [sre] }\n    tools: ["*"]\n';

const g = useGateway({
  people: { alice: ['--team', 'sre'] },
  policy: POLICY,
  upstreamTimeout: '60s',
  routes: (policy) => [{ path: '/mcp/asking', policy, stdio: { command: process.execPath, args: [ASKING] } }],
});
const { logged } = g;

/** A client that announces sampling and never answers a sampling request; `close` ends its session. */
async function connect(base = g.url, files: ClientFiles = g.clients.alice!) {
  const agent = createMtlsAgent(bundleOf(files));
  const client = new Client({ name: 'never-answers', version: '1.0.0' }, { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, () => new Promise(() => undefined));
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp/asking`), { fetch: createMtlsFetch(agent) as typeof fetch });
  await client.connect(transport);
  // ends the session (DELETE), which client.close() alone does not
  return { client, close: async () => { await transport.terminateSession(); await client.close(); await agent.close(); } };
}

async function ask(client: Client, count: number, waitMs = 800): Promise<{ answered: number; errors: string[] }> {
  const r = await client.callTool({ name: 'ask', arguments: { count, waitMs } }, CallToolResultSchema, { timeout: 30_000 });
  return JSON.parse((r.content as { text: string }[])[0]!.text);
}

const waitFor = async (what: string, ok: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) assert.fail(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test(`a session's unanswered server-to-client requests are bounded (${MAX_SERVER_REQUESTS_PER_SESSION}): past it the server gets a JSON-RPC error naming the limit; ending the session answers the ones it held`, async () => {
  const c = await connect();
  let closed = false;
  try {
    const first = await ask(c.client, MAX_SERVER_REQUESTS_PER_SESSION + 50);
    assert.equal(first.answered, 0);
    assert.equal(first.errors.length, 50, `the gateway refused ${first.errors.length} of ${MAX_SERVER_REQUESTS_PER_SESSION + 50} requests the client left unanswered`);
    for (const e of first.errors) assert.match(e, new RegExp(`${MAX_SERVER_REQUESTS_PER_SESSION} unanswered requests from the server`));
    // still full: the next one is refused at once
    const again = await ask(c.client, 1, 300);
    assert.equal(again.errors.length, 1);
    // the session ends (DELETE): the server is told for each request it held, and they no longer count
    const before = logged.filter((l) => /asking-server: error for/.test(l)).length;
    await c.close();
    closed = true;
    await waitFor(`the process told of the ${MAX_SERVER_REQUESTS_PER_SESSION} requests the ended session held`, () => logged.filter((l) => /asking-server: error for .*session ended/.test(l)).length >= MAX_SERVER_REQUESTS_PER_SESSION);
    assert.equal(logged.filter((l) => /asking-server: error for/.test(l)).length - before, MAX_SERVER_REQUESTS_PER_SESSION);
  } finally {
    if (!closed) await c.close();
  }
});

test(`a process's unanswered server-to-client requests are bounded across its sessions (${MAX_SERVER_REQUESTS})`, async () => {
  const sessions: Awaited<ReturnType<typeof connect>>[] = [];
  try {
    const full = MAX_SERVER_REQUESTS / MAX_SERVER_REQUESTS_PER_SESSION;
    for (let i = 0; i < full; i++) {
      const s = await connect();
      sessions.push(s);
      assert.deepEqual(await ask(s.client, MAX_SERVER_REQUESTS_PER_SESSION, 300), { answered: 0, errors: [] }, `session ${i + 1} of ${full}`);
    }
    const late = await connect();
    sessions.push(late);
    const r = await ask(late.client, 3, 300);
    assert.equal(r.errors.length, 3, 'a session of its own, but the process holds its limit');
    for (const e of r.errors) assert.match(e, new RegExp(`${MAX_SERVER_REQUESTS} unanswered requests from the server`));
  } finally {
    for (const s of sessions) await s.close();
  }
});

test("a held request older than the route's timeout is given up (the process gets an error for it) and no longer counts", async () => {
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const a = await pki.issue(['issue', 'client', '--user', 'alice', '--team', 'sre']);
  const policy = path.join(pki.base, 'policy.yaml');
  fs.writeFileSync(policy, POLICY);
  const lines: string[] = [];
  const quick = await startGateway(
    GatewayConfigSchema.parse({ listen: '127.0.0.1:0', tls: { cert: srv.files.cert, key: srv.files.key as string, pki: pki.pki }, upstreamTimeout: '1s', routes: [{ path: '/mcp/asking', policy, stdio: { command: process.execPath, args: [ASKING] } }] }),
    (l) => void lines.push(l),
  );
  const c = await connect(`https://localhost:${quick.address.port}`, { cert: a.files.cert, key: a.files.key as string, ca: a.files.ca });
  try {
    assert.deepEqual(await ask(c.client, MAX_SERVER_REQUESTS_PER_SESSION, 300), { answered: 0, errors: [] });
    await new Promise((r) => setTimeout(r, 1100));
    // the session's 100 are past the 1 s timeout: given up when the next one comes, so 100 more are held
    assert.deepEqual(await ask(c.client, MAX_SERVER_REQUESTS_PER_SESSION, 300), { answered: 0, errors: [] }, 'the expired requests still counted');
    await waitFor('the process told of the requests given up', () => lines.filter((l) => /asking-server: error for .*did not answer within 1000 ms/.test(l)).length === MAX_SERVER_REQUESTS_PER_SESSION);
  } finally {
    await c.close();
    await quick.stop();
  }
});
