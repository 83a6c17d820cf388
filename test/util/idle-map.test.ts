/**
 * The idle-and-capped session table (src/util/idle-map.ts): entries unused for idleMs are
 * forgotten, and over the cap the least recently used goes first, each eviction reported.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdleMap } from '../../src/util/idle-map.js';

test('session tables forget idle sessions and keep at most their cap, least recently used first', () => {
  let now = 0;
  const evicted: string[] = [];
  const m = new IdleMap<string, number>({ idleMs: 1000, max: 2, now: () => now, onEvict: (k) => evicted.push(k) });
  m.set('a', 1);
  m.set('b', 2);
  now = 500;
  assert.equal(m.get('a'), 1); // a is now the most recent
  m.set('c', 3); // over the cap: b goes
  assert.deepEqual(evicted, ['b']);
  assert.equal(m.has('b'), false);
  now = 1499;
  assert.equal(m.get('c'), 3);
  now = 1501; // a unused since 500
  assert.equal(m.get('a'), undefined);
  assert.deepEqual(evicted, ['b', 'a']);
  assert.equal(m.size, 1);
});
