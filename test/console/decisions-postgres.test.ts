/**
 * The PostgreSQL decisions store (#25) against a real PostgreSQL (test/support/postgres.ts):
 * migration 5 on an existing v4 database and raced by two replicas; a role granted INSERT on
 * `decisions` alone writes through createAuditLog('postgres://...') and can do nothing else;
 * the table backend answers exactly what the file backend answers for the same lines; retention
 * prunes in batches; a database that is down costs dropped, counted lines and one warning, never
 * a blocked write; and a real mTLS MCP server's denials appear on the console's decisions API of
 * a `ca serve` on that store.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/ca/store/postgres-migrations.js';
import { migrate, PostgresStore } from '../../src/ca/store/postgres-store.js';
import { createConsole } from '../../src/console/console.js';
import { fileDecisionSource, type DecisionQuery } from '../../src/console/decisions.js';
import { postgresDecisionSource, pruneDecisions } from '../../src/console/decisions-postgres.js';
import { createAuditLog } from '../../src/mtls/audit.js';
import { createDecisionsSink, type DecisionsSink } from '../../src/mtls/audit-postgres.js';
import { tmpDir } from '../support/cli.js';
import { clientCreds, makeCa, request, startServer } from '../support/ca-serve.js';
import { connect, startFixture } from '../support/mcp.js';
import { insertOnlyGrants, sql, usePostgresWithRoles } from '../support/postgres-roles.js';

const server = usePostgresWithRoles();

/** A role that may INSERT into decisions and nothing else, as docs/operations.md grants it; its URL. */
const insertOnlyRole = (url: string): Promise<string> => server.role(url, insertOnlyGrants);

describe('decisions in PostgreSQL', { timeout: 120_000 }, () => {
  it('migration 5 upgrades a v4 database in place, and two replicas racing it apply it once', async () => {
    assert.ok(SCHEMA_VERSION >= 5);
    const url = await server.pg.newDatabase();
    // a v4 database with a row in it, as the release before this one left it
    await sql(url, 'CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    for (let n = 1; n <= 4; n++) await sql(url, `BEGIN; ${MIGRATIONS[n - 1]}; INSERT INTO schema_migrations (version) VALUES (${n}); COMMIT;`);
    await sql(url, "INSERT INTO used_once (key, expires_at) VALUES ('k', now() + interval '1 day')");
    const results = await Promise.all([migrate(url), migrate(url)]);
    // each saw v4, or a later version when it read it after the other had committed (under load)
    assert.ok(results.some((r) => r.from === 4) && results.every((r) => r.from >= 4 && r.from <= SCHEMA_VERSION), JSON.stringify(results));
    const later = Array.from({ length: SCHEMA_VERSION - 4 }, (_, i) => i + 5);
    assert.deepEqual(results.flatMap((r) => r.applied).sort((x, y) => x - y), later, 'each migration from 5 on applied once, by one replica or the other');
    assert.deepEqual(results.map((r) => r.to), [SCHEMA_VERSION, SCHEMA_VERSION]);
    assert.equal((await sql(url, 'SELECT count(*)::int AS n FROM used_once')).rows[0]?.n, 1, 'the v4 data is kept');
    const idx = (await sql<{ indexname: string }>(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'decisions' ORDER BY 1")).rows.map((r) => r.indexname);
    assert.deepEqual(idx, ['decisions_allowed_time', 'decisions_pkey', 'decisions_principal_time', 'decisions_rule_time', 'decisions_target_time', 'decisions_time']);
  });

  it('a role granted INSERT alone writes through createAuditLog and can read, change or delete nothing', async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    const writerUrl = await insertOnlyRole(url);
    const sink = createAuditLog(writerUrl, { flushMs: 50, source: 'srv-a' }) as DecisionsSink;
    sink.write({ event: 'decision', principal: 'spiffe://acme.test/user/bob', method: 'tools/call', target: 'deploy', allowed: false, ruleId: null, reason: 'no rule allows it', args: { secret: 'x' } });
    sink.write({ event: 'reload', what: 'crl' }); // not a decision: not stored
    await sink.close();
    assert.deepEqual(sink.stats(), { written: 1, dropped: 0, queued: 0 });
    const rows = (await sql(url, 'SELECT event, principal, target, allowed, rule_id, reason, source FROM decisions')).rows;
    assert.deepEqual(rows, [{ event: 'decision', principal: 'spiffe://acme.test/user/bob', target: 'deploy', allowed: false, rule_id: null, reason: 'no rule allows it', source: 'srv-a' }]);
    for (const stmt of ['SELECT * FROM decisions', "UPDATE decisions SET allowed = true", 'DELETE FROM decisions', 'TRUNCATE decisions', 'SELECT * FROM certificates']) {
      await assert.rejects(sql(writerUrl, stmt), /permission denied/, stmt);
    }
    // and the CA's own role may delete (retention) but never rewrite a row
    await assert.rejects(sql(url, 'UPDATE decisions SET allowed = true'), /append-only/);
  });

  it('the table answers what the file answers for the same lines: filters, series, tallies, recent', async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    const now = new Date('2026-12-02T12:00:00Z');
    const lines: Record<string, unknown>[] = [];
    const who = ['alice', 'bob', 'carol'];
    const tools = ['deploy', 'search', 'who'];
    for (let i = 0; i < 300; i++) {
      const t = new Date(now.getTime() - (i * 7919) % (6 * 3_600_000));
      if (i % 17 === 0) lines.push({ time: t.toISOString(), event: 'auth.refused', reason: 'revoked', principal: `spiffe://acme.test/user/${who[i % 3]}` });
      else lines.push({ time: t.toISOString(), event: 'decision', principal: `spiffe://acme.test/user/${who[i % 3]}`, method: 'tools/call', target: tools[(i >> 1) % 3], allowed: i % 3 !== 1, ruleId: i % 3 === 1 ? null : `rule-${i % 2}`, reason: 'r' });
    }
    lines.sort((a, b) => String(a.time).localeCompare(String(b.time)));
    const file = path.join(tmpDir('decisions-pg-'), 'audit.jsonl');
    fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    let i = 0;
    const clocked = createDecisionsSink(url, { batchSize: 64, clock: () => new Date(String(lines[i]!.time)) });
    for (; i < lines.length; i++) clocked.write(lines[i] as never);
    await clocked.close();
    const store = new PostgresStore(url);
    const table = postgresDecisionSource(() => store.decisionsPool());
    const fileSrc = fileDecisionSource(file);
    const queries: DecisionQuery[] = [{}, { outcome: 'deny' }, { tool: 'deploy' }, { principal: 'bob' }, { principal: 'spiffe://acme.test/user/alice' }, { rule: 'rule-0', sinceMs: now.getTime() - 3_600_000 }, { sinceMs: now.getTime() - 2 * 3_600_000, outcome: 'allow' }];
    try {
      for (const q of queries) {
        const [a, b] = [await fileSrc.query(q, now), await table.query(q, now)];
        assert.ok(a.total > 0, JSON.stringify(q));
        assert.deepEqual(b, a, `the same answer for ${JSON.stringify(q)}`);
      }
      assert.deepEqual(await table.recentRefusals(10), await fileSrc.recentRefusals(10));
    } finally {
      await store.close();
    }
  });

  it('retention prunes old rows in batches, one replica at a time', async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    await sql(url, "INSERT INTO decisions (time, event, allowed) SELECT now() - (g || ' hours')::interval, 'decision', false FROM generate_series(1, 250) g");
    const pool = new pg.Pool({ connectionString: url, max: 3 });
    try {
      const cut = new Date(Date.now() - 100.5 * 3_600_000);
      const [a, b] = await Promise.all([pruneDecisions(pool, cut, { batch: 30, pauseMs: 5 }), pruneDecisions(pool, cut, { batch: 30, pauseMs: 5 })]);
      assert.equal(a + b, 150);
      assert.ok(a === 0 || b === 0, `one replica pruned, the other skipped (${a}, ${b})`);
      assert.equal((await pool.query('SELECT count(*)::int AS n FROM decisions')).rows[0].n, 100);
    } finally {
      await pool.end();
    }
  });

  it('ca serve prunes past config.yaml console.decisions.retention (createConsole on a PostgreSQL store)', async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    await sql(url, "INSERT INTO decisions (time, event, allowed, target) VALUES (now() - interval '3 days', 'decision', false, 'old'), (now() - interval '1 hour', 'decision', false, 'fresh')");
    const t = makeCa();
    const cfgFile = path.join(t.dir, 'config.yaml');
    const cfg = YAML.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.console = { decisions: { retention: '2d' } };
    fs.writeFileSync(cfgFile, YAML.stringify(cfg));
    const ca = Authority.open(t.dir, { store: new PostgresStore(url) });
    const logs: string[] = [];
    const c = createConsole({ authority: ca, assetsDir: t.dir, pruneEveryMs: 100, log: (m) => logs.push(m) });
    try {
      assert.equal(c.decisions?.kind, 'postgres');
      let left: string[] = [];
      for (let n = 0; n < 60; n++) {
        left = (await sql<{ target: string }>(url, 'SELECT target FROM decisions ORDER BY id')).rows.map((r) => r.target);
        if (left.length === 1) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(left, ['fresh'], logs.join('\n'));
      assert.ok(logs.some((l) => /deleted 1 row\(s\) older than 2d/.test(l)), logs.join('\n'));
    } finally {
      c.stop();
      await ca.store.close();
    }
  });

  it('a database that is down: write() returns at once, lines are dropped and counted, one warning', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    // a password never goes into a URL (config files, argv): refused before anything connects, and not repeated
    assert.throws(() => createAuditLog('postgres://writer:s3cret-pw@127.0.0.1/db'), (e: Error & { code?: string }) => e.code === 'USAGE' && /holds a password/.test(e.message) && !e.message.includes('s3cret-pw'));
    const warnings: string[] = [];
    const sink = createDecisionsSink(`postgres://nobody@127.0.0.1:${port}/none`, { flushMs: 20, batchSize: 10, maxQueue: 50, log: (m) => warnings.push(m) });
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) sink.write({ event: 'decision', principal: 'p', target: 't', allowed: false });
    const took = performance.now() - t0;
    assert.ok(took < 200, `1000 writes took ${took.toFixed(1)} ms`);
    await new Promise((r) => setTimeout(r, 300));
    await sink.close();
    const s = sink.stats();
    assert.equal(s.written, 0);
    assert.equal(s.dropped, 1000, 'queued ones dropped when their batch failed, the rest at the full queue');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /^warning: decisions: cannot write to postgres:\/\/nobody@127\.0\.0\.1:\d+\/none/);
  });

  it("a real mTLS MCP server's denials appear on the console's decisions API of ca serve on that store", async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    const writerUrl = await insertOnlyRole(url);
    const sink = createAuditLog(writerUrl, { flushMs: 50, source: 'mcp-test' }) as DecisionsSink;
    const fx = await startFixture({ audit: sink });
    const t = makeCa();
    const ca = Authority.open(t.dir, { store: new PostgresStore(url) });
    const admin = await clientCreds(ca, { id: 'ops', roles: ['ca-admin'] });
    const console_ = createConsole({ authority: ca, assetsDir: t.dir });
    const srv = await startServer({ ...t, ca }, { console: console_ });
    try {
      const bob = await connect(fx.url, fx.clients.bob);
      try {
        const denied = await bob.client.callTool({ name: 'deploy', arguments: { env: 'prod' } }).catch((e: Error) => e);
        assert.ok(denied instanceof Error || (denied as { isError?: boolean }).isError, 'bob may not deploy');
        await bob.client.callTool({ name: 'search', arguments: { q: 'x' } });
      } finally {
        await bob.close();
      }
      let body: { source: string; denied: number; byTool: { key: string; deny: number }[]; recent: { principal?: string; target?: string; allowed: boolean }[] } | undefined;
      for (let n = 0; n < 50; n++) {
        const r = await request(srv.port, t.rootPem, { path: '/console/api/decisions?outcome=deny&since=1h', creds: admin });
        assert.equal(r.status, 200, r.text());
        body = r.json() as typeof body;
        if (body!.denied > 0) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal(body!.source, 'postgres');
      assert.equal(body!.denied, 1);
      assert.deepEqual(body!.byTool.map((x) => [x.key, x.deny]), [['deploy', 1]]);
      assert.match(body!.recent[0]!.principal ?? '', /\/user\/bob$/);
      assert.equal(body!.recent[0]!.target, 'deploy');
      const overview = (await request(srv.port, t.rootPem, { path: '/console/api/overview', creds: admin })).json() as { decisionsSource: string; recentRefusals: { target?: string }[] };
      assert.equal(overview.decisionsSource, 'postgres');
      assert.equal(overview.recentRefusals[0]?.target, 'deploy');
      const all = (await request(srv.port, t.rootPem, { path: '/console/api/decisions?since=1h', creds: admin })).json() as { allowed: number };
      assert.ok(all.allowed >= 1, 'the allowed search is there too');
    } finally {
      await sink.close();
      await fx.close();
      console_.stop();
      await srv.server.shutdown(500);
      await ca.store.close();
    }
  });
});
