/**
 * gateway.yaml `decisions:` (#25): a real gateway in front of a real SDK upstream sends its
 * decisions to the `decisions` table of a real PostgreSQL (test/support/postgres.ts) through a
 * role granted INSERT alone, beside its JSON-lines `audit:` file; what is queued at SIGTERM is
 * sent before the gateway stops; the console's table backend tallies them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import pg from 'pg';
import { migrate } from '../../src/ca/store/postgres-store.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { postgresDecisionSource } from '../../src/console/decisions-postgres.js';
import { loadGatewayConfig } from '../../src/gateway/config.js';
import { startGateway } from '../../src/gateway/run.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';
import type { TestPostgres } from '../support/postgres.js';
import { insertOnlyGrants, usePostgresWithRoles } from '../support/postgres-roles.js';

const server = usePostgresWithRoles('gw_decisions');
let pgs: TestPostgres;
let upstream: http.Server;

before(async () => {
  upstream = http.createServer(async (req, res) => {
    const server = new McpServer({ name: 'up', version: '1' });
    for (const name of ['read_file', 'write_file']) server.registerTool(name, { description: name }, async () => ({ content: [{ type: 'text', text: `${name} ran` }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close());
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
});

after(async () => {
  upstream?.close();
});

test("the gateway's decisions reach the decisions table through an INSERT-only role, and its audit file too", { timeout: 90_000 }, async () => {
  pgs = server.pg;
  await migrate(pgs.url);
  const writer = await server.role(pgs.url, insertOnlyGrants);
  const admin = new pg.Client({ connectionString: pgs.url });
  await admin.connect();
  try {
    const pki = await makePki();
    const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
    const b = await pki.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
    fs.writeFileSync(path.join(pki.base, 'policy.yaml'), 'version: 1\nrules:\n  - id: dev-read\n    subjects: { teams: [dev] }\n    tools: [read_file]\n');
    const auditFile = path.join(pki.base, 'audit.jsonl');
    fs.writeFileSync(
      path.join(pki.base, 'gateway.yaml'),
      [
        'listen: 127.0.0.1:0',
        `tls: { cert: ${srv.files.cert}, key: ${srv.files.key}, pki: ${pki.pki} }`,
        'policy: policy.yaml',
        'routes:',
        `  - { path: /mcp/files, upstream: "http://127.0.0.1:${(upstream.address() as { port: number }).port}/mcp" }`,
        `audit: ${auditFile}`,
        // a long flush interval: the rows can only be there because stop() sent what was queued
        `decisions: { store: "${writer}", source: gw-test, flushMs: 60000 }`,
        '',
      ].join('\n'),
    );
    const logs: string[] = [];
    const gw = await startGateway(loadGatewayConfig(path.join(pki.base, 'gateway.yaml')), (l) => logs.push(l));
    try {
      const agent = createMtlsAgent(bundleOf({ cert: b.files.cert, key: b.files.key as string, ca: b.files.ca }));
      const client = new Client({ name: 'bob', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`https://localhost:${gw.address.port}/mcp/files`), { fetch: createMtlsFetch(agent) as typeof fetch }));
      try {
        assert.equal(((await client.callTool({ name: 'read_file', arguments: {} })) as { content: { text: string }[] }).content[0]!.text, 'read_file ran');
        await client.callTool({ name: 'write_file', arguments: {} }).catch(() => undefined);
        await client.callTool({ name: 'write_file', arguments: {} }).catch(() => undefined);
      } finally {
        await client.close();
        await agent.close();
      }
      assert.equal((await admin.query('SELECT count(*)::int AS n FROM decisions')).rows[0].n, 0, 'nothing sent before the flush interval or a full batch');
    } finally {
      await gw.stop();
    }
    const rows = (await admin.query("SELECT principal, target, allowed, rule_id, source FROM decisions WHERE method = 'tools/call' ORDER BY id")).rows;
    assert.deepEqual(
      rows.map((r) => [r.target, r.allowed, r.rule_id, r.source]),
      [
        ['read_file', true, 'dev-read', 'gw-test'],
        ['write_file', false, null, 'gw-test'],
        ['write_file', false, null, 'gw-test'],
      ],
      logs.join('\n'),
    );
    assert.match(rows[0].principal, /\/user\/bob$/);
    const fileLines = fs.readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; method?: string; target?: string });
    assert.deepEqual(fileLines.filter((l) => l.event === 'decision' && l.method === 'tools/call').map((l) => l.target), ['read_file', 'write_file', 'write_file'], 'the audit file has them too');
    const pool = new pg.Pool({ connectionString: pgs.url, max: 2 });
    try {
      const r = await postgresDecisionSource(async () => pool).query({ tool: 'write_file' }, new Date());
      assert.deepEqual([r.denied, r.byPrincipal.length], [2, 1]);
    } finally {
      await pool.end();
    }
  } finally {
    await admin.end();
  }
});

test('`audit:` is a file: a postgres:// URL there is refused with the way to send decisions to PostgreSQL', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-audit-'));
  const file = path.join(dir, 'gateway.yaml');
  fs.writeFileSync(file, 'listen: 127.0.0.1:0\ntls: { cert: a.crt, key: a.key, ca: ca.crt }\npolicy: p.yaml\nroutes:\n  - { path: /mcp, upstream: "http://127.0.0.1:1/mcp" }\naudit: postgres://mcp_decisions@db/mcp_ca\n');
  assert.throws(() => loadGatewayConfig(file), /audit: is a file path; to send decisions to PostgreSQL use `decisions: \{ store: postgres:\/\/\.\.\. \}`/);
  fs.rmSync(dir, { recursive: true, force: true });
});
