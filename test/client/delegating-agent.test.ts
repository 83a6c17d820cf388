/**
 * createDelegatingAgent through bench/delegation.ts in a smoke run: 12 people x 3 calls via a real
 * `ca serve` (POST /delegate) and a real MCP server; every call's tool saw its own person (via
 * the platform), one exchange per person, and the same calls with one service certificate ran
 * in the same run.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, run } from '../support/cli.js';

test('bench/delegation smoke: one exchange per person, every call as its person, both ways measured', { timeout: 300_000 }, async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'delegation.ts')], { env: { BENCH_DELEGATION_USERS: '12', BENCH_DELEGATION_CALLS: '3', BENCH_DELEGATION_CONCURRENCY: '4' } });
  assert.equal(r.code, 0, r.stderr);
  const line = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.equal(line.exchanges, 12, r.stdout);
  assert.equal(line.wrongIdentity, 0, r.stdout);
  assert.ok(line.serviceCallsPerSecond > 0 && line.delegatedCallsPerSecond > 0 && line.exchangesPerSecond > 0, r.stdout);
});
