/**
 * Review of 0ae8c57 (unanswered server-to-client requests bounded per session and per process):
 * in a shared stdio process (the default processModel) the process-wide limit is shared by every
 * caller, and one principal may open many sessions (maxSessionsPerCaller, 1,000). So alice, with
 * ten sessions whose clients never answer, held the whole process limit, and every other person's
 * sampling/elicitation requests were refused until hers expired (the route's timeout, renewed as
 * often as she asks again): a denial of service across users. Past the process limit, the oldest
 * request of the principal holding the most is now given up (the process told), never another's
 * for hers. Real gateway over real TLS on 127.0.0.1, real SDK 1.x clients, the real
 * asking-server stdio fixture.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { MAX_SERVER_REQUESTS, MAX_SERVER_REQUESTS_PER_SESSION } from '../../src/gateway/stdio-upstream.js';
import { ROOT } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { useGateway } from '../support/gateway.js';

const ASKING = path.join(ROOT, 'test/fixtures/stdio/asking-server.mjs');
const POLICY = 'version: 1\nrules:\n  - id: sre\n    subjects: { teams: [sre] }\n    tools: ["*"]\n';

const g = useGateway({
  people: { alice: ['--team', 'sre'], bob: ['--team', 'sre'] },
  policy: POLICY,
  upstreamTimeout: '60s',
  routes: (policy) => [{ path: '/mcp/asking', policy, stdio: { command: process.execPath, args: [ASKING] } }],
});

async function connect(who: 'alice' | 'bob') {
  const agent = createMtlsAgent(bundleOf(g.clients[who]!));
  const client = new Client({ name: 'never-answers', version: '1.0.0' }, { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, () => new Promise(() => undefined));
  const transport = new StreamableHTTPClientTransport(new URL(`${g.url}/mcp/asking`), { fetch: createMtlsFetch(agent) as typeof fetch });
  await client.connect(transport);
  return { client, close: async () => { await transport.terminateSession().catch(() => undefined); await client.close(); await agent.close(); } };
}

async function ask(client: Client, count: number, waitMs = 300): Promise<{ answered: number; errors: string[] }> {
  const r = await client.callTool({ name: 'ask', arguments: { count, waitMs } }, CallToolResultSchema, { timeout: 30_000 });
  return JSON.parse((r.content as { text: string }[])[0]!.text);
}

test(`one person holding the process's limit (${MAX_SERVER_REQUESTS}) over many sessions does not lock another person out of server-to-client requests`, async () => {
  const sessions: Awaited<ReturnType<typeof connect>>[] = [];
  try {
    for (let i = 0; i < MAX_SERVER_REQUESTS / MAX_SERVER_REQUESTS_PER_SESSION; i++) {
      const s = await connect('alice');
      sessions.push(s);
      assert.deepEqual(await ask(s.client, MAX_SERVER_REQUESTS_PER_SESSION), { answered: 0, errors: [] }, `alice's session ${i + 1}`);
    }
    const bob = await connect('bob');
    sessions.push(bob);
    const r = await ask(bob.client, 3);
    assert.deepEqual(r.errors, [], `bob's requests were refused because alice's sessions hold the process's limit: ${r.errors[0]}`);
    // alice, still at the top, gets her own refused, not bob's taken
    const more = await ask(sessions[0]!.client, 1);
    assert.equal(more.errors.length, 1, 'alice, holding the most, got a request held past the limit');
    const again = await ask(bob.client, 2);
    assert.deepEqual(again.errors, [], `bob refused on his second call: ${again.errors[0]}`);
    const givenUp = g.logged.filter((l) => /asking-server: error for .*given up/.test(l)).length;
    assert.ok(givenUp >= 5, `the process was told of alice's requests given up for bob's (${givenUp} of 5)`);
  } finally {
    for (const s of sessions) await s.close();
  }
});
