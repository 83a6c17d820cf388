/**
 * Issue 18 item 1: each subpath of the package loads and type-checks with only the MCP SDK it is
 * for (none for the SDK-free ones), as README promises ("only the subpath you import loads one").
 *
 * One `npm pack`, then one fresh project per set of SDK packages (none; the 1.x SDK; the 2.x
 * client; the 2.x server and its node adapter), each holding the tarball, that set and
 * TypeScript. In the project of its set, every subpath is imported at run time (`node`) and a
 * file importing it is type-checked with `tsc` (strict, skipLibCheck false, module NodeNext), so
 * each subpath's whole .js and .d.ts import graph is checked, not only its entry file.
 *
 * Slow (four installs, a dozen full type-checks): `npm run test:packed`, and CI's `.ci/packed`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, tmpDir } from '../support/cli.js';
import { SDK_OF, TYPESCRIPT, inParallel, makeProject, mcpPackagesIn, nodeIn, pack, typecheck, type Packed } from '../support/packed.js';


const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> };
const subpaths = Object.keys(pkg.exports).filter((s) => s !== './package.json');
const specifier = (subpath: string) => (subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`);
const label = (subpath: string, sdk: readonly string[]) => `${specifier(subpath)} (with ${sdk.join(' + ') || 'no MCP SDK'})`;
const slug = (subpath: string) => (subpath === '.' ? 'root' : subpath.slice(2).replace(/\//g, '-'));

let work: string;
let packed: Packed;

before(async () => {
  work = tmpDir('mcp-mtls-packed-sdk-');
  packed = await pack(work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('every subpath of package.json exports is listed here with the SDK packages it is for', () => {
  assert.deepEqual([...subpaths].sort(), Object.keys(SDK_OF).sort());
});

test('each subpath loads and type-checks (strict, skipLibCheck false, NodeNext) in a project with only its SDK', { timeout: 900_000 }, async (t) => {
  const sets = new Map<string, string[]>();
  for (const s of subpaths) {
    const key = [...(SDK_OF[s] ?? [])].sort().join(' ');
    sets.set(key, [...(sets.get(key) ?? []), s]);
  }
  const failures: string[] = [];
  const started = Date.now();
  // one project per SDK set, two at a time (installs from npm's cache take a few seconds each)
  await inParallel(
    2,
    [...sets].map(([key, members], i) => async () => {
      const sdk = key ? key.split(' ') : [];
      const dir = await makeProject(path.join(work, `project-${i}`), packed, [...sdk, ...TYPESCRIPT]);
      assert.deepEqual(mcpPackagesIn(dir).filter((p) => p !== '@modelcontextprotocol/core'), [...sdk].sort(), `the project for ${members.join(', ')} has only ${sdk.join(', ') || 'no MCP SDK'}`);
      for (const s of members) {
        const spec = specifier(s);
        const r = await nodeIn(dir, `load-${slug(s)}.mjs`, `const m = await import(${JSON.stringify(spec)});\nconsole.log(JSON.stringify(Object.keys(m)));\n`);
        if (r.code !== 0) failures.push(`${label(s, sdk)}: import fails at run time:\n${r.stderr.trim().split('\n').filter((l) => /Error|Cannot|imported from/.test(l)).slice(0, 3).join('\n')}`);
        else if ((JSON.parse(r.stdout) as string[]).length === 0) failures.push(`${label(s, sdk)}: loads but exports nothing`);
        fs.writeFileSync(path.join(dir, `types-${slug(s)}.ts`), `import * as api from ${JSON.stringify(spec)};\nexport const names: string[] = Object.keys(api);\n`);
      }
      // one type-check of the project's subpaths together (most of its time is checking @types/node);
      // when it fails, one per subpath, to name the subpaths that fail
      const all = await typecheck(dir, 'all', members.map((s) => `types-${slug(s)}.ts`));
      if (all.code === 0) return;
      for (const s of members) {
        const t = await typecheck(dir, slug(s), [`types-${slug(s)}.ts`]);
        if (t.code !== 0) failures.push(`${label(s, sdk)}: does not type-check (strict, skipLibCheck false):\n${`${t.stdout}${t.stderr}`.trim().split('\n').slice(0, 6).join('\n')}`);
      }
    }),
  );
  t.diagnostic(`${subpaths.length} subpaths in ${sets.size} projects: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.deepEqual(failures, [], failures.join('\n\n'));
});
