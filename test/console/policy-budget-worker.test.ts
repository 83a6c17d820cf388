/**
 * The policy pages' share of the CA's time (work-budget.ts) counts the CA thread's part of a
 * request, not the time its work spends on the policy worker thread (policy-pool.ts), which is
 * not the CA's loop: one large playground request (about a second on the worker) must not spend
 * every operator's share for minutes. A real `ca serve` console over mTLS, the real worker.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { createConsole, type ConsoleHandler } from '../../src/console/console.js';
import { createWorkBudget } from '../../src/console/work-budget.js';
import { tmpDir } from '../support/cli.js';
import { clientCreds, request, startServer, YEAR, type Creds } from '../support/ca-serve.js';

describe('the policy pages\' budget and the worker thread', { timeout: 120_000 }, () => {
  it('time awaited elsewhere (the worker) is not charged', async () => {
    let t = 0;
    const b = createWorkBudget(600, () => t);
    await b.run(async () => {
      t += 5; // the CA thread: reading the inventory
      await b.elsewhere(
        new Promise<void>((r) =>
          setImmediate(() => {
            t += 10_000; // ten seconds on the worker, while this thread waits
            r();
          }),
        ),
      );
      t += 5; // writing the answer out
    });
    await b.run(async () => undefined); // 10 ms charged: well within the 600 ms share
    await b.run(async () => {
      t += 1000; // a second on the CA thread is charged
    });
    await assert.rejects(b.run(async () => undefined), { code: 'CONSOLE_BUSY' });
  });

  let ca: Authority;
  let ops: Creds;
  let port: number;
  let stop: () => Promise<void>;
  let console_: ConsoleHandler;
  before(async () => {
    const base = tmpDir('console-budget-');
    const dir = path.join(base, 'pki');
    initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
    fs.writeFileSync(path.join(base, 'policy.yaml'), YAML.stringify({ version: 1, rules: [{ id: 'r', subjects: { roles: ['ca-admin'] }, tools: ['read'] }] }));
    const cfgFile = path.join(dir, 'config.yaml');
    const cfg = YAML.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.console = { policy: '../policy.yaml' };
    fs.writeFileSync(cfgFile, YAML.stringify(cfg));
    ca = Authority.open(dir);
    ops = await clientCreds(ca, { id: 'ops', roles: ['ca-admin'] });
    // a share of 0.1 s per minute of the CA's thread: well under what the playground below
    // takes on the worker even on a fast machine (341 ms on Node 22 in CI, ~1 s on Node 20)
    console_ = createConsole({ authority: ca, assetsDir: base, policyWorkMsPerMinute: 100 });
    const s = await startServer({ dir, ca } as never, { console: console_ });
    port = s.port;
    stop = () => s.server.shutdown(500);
  });
  after(async () => {
    console_?.stop();
    await stop?.();
  });

  it('a playground request worked on for longer than the share on the worker leaves the next request its share', async () => {
    const at = (p: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) => request(port, ca.rootPem, { path: p, creds: ops, ...init });
    const csrf = (await at('/console/api/session')).json().csrf as string;
    // 560 rules with conditions, ~55 KiB: about a second to compile, on the worker
    const rules = Array.from({ length: 560 }, (_, i) => `- id: p${i}\n  subjects: {teams: [team${i % 7}]}\n  tools: [tool_${i % 400}]\n  when: args.env == "e${i}"\n`);
    const body = JSON.stringify({ policy: `version: 1\nrules:\n${rules.join('')}` });
    const t0 = Date.now();
    const play = await at('/console/api/policy/playground', { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-console-csrf': csrf } });
    const ms = Date.now() - t0;
    assert.equal(play.status, 200, play.text().slice(0, 300));
    assert.ok(ms > 200, `the playground took ${ms} ms, not twice the 100 ms share: too little to tell`);
    const next = await at('/console/api/policy/matrix');
    assert.equal(next.status, 200, `after a playground of ${ms} ms on the worker: ${next.text().slice(0, 300)}`);
  });
});
