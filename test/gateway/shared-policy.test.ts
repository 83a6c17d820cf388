/**
 * A shared policy whose rules name the upstream (issue 21): `upstreams: [files]` in a rule of
 * gateway.yaml's top-level `policy`. Two routes to real SDK 1.x upstreams through a real
 * gateway: each route lists, and calls, only what the rules for its upstream allow, a tool
 * allowed on the other route is hidden as unknown; a route with its own policy still uses it.
 * The engine: a rule naming upstreams is not in force without one (an adapter's policy),
 * `explain` says why, lint does not call an allow for another upstream shadowed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { GatewayConfigSchema, loadGatewayConfig } from '../../src/gateway/config.js';
import { startGateway, type RunningGateway } from '../../src/gateway/run.js';
import { policyFromText } from '../../src/policy/compile.js';
import { lintPolicy } from '../../src/policy/lint.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const SHARED = `
version: 1
rules:
  - id: files-read
    subjects: { teams: [dev] }
    upstreams: [files]
    tools: ["read_*"]
  - id: git-all
    subjects: { teams: [dev] }
    upstreams: ["git*"]
    tools: ["*"]
  - id: no-write-anywhere-for-interns
    effect: deny
    subjects: { roles: [intern] }
    upstreams: [git]
    tools: ["write_*"]
  - id: everyone-ping
    subjects: { any: true }
    tools: [ping_tool]
`;
const OWN = 'version: 1\nrules:\n  - id: own\n    subjects: { teams: [dev] }\n    tools: [write_file]\n';

let upstream: http.Server;
let gw: RunningGateway;
let url: string;
let bob: { cert: string; key: string; ca: string };

before(async () => {
  upstream = http.createServer(async (req, res) => {
    const server = new McpServer({ name: 'up', version: '1' });
    for (const name of ['read_file', 'write_file', 'ping_tool']) server.registerTool(name, { description: name }, async () => ({ content: [{ type: 'text', text: `${name} ran` }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close());
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const up = `http://127.0.0.1:${(upstream.address() as { port: number }).port}/mcp`;
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const b = await pki.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
  bob = { cert: b.files.cert, key: b.files.key as string, ca: b.files.ca };
  fs.writeFileSync(path.join(pki.base, 'shared.yaml'), SHARED);
  fs.writeFileSync(path.join(pki.base, 'own.yaml'), OWN);
  fs.writeFileSync(
    path.join(pki.base, 'gateway.yaml'),
    [
      'listen: 127.0.0.1:0',
      `tls: { cert: ${srv.files.cert}, key: ${srv.files.key}, pki: ${pki.pki} }`,
      'policy: shared.yaml',
      'routes:',
      `  - { path: /mcp/files, upstream: "${up}" }`,
      `  - { path: /mcp/git, upstream: "${up}" }`,
      `  - { path: /mcp/other, name: gitlab, upstream: "${up}" }`,
      `  - { path: /mcp/own, upstream: "${up}", policy: own.yaml }`,
      '',
    ].join('\n'),
  );
  gw = await startGateway(loadGatewayConfig(path.join(pki.base, 'gateway.yaml')), () => undefined);
  url = `https://localhost:${gw.address.port}`;
});

after(async () => {
  await gw?.stop();
  upstream?.close();
});

async function asBob(route: string) {
  const agent = createMtlsAgent(bundleOf(bob));
  const client = new Client({ name: 'bob', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}${route}`), { fetch: createMtlsFetch(agent) as typeof fetch }));
  return { client, close: async () => { await client.close(); await agent.close(); } };
}

test('a shared policy: each route lists and calls what the rules for its upstream allow; another upstream\'s tool is hidden as unknown; a route\'s own policy still works', async () => {
  const expect: Record<string, string[]> = { '/mcp/files': ['read_file', 'ping_tool'], '/mcp/git': ['read_file', 'write_file', 'ping_tool'], '/mcp/other': ['read_file', 'write_file', 'ping_tool'], '/mcp/own': ['write_file'] };
  for (const [route, tools] of Object.entries(expect)) {
    const c = await asBob(route);
    try {
      assert.deepEqual((await c.client.listTools()).tools.map((t) => t.name), tools, route);
      for (const name of ['read_file', 'write_file', 'ping_tool']) {
        const r = (await c.client.callTool({ name, arguments: {} }).catch((e: Error) => ({ isError: true, content: [{ text: e.message }] }))) as { isError?: boolean; content: { text: string }[] };
        if (tools.includes(name)) assert.equal(r.content[0]!.text, `${name} ran`, `${route} ${name}`);
        else assert.match(r.content[0]!.text, new RegExp(`Tool ${name} not found`), `${route} ${name}: ${r.content[0]!.text}`);
      }
    } finally {
      await c.close();
    }
  }
});

test('the engine: rules naming upstreams are not in force without one; explain says why; lint and gateway.yaml understand them', () => {
  const p = policyFromText(SHARED, 'shared.yaml');
  const bobId = { principal: 'spiffe://acme.test/user/bob', id: 'bob', kind: 'user', trustDomain: 'acme.test', teams: ['dev'], roles: ['intern'] } as never;
  assert.equal(p.decide(bobId, { kind: 'tool', name: 'read_file' }).allowed, false, 'an adapter\'s policy (no upstream) applied an upstream rule');
  assert.equal(p.forUpstream('files').decide(bobId, { kind: 'tool', name: 'read_file' }).ruleId, 'files-read');
  assert.equal(p.forUpstream('git').decide(bobId, { kind: 'tool', name: 'write_file' }).ruleId, 'no-write-anywhere-for-interns');
  assert.equal(p.forUpstream('gitlab').decide(bobId, { kind: 'tool', name: 'write_file' }).ruleId, 'git-all');
  assert.equal(p.forUpstream('files'), p.forUpstream('files'), 'built once per name');
  const why = p.forUpstream('files').explain(bobId, { kind: 'tool', name: 'write_file' }).rules.find((r) => r.id === 'git-all')!.why;
  assert.equal(why, 'its upstreams (git*) do not include "files"');
  assert.match(p.explain(bobId, { kind: 'tool', name: 'read_file' }).rules[0]!.why, /it is for upstreams files \(give the upstream: --upstream NAME\)/);
  // a deny for git does not shadow an allow for every upstream, nor one for files
  const doc = policyFromText(`version: 1\nrules:\n  - { id: a, subjects: { teams: [dev] }, tools: ["x"] }\n  - { id: f, subjects: { teams: [dev] }, upstreams: [files], tools: ["x"] }\n  - { id: g, subjects: { teams: [dev] }, upstreams: [git], tools: ["x"] }\n  - { id: d, effect: deny, subjects: { teams: [dev] }, upstreams: [git], tools: ["x"] }\n`).source;
  assert.deepEqual(lintPolicy(doc).map((w) => w.ruleId), ['g']);
  assert.throws(() => policyFromText('version: 1\nrules:\n  - { id: a, subjects: { any: true }, upstreams: ["a/b"], tools: [x] }\n'), /rules\[0\]\.upstreams\[0\]: an upstream name or pattern/);
  const cfg = (routes: unknown[], extra = {}) => GatewayConfigSchema.safeParse({ listen: '127.0.0.1:0', tls: { cert: 'c', key: 'k', pki: 'p' }, routes, ...extra });
  assert.match(JSON.stringify(cfg([{ path: '/a', upstream: 'http://127.0.0.1:1/' }]).error?.issues), /give each route a policy, or a shared policy at the top/);
  assert.match(JSON.stringify(cfg([{ path: '/x/a', upstream: 'http://127.0.0.1:1/' }, { path: '/y/a', upstream: 'http://127.0.0.1:1/' }], { policy: 'p' }).error?.issues), /two routes have one upstream name/);
  assert.equal(cfg([{ path: '/x/a', upstream: 'http://127.0.0.1:1/' }, { path: '/y/a', name: 'a2', upstream: 'http://127.0.0.1:1/' }], { policy: 'p' }).success, true);
});
