/**
 * The target index (src/policy/target-index.ts) finds exactly the rules a scan of every
 * rule's matcher finds, in document order, for random pattern lists (exact names, `*`, `?`,
 * classes, alternatives, escapes) and random names: it is a shortcut, never a second
 * semantics.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compilePatterns } from '../../src/policy/glob.js';
import { TargetIndex } from '../../src/policy/target-index.js';

const piece = fc.constantFrom('a', 'b', 'ab', '_', '/', 'x', '*', '**', '?', '[ab]', '[!a]', '{a,b}', '{a,x*}', '\\*', '{name}');
const pattern = fc.array(piece, { minLength: 1, maxLength: 4 }).map((p) => p.join(''));
const value = fc.array(fc.constantFrom('a', 'b', 'x', '_', '/', '*', 'ab'), { maxLength: 5 }).map((p) => p.join(''));

test('the index finds exactly what a scan of every matcher finds, in document order', () => {
  fc.assert(
    fc.property(fc.array(fc.array(pattern, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 12 }), fc.array(value, { minLength: 1, maxLength: 10 }), (lists, values) => {
      const rules = lists.map((tools, index) => ({ index, tools, targets: { tool: compilePatterns(tools) } }));
      const index = new TargetIndex(rules, (r, kind) => (kind === 'tool' ? r.tools : undefined));
      for (const v of [...values, ...lists.flat()]) {
        const scanned = rules.filter((r) => r.targets.tool(v)).map((r) => r.index);
        assert.deepEqual(
          index.matching('tool', v).map((r) => r.index),
          scanned,
          `value ${JSON.stringify(v)} against ${JSON.stringify(lists)}`,
        );
      }
    }),
    { numRuns: 2000 },
  );
});
