/**
 * The worked example of docs/gateway.md (docs/examples/team-gateway/): its gateway.yaml loads
 * and validates, its policies compile, the doc shows those files as they are (so the doc cannot
 * rot), and the example runs: the same configuration with the npm servers started from
 * node_modules instead of `npx -y` and /srv/mcp in a temporary folder, three people, real TLS,
 * real SDK clients: each sees their own folder, their team's graph, and the tools the policy gives.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { loadGatewayConfig, type GatewayConfig } from '../../src/gateway/config.js';
import { startGateway, type RunningGateway } from '../../src/gateway/run.js';
import { policyFromText } from '../../src/policy/compile.js';
import { ROOT } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const EXAMPLE = path.join(ROOT, 'docs/examples/team-gateway');
const DOC = fs.readFileSync(path.join(ROOT, 'docs/gateway.md'), 'utf8');
const FILES = ['gateway.yaml', 'policies/files.yaml', 'policies/memory.yaml', 'policies/everything.yaml'];

test('docs/examples/team-gateway: gateway.yaml loads and validates, its policies compile, docs/gateway.md shows each file as it is', () => {
  const config = loadGatewayConfig(path.join(EXAMPLE, 'gateway.yaml'));
  assert.deepEqual(config.routes.map((r) => [r.path, r.stdio?.processModel]), [['/mcp/files', 'per-principal'], ['/mcp/memory', 'per-team'], ['/mcp/everything', 'shared']]);
  for (const r of config.routes) {
    const file = (r.policy ?? config.policy) as string; // a route's own, or the shared one
    assert.ok(fs.existsSync(file), file);
    policyFromText(fs.readFileSync(file, 'utf8'), file);
  }
  for (const f of FILES) {
    const body = fs.readFileSync(path.join(EXAMPLE, f), 'utf8');
    assert.ok(DOC.includes(`\`\`\`yaml\n${body}\`\`\``), `docs/gateway.md does not show docs/examples/team-gateway/${f} as it is (copy the file into its yaml block)`);
  }
});

/** The example as this machine runs it: npm servers from node_modules, /srv/mcp under `srv`, this test's TLS. */
function runnable(config: GatewayConfig, srv: string, tls: GatewayConfig['tls'], audit: string): GatewayConfig {
  const here = (s: string) => s.replaceAll('/srv/mcp', srv);
  return {
    ...config,
    listen: '127.0.0.1:0',
    tls,
    audit,
    routes: config.routes.map((r) => {
      const s = r.stdio!;
      assert.equal(s.command, 'npx');
      assert.equal(s.args[0], '-y');
      const main = path.join(ROOT, 'node_modules', s.args[1]!, 'dist/index.js');
      return { ...r, stdio: { ...s, command: process.execPath, args: [main, ...s.args.slice(2).map(here)], env: Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, here(v)])) } };
    }),
  };
}

const clients: Record<string, { cert: string; key: string; ca: string }> = {};
let gw: RunningGateway;
let srv: string;
let url: string;

before(async () => {
  const pki = await makePki();
  const server = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  for (const [who, team] of [['alice', 'platform'], ['carol', 'platform'], ['bob', 'data']] as const) {
    const r = await pki.issue(['issue', 'client', '--user', who, '--team', team]);
    clients[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  }
  // a service that shares the user alice's id (and her team): {principal.id} would root it at her folder
  const svc = await pki.issue(['issue', 'client', '--service', 'alice', '--team', 'platform', '--out', path.join(pki.base, 'svc')]);
  clients['service-alice'] = { cert: svc.files.cert, key: svc.files.key as string, ca: svc.files.ca };
  srv = path.join(pki.base, 'srv');
  for (const who of ['alice', 'carol', 'bob']) {
    fs.mkdirSync(path.join(srv, 'home', who), { recursive: true });
    fs.writeFileSync(path.join(srv, 'home', who, 'todo.txt'), `${who}'s list`);
  }
  fs.mkdirSync(path.join(srv, 'memory'));
  const config = runnable(loadGatewayConfig(path.join(EXAMPLE, 'gateway.yaml')), srv, { cert: server.files.cert, key: server.files.key as string, pki: pki.pki }, path.join(pki.base, 'audit.jsonl'));
  gw = await startGateway({ ...config, upstreamTimeout: '60s' }, () => undefined, { env: process.env });
  url = `https://localhost:${gw.address.port}`;
});

after(async () => {
  await gw?.stop();
});

async function connect(route: string, who: string) {
  const agent = createMtlsAgent(bundleOf(clients[who]!));
  const client = new Client({ name: who, version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}${route}`), { fetch: createMtlsFetch(agent) as typeof fetch }));
  return { client, close: async () => { await client.close(); await agent.close(); } };
}
const text = (r: unknown) => ((r as { content: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');

test("a service named alice (in alice's team) gets nothing of /mcp/files: the folder is named by the id alone, which it shares with the user alice", async () => {
  const svc = await connect('/mcp/files', 'service-alice');
  try {
    assert.deepEqual((await svc.client.listTools()).tools.map((t) => t.name), []);
    const read = await svc.client.callTool({ name: 'read_text_file', arguments: { path: path.join(srv, 'home', 'alice', 'todo.txt') } }).catch((e: Error) => ({ isError: true, content: [{ type: 'text', text: e.message }] }));
    assert.doesNotMatch(text(read), /alice's list/);
  } finally {
    await svc.close();
  }
});

test('the example runs: own folder per person, one graph per team (read-only for data), the shared server\'s tools by policy', async () => {
  const alice = { files: await connect('/mcp/files', 'alice'), memory: await connect('/mcp/memory', 'alice'), everything: await connect('/mcp/everything', 'alice') };
  const carol = await connect('/mcp/memory', 'carol');
  const bob = { files: await connect('/mcp/files', 'bob'), memory: await connect('/mcp/memory', 'bob'), everything: await connect('/mcp/everything', 'bob') };
  try {
    // files: alice's process is rooted at her folder
    assert.equal(text(await alice.files.client.callTool({ name: 'read_text_file', arguments: { path: path.join(srv, 'home', 'alice', 'todo.txt') } })), "alice's list");
    const theirs = await alice.files.client.callTool({ name: 'read_text_file', arguments: { path: path.join(srv, 'home', 'bob', 'todo.txt') } });
    assert.equal(theirs.isError, true);
    assert.doesNotMatch(text(theirs), /bob's list/);
    assert.equal(text(await bob.files.client.callTool({ name: 'read_text_file', arguments: { path: path.join(srv, 'home', 'bob', 'todo.txt') } })), "bob's list");
    // memory: per team; the data team reads only
    await alice.memory.client.callTool({ name: 'create_entities', arguments: { entities: [{ name: 'launch-plan', entityType: 'project', observations: ['ships friday'] }] } });
    assert.match(text(await carol.client.callTool({ name: 'read_graph', arguments: {} })), /ships friday/);
    assert.doesNotMatch(text(await bob.memory.client.callTool({ name: 'read_graph', arguments: {} })), /ships friday/);
    assert.deepEqual((await bob.memory.client.listTools()).tools.map((t) => t.name).sort(), ['open_nodes', 'read_graph', 'search_nodes']);
    // everything: one process, tools by policy
    assert.deepEqual((await bob.everything.client.listTools()).tools.map((t) => t.name).sort(), ['echo', 'get-sum']);
    assert.ok((await alice.everything.client.listTools()).tools.length > 2);
  } finally {
    for (const c of [alice.files, alice.memory, alice.everything, carol, bob.files, bob.memory, bob.everything]) await c.close();
  }
});
