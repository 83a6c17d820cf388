/**
 * The console attacked (review of issue 25): what a web attacker on another origin could read
 * from the API's answers, a decisions file a compromised server fills, and who the audit names
 * for every certificate a console revocation revokes.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { CONSOLE_CSP, createConsole } from '../../src/console/console.js';
import { createDecisionReader, queryDecisions, readDecisionLines } from '../../src/console/decisions.js';
import { createWorkBudget } from '../../src/console/work-budget.js';
import { knownSubjects } from '../../src/console/policy-matrix.js';
import type { CertificateEntry } from '../../src/ca/list.js';
import { tmpDir } from '../support/cli.js';
import { clientCreds, request, startServer, YEAR, type Creds } from '../support/ca-serve.js';

describe('console security', { timeout: 60_000 }, () => {
  let ca: Authority;
  let port: number;
  let stop: () => Promise<void>;
  let decisionsFile: string;
  const c: Record<string, Creds> = {};
  const get = (p: string, who: Creds | undefined = c.ops) => request(port, ca.rootPem, { path: p, ...(who ? { creds: who } : {}) });

  before(async () => {
    const base = tmpDir('console-sec-');
    const dir = path.join(base, 'pki');
    initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
    const cfgFile = path.join(dir, 'config.yaml');
    const cfg = YAML.parse(fs.readFileSync(cfgFile, 'utf8'));
    decisionsFile = path.join(base, 'decisions.jsonl');
    cfg.console = { act: { users: ['ops'] }, view: { users: ['ops'] }, decisions: { file: decisionsFile }, policy: '../policy.yaml' };
    fs.writeFileSync(path.join(base, 'policy.yaml'), 'version: 1\nrules:\n  - id: everyone\n    subjects: { any: true }\n    tools: [search]\n');
    fs.writeFileSync(cfgFile, YAML.stringify(cfg));
    ca = Authority.open(dir);
    c.ops = await clientCreds(ca, { id: 'ops' });
    for (let i = 0; i < 40; i++) await ca.issueClient({ kind: 'user', id: `u${i}`, teams: [], roles: [] });
    const s = await startServer({ dir, ca } as never, { console: createConsole({ authority: ca, assetsDir: base }) });
    port = s.port;
    stop = () => s.server.shutdown(200);
  });
  after(() => stop?.());

  it('every API answer, not only refusals, carries nosniff, CORP same-origin and the CSP (no cross-origin read, no framing)', async () => {
    for (const p of ['/console/api/session', '/console/api/overview', '/console/api/certificates', '/console/api/tokens', '/console/api/decisions']) {
      const r = await get(p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
      assert.equal(r.headers['cross-origin-resource-policy'], 'same-origin', p);
      assert.equal(r.headers['content-security-policy'], CONSOLE_CSP, p);
      assert.equal(r.headers['cache-control'], 'no-store', p);
      assert.equal(r.headers['access-control-allow-origin'], undefined, p);
    }
  });

  it('a decisions file of many short lines (a compromised server writes them) still answers', async () => {
    const now = Date.now();
    const lines: string[] = [];
    for (let i = 0; i < 250_000; i++) lines.push(`{"time":"${new Date(now - i * 1000).toISOString()}","event":"decision","allowed":false}`);
    fs.writeFileSync(decisionsFile, `${lines.join('\n')}\n`);
    try {
      const r = await get('/console/api/decisions');
      assert.equal(r.status, 200, r.text().slice(0, 300));
      assert.ok((r.json().total as number) >= 150_000); // at most MAX_LINES (200k) are kept
      assert.equal((await get('/console/api/overview')).status, 200);
    } finally {
      fs.rmSync(decisionsFile, { force: true });
    }
  });

  it('the matrix and the playground refuse a list of tools that would make millions of cells (a viewer blocking the CA)', async () => {
    const s = (await get('/console/api/session')).json() as { csrf: string };
    const tools = Array.from({ length: 9_000 }, (_, i) => `t${i}`).join(',');
    const t0 = performance.now();
    const r = await request(port, ca.rootPem, { method: 'POST', path: '/console/api/policy/playground', creds: c.ops!, body: JSON.stringify({ policy: 'version: 1\nrules: []\n', tools }), headers: { 'content-type': 'application/json', 'x-console-csrf': s.csrf } });
    const ms = performance.now() - t0;
    assert.equal(r.status, 400, `${r.status} after ${Math.round(ms)} ms, ${r.body.length} bytes`);
    assert.equal(r.json().error?.code, 'TOO_MANY_TOOLS');
    const g = await get(`/console/api/policy/matrix?tools=${Array.from({ length: 1500 }, (_, i) => `t${i}`).join(',')}`);
    assert.equal(g.json().error?.code, 'TOO_MANY_TOOLS');
    assert.equal((await get('/console/api/policy/matrix?tools=a,b')).status, 200);
  });

  it('a certificate of another CA with the same trust domain and id, or a revoked one, opens nothing; the CA certificates and unknown serials cannot be revoked', async () => {
    const otherDir = path.join(tmpDir('console-sec-other-'), 'pki');
    initCa({ dir: otherDir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
    const forged = await clientCreds(Authority.open(otherDir), { id: 'ops' });
    const f = await get('/console/api/session', forged);
    assert.equal(f.status, 401, f.text());
    assert.equal(f.json().error?.code, 'CERT_UNTRUSTED');
    const page = await get('/console/', forged);
    assert.equal(page.status, 401);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    const ops2 = await clientCreds(ca, { id: 'ops' });
    const s = (await get('/console/api/session', ops2)).json() as { csrf: string };
    const revoke = (serial: string, who: Creds = ops2) => request(port, ca.rootPem, { method: 'POST', path: `/console/api/certificates/${serial}/revoke`, creds: who, body: JSON.stringify({ reason: 'keyCompromise', confirm: serial }), headers: { 'content-type': 'application/json', 'x-console-csrf': s.csrf } });
    for (const serial of [ca.intermediate.serial, ca.root.serial, Authority.open(otherDir).intermediate.serial, 'deadbeef']) {
      const r = await revoke(serial);
      assert.equal(r.status, 404, `${serial}: ${r.text()}`);
    }
    assert.equal((await revoke(ops2.serial)).status, 200, 'an operator may revoke their own certificate');
    const gone = await get('/console/api/session', ops2);
    assert.equal(gone.status, 403);
    assert.equal(gone.json().error?.code, 'CERT_REVOKED');
  });

  it('the policy pages share a bounded part of the CA\'s time: past it, 429 CONSOLE_BUSY, the rest of the CA unaffected', async () => {
    // a share of 1 µs a minute: since af70e3b the time a request waits for the worker is not charged,
    // and what the CA thread itself spends on a small playground can stay under 1 ms (Node 22 in CI)
    const s2 = await startServer({ dir: ca.layout.dir, ca } as never, { console: createConsole({ authority: ca, policyWorkMsPerMinute: 0.001 }) });
    try {
      const at = (p: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) => request(s2.port, ca.rootPem, { path: p, creds: c.ops!, ...init });
      const csrf = (await at('/console/api/session')).json().csrf as string;
      const play = () => at('/console/api/policy/playground', { method: 'POST', body: JSON.stringify({ policy: 'version: 1\nrules: []\n' }), headers: { 'content-type': 'application/json', 'x-console-csrf': csrf } });
      assert.equal((await play()).status, 200);
      const busy = await play();
      assert.equal(busy.status, 429, busy.text());
      assert.equal(busy.json().error?.code, 'CONSOLE_BUSY');
      assert.match(String(busy.headers['retry-after']), /^\d+$/);
      assert.equal((await at('/console/api/policy/matrix')).json().error?.code, 'CONSOLE_BUSY');
      assert.equal((await at('/console/api/overview')).status, 200, 'the other pages answer');
    } finally {
      await s2.server.shutdown(200);
    }
  });

  it('static files: only the three built files; encoded dots, backslashes, NUL and doubled slashes reach nothing else', async () => {
    fs.writeFileSync(path.join(path.dirname(ca.layout.dir), 'app.js'), 'console.log(1)');
    for (const p of ['/console/%2e%2e/pki/config.yaml', '/console/..%2fpki%2fconfig.yaml', '/console/%2e%2e%2fpki/config.yaml', '/console/app.js%00', '/console/app.js%00.css', '/console/%5c..%5cpki%5cconfig.yaml', '/console//app.js', '/console/./../console/pki/config.yaml', '/console/api/../../pki/config.yaml', '/console/index.html']) {
      const r = await get(p);
      assert.equal(r.status, 404, `${p}: ${r.status}`);
      assert.ok(!r.text().includes('trustDomain'), p);
    }
    assert.equal((await get('/console/app.js')).status, 200, 'the built file itself');
  });

  it('a revocation from the console names the operator in the store\'s audit for everything it revokes, delegated certificates too', async () => {
    const bob = await clientCreds(ca, { id: 'bob-d' });
    const agent = await ca.issueClient({ kind: 'service', id: 'agent', teams: [], roles: [], actingFor: { kind: 'user', id: 'bob-d', teams: [], roles: [] }, delegatedFrom: bob.serial } as never);
    const s = (await get('/console/api/session')).json() as { csrf: string };
    const r = await request(port, ca.rootPem, { method: 'POST', path: `/console/api/certificates/${bob.serial}/revoke`, creds: c.ops!, body: JSON.stringify({ reason: 'keyCompromise', confirm: bob.serial }), headers: { 'content-type': 'application/json', 'x-console-csrf': s.csrf } });
    assert.equal(r.status, 200, r.text());
    assert.deepEqual(r.json().alsoRevoked, [agent.record.serial]);
    const events = fs.readFileSync(ca.layout.audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'cert.revoke' && [bob.serial, agent.record.serial].includes(e.serial));
    assert.equal(events.length, 2);
    for (const e of events) assert.equal(e.actor, 'spiffe://acme.test/user/ops', `revocation of ${e.serial}`);
  });
});

describe('the decisions query', () => {
  it('a file of many lines is tallied without a stack overflow', () => {
    const f = path.join(tmpDir('decisions-big-'), 'd.jsonl');
    const t0 = Date.UTC(2026, 0, 1);
    const body: string[] = [];
    for (let i = 0; i < 200_000; i++) body.push(`{"time":"${new Date(t0 + i * 1000).toISOString()}","event":"decision","allowed":true}`);
    fs.writeFileSync(f, body.join('\n'));
    const q = queryDecisions(readDecisionLines(f), {}, new Date(t0 + 300_000_000));
    assert.equal(q.total, 200_000);
    assert.equal(q.series.reduce((n, b) => n + b.allow, 0), 200_000);
  });

  it('a reader reads only what was appended since; a replaced, truncated or overflowing file is read anew', () => {
    const dir = tmpDir('decisions-inc-');
    const f = path.join(dir, 'd.jsonl');
    const line = (i: number) => `${JSON.stringify({ time: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(), event: 'decision', target: `t${i}`, allowed: i % 2 === 0 })}\n`;
    fs.writeFileSync(f, Array.from({ length: 1000 }, (_, i) => line(i)).join(''));
    const r = createDecisionReader(f, 200_000);
    assert.equal(r.read().length, 1000);
    assert.equal(r.lastReadBytes, fs.statSync(f).size);
    fs.appendFileSync(f, line(1000));
    assert.equal(r.read().length, 1001);
    assert.equal(r.lastReadBytes, line(1000).length, 'only the appended line is read');
    const half = line(1001).slice(0, 20);
    fs.appendFileSync(f, half);
    assert.equal(r.read().length, 1001, 'a torn line is not a decision');
    fs.appendFileSync(f, line(1001).slice(20));
    const all = r.read();
    assert.equal(all.length, 1002);
    assert.equal(all.at(-1)?.target, 't1001');
    assert.deepEqual(all, readDecisionLines(f, 200_000), 'the same as a fresh read');
    // more appended than the window: the kept lines go, the window's first (cut) line too
    fs.appendFileSync(f, Array.from({ length: 5000 }, (_, i) => line(2000 + i)).join(''));
    const tail = r.read();
    assert.deepEqual(tail, readDecisionLines(f, 200_000));
    assert.ok(tail.length < 5000 && tail.at(-1)?.target === 't6999');
    fs.writeFileSync(`${f}.new`, line(1));
    fs.renameSync(`${f}.new`, f);
    assert.deepEqual(r.read().map((l) => l.target), ['t1'], 'a rotated file is read anew');
    fs.truncateSync(f, 0);
    assert.deepEqual(r.read(), []);
    fs.appendFileSync(f, line(7));
    assert.deepEqual(r.read().map((l) => l.target), ['t7']);
  });

  it('the work budget drains over the minute', async () => {
    let t = 0;
    const b = createWorkBudget(600, () => t);
    await b.run(async () => {
      t += 1000; // one second of work: over the 600 ms share
    });
    await assert.rejects(b.run(async () => undefined), { code: 'CONSOLE_BUSY' });
    t += 40_000; // 400 ms forgiven: 600 left, the share
    await assert.rejects(b.run(async () => undefined), { code: 'CONSOLE_BUSY' });
    t += 100;
    await b.run(async () => undefined);
  });

  it('the policy matrix does not show a delegated certificate\'s holder with the delegator\'s teams and roles', () => {
    const base = { op: 'issue', type: 'client', status: 'valid', keyType: 'ec-p256', keySource: 'generated', fingerprint: 'f', notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2027-01-01T00:00:00.000Z', issuedAt: '2026-01-01T00:00:00.000Z' };
    const entries = [
      { ...base, serial: '01', principal: 'spiffe://acme.test/service/agent', kind: 'service', id: 'agent', teams: [], roles: [] },
      { ...base, serial: '02', issuedAt: '2026-01-02T00:00:00.000Z', principal: 'spiffe://acme.test/service/agent', kind: 'service', id: 'agent', teams: ['sre'], roles: ['ca-admin'], actingFor: 'spiffe://acme.test/user/bob', delegatedFrom: '03' },
    ] as unknown as CertificateEntry[];
    assert.deepEqual(knownSubjects(entries, 'acme.test').map((s) => [s.id, s.roles]), [['agent', []]]);
  });

  it('a decisions file replaced by a FIFO or a device (by whoever can write its folder) does not hang the CA', { timeout: 10_000 }, () => {
    const dir = tmpDir('decisions-fifo-');
    const f = path.join(dir, 'd.jsonl');
    execFileSync('mkfifo', [f]);
    assert.throws(() => createDecisionReader(f).read(), /not a regular file/);
    assert.throws(() => readDecisionLines('/dev/zero'), /not a regular file/);
  });

  it('a line dated in the future (a compromised server writes it) does not break the page', () => {
    const now = new Date(Date.UTC(2026, 0, 1));
    const q = queryDecisions([{ time: '+275760-09-13T00:00:00.000Z', event: 'decision', allowed: false }], {}, now);
    assert.equal(q.total, 1);
    assert.equal(q.series.reduce((n, b) => n + b.deny, 0), 1);
  });
});
