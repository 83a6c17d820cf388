/**
 * Glob matching (src/policy/glob.ts) is linear in the name: patterns and names built to make a
 * backtracking matcher take seconds are decided in microseconds, and still match what they should.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePattern } from '../../src/policy/glob.js';
import { MAX_NAME } from '../../src/policy/mcp.js';

test('glob matching is linear: adversarial patterns and names cost microseconds, not seconds', () => {
  const m = compilePattern('*a*a*a*a*a*a*a*a*a*a*b');
  const name = 'a'.repeat(MAX_NAME);
  const t0 = performance.now();
  assert.equal(m(name), false);
  assert.equal(compilePattern('**/**/**/**/**/x')('a/'.repeat(2000)), false);
  const ms = performance.now() - t0;
  assert.ok(ms < 200, `took ${ms.toFixed(1)} ms`);
  // and still matches what it should
  assert.equal(m('xaxaaaaaaaaaab'), true);
  assert.equal(compilePattern('read_*')('read_file'), true);
  assert.equal(compilePattern('read_*')('read/file'), false);
});
