/**
 * Hostile decision lines against the PostgreSQL decisions store (#25 review), real PostgreSQL
 * (test/support/postgres.ts): a line whose text a caller chose (a tool name is the model's or
 * the client's word) never makes the batch it travels in fail, so honest lines beside it are
 * written; and a writer role granted as docs/operations.md says cannot pick row ids, so it cannot
 * plant ids the sequence hands out later and make every other server's INSERTs fail; and a
 * database that stops answering (a lock on the table) never holds the sink's close() for long;
 * and the console's reads of the table never take the store's pool from /renew and /sign, nor
 * come back huge or fail for good on rows a compromised server's role inserted directly.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import pg from 'pg';
import { migrate, PostgresStore } from '../../src/ca/store/postgres-store.js';
import { postgresDecisionSource } from '../../src/console/decisions-postgres.js';
import { createDecisionsSink } from '../../src/mtls/audit-postgres.js';
import { sql, usePostgresWithRoles } from '../support/postgres-roles.js';

const server = usePostgresWithRoles();

/** The writer role exactly as docs/operations.md grants it (the SQL is read from the page). */
async function documentedWriterRole(url: string): Promise<string> {
  const fs = await import('node:fs');
  const doc = fs.readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
  const block = /```sql\n(\s*CREATE ROLE mcp_decisions[\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(block, 'docs/operations.md has the GRANTs of the decisions writer');
  return server.role(url, (role, database) => block.replace(/mcp_decisions/g, role).replace(/DATABASE mcp_ca/g, `DATABASE ${database}`).replace(/ PASSWORD '\.\.\.'/, ''));
}

const honest = (i: number) => ({ event: 'decision' as const, principal: 'spiffe://acme.test/user/alice', method: 'tools/call', target: `read_${i}`, allowed: true, ruleId: 'readers', reason: 'allowed' });

describe('hostile decision lines in PostgreSQL', { timeout: 120_000 }, () => {
  it('a NUL in a tool name, principal, rule or reason does not drop the honest lines of its batch', async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    const writer = await documentedWriterRole(url);
    const warnings: string[] = [];
    const sink = createDecisionsSink(writer, { flushMs: 60_000, batchSize: 1000, log: (m) => warnings.push(m) });
    sink.write(honest(1));
    // what a client may send as tools/call's name (JSON "\u0000"); PostgreSQL's text refuses 0x00
    sink.write({ event: 'decision', principal: 'spiffe://acme.test/user/mallory\u0000', method: 'tools/call', target: 'deploy\u0000; --', allowed: false, ruleId: 'r\u0000', reason: 'no rule allows deploy\u0000' });
    sink.write(honest(2));
    await sink.close();
    assert.deepEqual(sink.stats(), { written: 3, dropped: 0, queued: 0 }, warnings.join('\n'));
    const rows = (await sql<{ principal: string; target: string }>(url, 'SELECT principal, target, rule_id, reason FROM decisions ORDER BY id')).rows;
    assert.deepEqual(rows.map((r) => r.target), ['read_1', 'deploy\uFFFD; --', 'read_2']);
    assert.equal(rows[1]!.principal, 'spiffe://acme.test/user/mallory\uFFFD');
    // and the console reads it back as what it is, a name no honest tool has
    const db = new pg.Pool({ connectionString: url, max: 1 });
    try {
      const r = await postgresDecisionSource(async () => db).query({ tool: 'deploy\uFFFD; --' }, new Date());
      assert.equal(r.total, 1);
    } finally {
      await db.end();
    }
  });

  it('the documented writer role cannot choose row ids (planted ids would make every later INSERT fail)', async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    const writer = await documentedWriterRole(url);
    // a compromised server plants the ids the sequence hands out next
    await assert.rejects(
      sql(writer, "INSERT INTO decisions (id, time, event, allowed) SELECT g, now(), 'decision', true FROM generate_series(1, 1000) g"),
      /permission denied/,
      'the writer may not set id',
    );
    // nor may it move the sequence back onto rows already there
    await assert.rejects(sql(writer, "SELECT setval('decisions_id_seq', 1)"), /permission denied/);
    const sink = createDecisionsSink(writer, { flushMs: 60_000 });
    for (let i = 0; i < 3; i++) sink.write(honest(i));
    await sink.close();
    assert.deepEqual(sink.stats(), { written: 3, dropped: 0, queued: 0 });
  });
  it('a database that stops answering mid-INSERT (a lock held on the table) cannot hold close() forever', { timeout: 60_000 }, async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    const writer = await documentedWriterRole(url);
    const warnings: string[] = [];
    const sink = createDecisionsSink(writer, { flushMs: 60_000, log: (m) => warnings.push(m) });
    // the connection is made and the role checked before the stall
    sink.write(honest(0));
    await sink.flush();
    assert.equal(sink.stats().written, 1, warnings.join('\n'));
    // an operator's ALTER TABLE, a migration or a LOCK: the INSERT waits, the server does not answer
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query('BEGIN; LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE');
      for (let i = 1; i <= 1200; i++) sink.write(honest(i)); // three batches of 500 and more
      const t0 = Date.now();
      const closed = await Promise.race([sink.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('still waiting'), 30_000).unref())]);
      assert.equal(closed, 'closed', 'close() waited 30 s on a database that does not answer (a gateway stopping waits on it)');
      assert.ok(Date.now() - t0 < 20_000, `close took ${Date.now() - t0} ms`);
      assert.deepEqual(sink.stats(), { written: 1, dropped: 1200, queued: 0 });
      assert.equal(warnings.length, 1, warnings.join('\n'));
    } finally {
      await admin.query('ROLLBACK').catch(() => undefined);
      await admin.end();
    }
  });
  it("the console's decisions queries take one of the store's connections at most: /renew and /sign keep the rest", { timeout: 60_000 }, async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    const store = new PostgresStore(url); // the pool of ca serve's store: 10 connections
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await store.readIndex(); // connected, schema checked
      // queries that take long (a big table, a substring filter; here a lock makes them wait)
      await admin.query('BEGIN; LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE');
      const source = postgresDecisionSource(() => store.decisionsPool());
      // an operator's Decisions page, polled from ten tabs (or a script of a viewer): each answer is six queries
      const pages = Array.from({ length: 10 }, () => source.query({ principal: 'bob' }, new Date()).then(() => 'answered', (e: Error) => `refused: ${e.message}`));
      await new Promise((r) => setTimeout(r, 500));
      // what /renew and /sign do meanwhile: a read of the certificates table
      const t0 = Date.now();
      const renew = await Promise.race([store.readIndex().then(() => 'read'), new Promise((r) => setTimeout(() => r('waited for a connection'), 3000).unref())]);
      assert.equal(renew, 'read', "the store's pool was taken by the console's decisions queries");
      assert.ok(Date.now() - t0 < 3000);
      await admin.query('ROLLBACK');
      const answers = await Promise.all(pages);
      assert.ok(answers.every((a) => a === 'answered' || /busy|statement timeout/.test(a)), answers.join('\n'));
    } finally {
      await admin.query('ROLLBACK').catch(() => undefined);
      await admin.end();
      await store.close();
    }
  });
  it("a compromised server's rows with huge text cannot make the console's answer huge (the CA holds it in memory)", { timeout: 60_000 }, async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    const writer = await documentedWriterRole(url);
    // the role may INSERT what it likes: the sink cuts at 1024 characters, a direct INSERT does not
    // (principal, tool and rule are indexed, which bounds them at a few kB; method and reason are not)
    const big = crypto.randomBytes(3 * 1024 * 1024).toString('base64');
    await sql(writer, "INSERT INTO decisions (time, event, principal, method, target, allowed, rule_id, reason) SELECT now(), 'decision', 'spiffe://acme.test/user/m', $1 || g, NULL, false, 'r', $1 || g FROM generate_series(1, 3) g", [big]);
    const db = new pg.Pool({ connectionString: url, max: 1 });
    try {
      const r = await postgresDecisionSource(async () => db).query({}, new Date());
      const size = JSON.stringify(r).length;
      assert.ok(size < 200_000, `the answer is ${size} characters`);
      assert.equal(r.total, 3);
      const refusals = await postgresDecisionSource(async () => db).recentRefusals(10);
      assert.ok(JSON.stringify(refusals).length < 100_000);
    } finally {
      await db.end();
    }
  });
  it("one row dated where JavaScript has no date (infinity, the year 294000) does not break the Decisions page", { timeout: 60_000 }, async () => {
    const url = await server.pg.newDatabase();
    await migrate(url);
    const writer = await documentedWriterRole(url);
    const sink = createDecisionsSink(writer, { flushMs: 60_000 });
    sink.write({ ...honest(1), allowed: false, reason: 'no rule allows it' });
    await sink.close();
    for (const t of ['infinity', '294000-01-01 00:00:00+00', '-infinity', '4000-01-01 00:00:00 BC']) {
      await sql(writer, "INSERT INTO decisions (time, event, principal, target, allowed) VALUES ($1::timestamptz, 'decision', 'spiffe://acme.test/user/m', 'x', false)", [t]);
    }
    const db = new pg.Pool({ connectionString: url, max: 1 });
    try {
      const source = postgresDecisionSource(async () => db);
      const r = await source.query({}, new Date());
      assert.deepEqual(r.recent.map((l) => 'target' in l && l.target), ['read_1']);
      assert.equal(r.total, 1);
      assert.deepEqual((await source.recentRefusals(10)).map((l) => 'target' in l && l.target), ['read_1']);
      assert.equal((await source.query({ sinceMs: Date.now() - 3_600_000 }, new Date())).total, 1);
    } finally {
      await db.end();
    }
  });
});
