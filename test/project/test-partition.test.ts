/** scripts/run-tests.ts: `npm test` runs every test file but those test/slow-suites.txt lists, `npm run test:slow` those. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MANIFEST, parseManifest, partition, ROOT, testFiles } from '../../scripts/run-tests.js';
import { tmpDir } from '../support/cli.js';

test('the two parts are the files the shell globs of the old test script matched, each in exactly one part', () => {
  const shell = execFileSync('bash', ['-c', 'ls -1 test/*/*.test.ts test/*/*/*.test.ts'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').sort();
  assert.deepEqual(testFiles(), shell);
  const { quick, slow } = partition();
  assert.deepEqual([...quick, ...slow].sort(), shell);
  assert.equal(quick.filter((f) => slow.includes(f)).length, 0);
  assert.deepEqual(slow, parseManifest(fs.readFileSync(path.join(ROOT, MANIFEST), 'utf8')).sort());
  assert.ok(quick.includes('test/project/test-partition.test.ts'));
});

test('a new file is in the quick part by default; a listed path that is no test file, or a line twice, is an error naming it', () => {
  const root = tmpDir('run-tests-');
  const put = (f: string, text = '') => {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), text);
  };
  put('test/a/one.test.ts');
  put('test/a/deep/two.test.ts');
  put('test/b/new.test.ts');
  put('test/b/helper.ts');
  put('test/.hidden/x.test.ts');
  put('test/a/deep/deeper/three.test.ts'); // deeper than the globs: in neither part, as before
  put(MANIFEST, '# slow ones\ntest/a/deep/two.test.ts  # a soak\n\n');
  assert.deepEqual(partition(root), { quick: ['test/a/one.test.ts', 'test/b/new.test.ts'], slow: ['test/a/deep/two.test.ts'] });
  put(MANIFEST, 'test/a/deep/two.test.ts\ntest/a/renamed.test.ts\n');
  assert.throws(() => partition(root), /test\/slow-suites\.txt lists test\/a\/renamed\.test\.ts, which is not a test file/);
  put(MANIFEST, 'test/a/one.test.ts\ntest/a/one.test.ts\n');
  assert.throws(() => partition(root), /lists test\/a\/one\.test\.ts more than once/);
  fs.rmSync(root, { recursive: true, force: true });
});

test('npm test, npm run test:slow and .ci/other-nodes go through the runner (no glob of their own that could drift)', () => {
  const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
  assert.match(scripts.test ?? '', /^npm run build && node --import tsx scripts\/run-tests\.ts$/);
  assert.match(scripts['test:slow'] ?? '', /^npm run build && node --import tsx scripts\/run-tests\.ts --slow$/);
  const otherNodes = fs.readFileSync(path.join(ROOT, '.ci', 'other-nodes'), 'utf8');
  assert.match(otherNodes, /scripts\/run-tests\.ts --all/);
  assert.doesNotMatch(otherNodes, /test\/\*\/\*\.test\.ts/);
  assert.match(fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8'), /scripts\/run-tests\.ts --slow/);
});
