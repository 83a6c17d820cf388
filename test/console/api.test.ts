/**
 * The console's JSON API over ca serve's real TLS listener, without a browser: who may view and
 * act (config.yaml console.view / console.act), the CSRF guard's every condition, revoke's
 * checks, and the decisions file reader on a log with torn and foreign lines.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { createConsole } from '../../src/console/console.js';
import { queryDecisions, readDecisionLines } from '../../src/console/decisions.js';
import { tmpDir } from '../support/cli.js';
import { clientCreds, request, startServer, YEAR, type Creds } from '../support/ca-serve.js';

describe('console API', { timeout: 60_000 }, () => {
  let ca: Authority;
  let port: number;
  let rootPem: string;
  let stop: () => Promise<void>;
  let audit: Record<string, unknown>[];
  const c: Record<string, Creds> = {};
  const session = async (who: Creds) => (await request(port, rootPem, { path: '/console/api/session', creds: who })).json() as { csrf: string; mayAct: boolean };
  const post = (who: Creds, p: string, body: unknown, headers: Record<string, string> = {}) =>
    request(port, rootPem, { method: 'POST', path: p, creds: who, body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

  before(async () => {
    const base = tmpDir('console-api-');
    const dir = path.join(base, 'pki');
    initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
    const cfgFile = path.join(dir, 'config.yaml');
    const cfg = YAML.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.console = { view: { teams: ['sre'] }, act: { users: ['ops'] } };
    fs.writeFileSync(cfgFile, YAML.stringify(cfg));
    ca = Authority.open(dir);
    rootPem = ca.rootPem;
    c.ops = await clientCreds(ca, { id: 'ops' });
    c.admin = await clientCreds(ca, { id: 'root-ish', roles: ['ca-admin'] }); // not named: config.yaml replaced the default
    c.sre = await clientCreds(ca, { id: 'sam', teams: ['sre'] });
    c.bob = await clientCreds(ca, { id: 'bob', teams: ['dev'] });
    const s = await startServer({ dir, ca } as never, { console: createConsole({ authority: ca, audit: (e) => audit.push(e), assetsDir: base }) });
    port = s.port;
    audit = s.audit;
    stop = () => s.server.shutdown(200);
  });
  after(() => stop?.());

  it('view and act come from config.yaml; a default ca-admin is nobody once they are set', async () => {
    assert.equal((await session(c.ops!)).mayAct, true);
    assert.equal((await session(c.sre!)).mayAct, false);
    const admin = await request(port, rootPem, { path: '/console/api/overview', creds: c.admin! });
    assert.equal(admin.status, 403);
    assert.equal(admin.json().error?.code, 'CONSOLE_FORBIDDEN');
    const s = await session(c.sre!);
    const r = await post(c.sre!, `/console/api/certificates/${c.bob!.serial}/revoke`, { reason: 'keyCompromise', confirm: c.bob!.serial }, { 'x-console-csrf': s.csrf });
    assert.equal(r.status, 403);
    assert.equal(r.json().error?.code, 'CONSOLE_READ_ONLY');
    const none = await request(port, rootPem, { path: '/console/api/overview' });
    assert.equal(none.status, 401);
    assert.equal(none.json().error?.code, 'CERT_REQUIRED');
  });

  it('every CSRF condition is checked: the token of another certificate, a foreign Origin or site, a form content type', async () => {
    const mine = await session(c.ops!);
    const theirs = await session(c.sre!);
    const body = { kind: 'user', id: 'x1', ttl: '5m' };
    const tokens = () => ca.store.readTokens().then((t) => t.length);
    const before = await tokens();
    const cases: [string, Record<string, string>][] = [
      ['no token', {}],
      ['another certificate\'s token', { 'x-console-csrf': theirs.csrf }],
      ['foreign Origin', { 'x-console-csrf': mine.csrf, origin: 'https://evil.test' }],
      ['cross-site fetch', { 'x-console-csrf': mine.csrf, 'sec-fetch-site': 'cross-site' }],
      ['text/plain', { 'x-console-csrf': mine.csrf, 'content-type': 'text/plain' }],
    ];
    for (const [name, headers] of cases) {
      const r = await post(c.ops!, '/console/api/tokens', body, headers);
      assert.equal(r.status, 403, name);
      assert.equal(r.json().error?.code, 'CSRF_REFUSED', name);
    }
    assert.equal(await tokens(), before, 'no token was made');
    const ok = await post(c.ops!, '/console/api/tokens', body, { 'x-console-csrf': mine.csrf, origin: `https://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['cache-control'], 'no-store');
    const secret = ok.json().secret as string;
    assert.match(secret, /^mcpt_/);
    assert.ok(!JSON.stringify(audit).includes(secret), 'no secret in the audit lines');
    assert.ok(!fs.readFileSync(ca.layout.audit, 'utf8').includes(secret), 'nor in the store\'s audit log');
  });

  it('revoke needs a known reason (not a prototype key) and the serial repeated', async () => {
    const s = await session(c.ops!);
    const h = { 'x-console-csrf': s.csrf };
    const p = `/console/api/certificates/${c.bob!.serial}/revoke`;
    for (const reason of ['toString', 'cACompromise', 'nope', 7]) {
      const r = await post(c.ops!, p, { reason, confirm: c.bob!.serial }, h);
      assert.equal(r.json().error?.code, 'BAD_REASON', String(reason));
    }
    assert.equal((await post(c.ops!, p, { reason: 'keyCompromise' }, h)).json().error?.code, 'NOT_CONFIRMED');
    assert.equal((await post(c.ops!, '/console/api/certificates/ABC/revoke', { reason: 'keyCompromise', confirm: 'ABC' }, h)).json().error?.code, 'BAD_SERIAL');
    const ok = await post(c.ops!, p, { reason: 'affiliationChanged', confirm: c.bob!.serial }, h);
    assert.equal(ok.status, 200);
    assert.equal((await post(c.ops!, p, { reason: 'affiliationChanged', confirm: c.bob!.serial }, h)).json().error?.code, 'ALREADY_REVOKED');
    assert.match(fs.readFileSync(ca.layout.audit, 'utf8'), /"event":"cert.revoke","actor":"spiffe:\/\/acme.test\/user\/ops"/);
  });
});

describe('the decisions file', () => {
  it('skips torn, foreign and non-JSON lines; keeps decisions and refused certificates; tallies per tool, principal and rule', () => {
    const f = path.join(tmpDir('decisions-'), 'd.jsonl');
    const t = (m: number) => new Date(Date.UTC(2026, 0, 1, 12, m)).toISOString();
    const line = (o: object) => `${JSON.stringify(o)}\n`;
    fs.writeFileSync(
      f,
      'not json\n' +
        line({ time: t(0), event: 'decision', principal: 'spiffe://a/user/bob', method: 'tools/call', target: 'deploy', allowed: false, ruleId: 'dev-no-deploy', reason: 'denied', args: { secret: 's3cr3t' } }) +
        line({ time: t(1), event: 'decision', principal: 'spiffe://a/user/alice', method: 'tools/call', target: 'deploy', allowed: true, ruleId: 'sre-deploy' }) +
        line({ time: t(2), event: 'reload' }) +
        line({ time: 'yesterday', event: 'decision', allowed: true }) +
        line({ time: t(3), event: 'auth.refused', reason: 'certificate_revoked' }) +
        '{"time":"' + t(4) + '","event":"decision","allo',
    );
    const lines = readDecisionLines(f);
    assert.equal(lines.length, 3);
    assert.ok(!JSON.stringify(lines).includes('s3cr3t'), 'arguments are never kept');
    const q = queryDecisions(lines, {}, new Date(Date.UTC(2026, 0, 1, 13)));
    assert.deepEqual([q.total, q.allowed, q.denied], [3, 1, 2]);
    assert.deepEqual(q.byRule.find((r) => r.key === 'dev-no-deploy'), { key: 'dev-no-deploy', allow: 0, deny: 1 });
    assert.equal(q.series.reduce((n, b) => n + b.allow + b.deny, 0), 3);
    assert.equal(queryDecisions(lines, { tool: 'deploy', outcome: 'deny' }, new Date(Date.UTC(2026, 0, 1, 13))).total, 1);
    // only the last bytes are read: the first (cut) line is dropped
    assert.equal(readDecisionLines(f, 200).length <= 2, true);
    assert.deepEqual(readDecisionLines(path.join(path.dirname(f), 'missing.jsonl')), []);
  });
});
