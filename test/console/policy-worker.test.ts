/**
 * The console's policy work runs on a worker thread (src/console/policy-pool.ts), not on the
 * `ca serve` event loop: while an operator's large playground request (a 55 KiB policy of 560
 * rules compiled, then two matrices of principals x 500 tools) is worked on, a concurrent
 * /renew answers about as fast as with nothing running. The matrix request comes from curl, a
 * process of its own, as are the /renew requests (curl's own clock), so only the server's side
 * of them is on this thread. The ratio of the
 * /renew latencies (median during / median without) is printed; the same measure with the work
 * inline (`policyInline`) is what this test was made to fail with.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { createConsole, type ConsoleHandler } from '../../src/console/console.js';
import { tmpDir } from '../support/cli.js';
import { clientCreds, request, startServer, YEAR, type Creds } from '../support/ca-serve.js';

const run = promisify(execFile);
const BASELINE = 20;
const RENEWERS = 110;
const INLINE = process.env.CONSOLE_POLICY_INLINE === '1'; // the comparison: the work on the CA thread

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

describe('policy work off the CA thread', { timeout: 180_000 }, () => {
  let ca: Authority;
  let base: string;
  let port: number;
  let stop: () => Promise<void>;
  let console_: ConsoleHandler;
  let ops: Creds;
  const renewers: Creds[] = [];
  const files: Record<string, string> = {};

  before(async () => {
    base = tmpDir('console-worker-');
    const dir = path.join(base, 'pki');
    initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
    const tools = Array.from({ length: 500 }, (_, i) => `tool_${i}`);
    fs.writeFileSync(path.join(base, 'policy.yaml'), YAML.stringify({ version: 1, rules: tools.slice(0, 50).map((t, i) => ({ id: `r${i}`, subjects: { teams: [`team${i % 7}`] }, tools: [t], when: `args.size() == 0 || args.env == "t${i}"` })) }));
    const cfgFile = path.join(dir, 'config.yaml');
    const cfg = YAML.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.console = { policy: '../policy.yaml', tools };
    fs.writeFileSync(cfgFile, YAML.stringify(cfg));
    ca = Authority.open(dir);
    ops = await clientCreds(ca, { id: 'ops', roles: ['ca-admin'] });
    // the renewers are the matrix's principals too (each a valid client certificate)
    for (let i = 0; i < RENEWERS; i++) renewers.push(await clientCreds(ca, { id: `renewer${i}`, teams: [`team${i % 7}`, `team${(i * 3) % 7}`] }));
    console_ = createConsole({ authority: ca, assetsDir: base, policyWorkMsPerMinute: 600_000, policyInline: INLINE });
    const s = await startServer({ dir, ca } as never, { console: console_, renewRate: { burst: 1000, perMinute: 1000 } });
    port = s.port;
    stop = () => s.server.shutdown(500);
    // the playground text: 560 rules with conditions, ~55 KiB (the body limit is 64 KiB)
    const rules = Array.from({ length: 560 }, (_, i) => `- id: p${i}\n  subjects: {teams: [team${i % 7}]}\n  tools: [tool_${i % 500}]\n  when: args.env == "e${i}"\n`);
    const text = `version: 1\nrules:\n${rules.join('')}`;
    const session = (await request(port, ca.rootPem, { path: '/console/api/session', creds: ops })).json() as { csrf: string };
    files.body = path.join(base, 'playground.json');
    fs.writeFileSync(files.body, JSON.stringify({ policy: text }));
    assert.ok(fs.statSync(files.body).size < 64 * 1024 && fs.statSync(files.body).size > 50_000);
    files.cert = path.join(base, 'ops.crt');
    files.key = path.join(base, 'ops.key');
    files.ca = path.join(base, 'root.pem');
    fs.writeFileSync(files.cert, ops.cert);
    fs.writeFileSync(files.key, ops.key, { mode: 0o600 });
    fs.writeFileSync(files.ca, ca.rootPem);
    files.csrf = session.csrf;
  });
  after(async () => {
    console_?.stop();
    await stop?.();
  });

  // /renew from a shell loop of curls, a process of its own timing each request on its own
  // clock: requests made from this process would not even be sent while this thread is blocked
  const renewals = async (from: number, to: number): Promise<{ start: number; ms: number }[]> => {
    const lines: string[] = [];
    for (let i = from; i < to; i++) {
      const cert = path.join(base, `renewer${i}.crt`);
      const key = path.join(base, `renewer${i}.key`);
      fs.writeFileSync(cert, renewers[i]!.cert);
      fs.writeFileSync(key, renewers[i]!.key, { mode: 0o600 });
      lines.push(`s=$(date +%s%3N); r=$(curl -sS --max-time 60 -o /dev/null -w '%{http_code} %{time_total}' --cert ${cert} --key ${key} --cacert ${files.ca} -X POST -H 'content-length: 0' https://127.0.0.1:${port}/renew); echo "$s $r"`);
    }
    const script = path.join(base, `renew-${from}.sh`);
    fs.writeFileSync(script, lines.join('\n') + '\n');
    const { stdout } = await run('bash', [script], { maxBuffer: 1 << 20 });
    return stdout
      .trim()
      .split('\n')
      .map((l) => {
        const [start, code, seconds] = l.split(' ');
        assert.equal(code, '200', l);
        return { start: Number(start), ms: Number(seconds) * 1000 };
      });
  };

  const playground = () =>
    run('curl', ['-sS', '--max-time', '120', '-o', path.join(base, 'answer.json'), '-w', '%{http_code} %{time_total}', '--cert', files.cert!, '--key', files.key!, '--cacert', files.ca!, '-H', 'content-type: application/json', '-H', `x-console-csrf: ${files.csrf}`, '--data-binary', `@${files.body}`, `https://127.0.0.1:${port}/console/api/policy/playground`], { maxBuffer: 1 << 20 });

  it('a large playground request does not hold up a concurrent /renew', async () => {
    await renewals(0, 1); // warm up (TLS contexts, the store, the worker thread)
    assert.equal((await request(port, ca.rootPem, { path: '/console/api/policy/matrix', creds: ops })).status, 200);
    const baseline = (await renewals(1, BASELINE)).map((r) => r.ms);
    const t0 = Date.now();
    let finished = 0;
    const work = playground().then((r) => {
      finished = Date.now();
      return r;
    });
    const all = await renewals(BASELINE, RENEWERS);
    const { stdout } = await work;
    // the renewals that overlapped the work (its end as seen here is late, if anything)
    const during = all.filter((r) => r.start + r.ms >= t0 && r.start <= finished).map((r) => r.ms);
    const [code, seconds] = stdout.trim().split(' ');
    assert.equal(code, '200', fs.readFileSync(path.join(base, 'answer.json'), 'utf8').slice(0, 300));
    const answer = JSON.parse(fs.readFileSync(path.join(base, 'answer.json'), 'utf8')) as { cells: unknown[]; tools: string[]; changes: unknown[] };
    assert.equal(answer.tools.length, 500);
    assert.ok(answer.cells.length >= RENEWERS * 500);
    const workMs = finished - t0;
    // the renewals must cover a good part of the work (a busy machine makes the work longer than
    // the fixed set of renewals: then they cover its first part, which is enough to see a block)
    const covered = Math.min(all.at(-1)!.start, finished) - t0;
    assert.ok(covered >= Math.min(workMs, 1000), `the renewals covered ${covered} ms of the work's ${workMs} (${RENEWERS - BASELINE} of them): make RENEWERS larger`);
    const ratio = median(during) / median(baseline);
    const worst = Math.max(...during) / median(baseline);
    const line = `policy work ${Math.round(workMs)} ms (curl ${seconds} s), ${(answer.cells.length / 1000).toFixed(0)}k cells; /renew median ${median(baseline).toFixed(1)} ms alone, ${median(during).toFixed(1)} ms during (ratio ${ratio.toFixed(2)}, worst ${worst.toFixed(2)}x), ${during.length} renewals during${INLINE ? ' [inline]' : ''}`;
    console.log(line);
    assert.ok(workMs > 1000, `the work must be long enough to measure against: ${line}`);
    assert.ok(ratio < 3, `median /renew during the work within 3x of without: ${line}`);
    assert.ok(Math.max(...during) < workMs / 4, `no /renew waited for the work: ${line}`);
    assert.ok(during.length >= 5, `renewals were made while the work ran: ${line}`);
  });
});
