/**
 * Issue 18 item 1, the quick half (in `npm test`): the import graph of every published subpath,
 * read from the built files, reaches only the MCP SDK packages that subpath is for (none for the
 * SDK-free ones), in its JavaScript (what `node` loads, dynamic imports included) and in its
 * declarations (what `tsc` reads with skipLibCheck false), and no package that is not a
 * dependency of the package and, in the declarations, no package without types (a dev dependency's
 * types, such as `@types/pg`, are not installed by users). test/packed/sdk-subpaths.packed.ts proves the same by installing the tarball.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT, tmpDir } from '../support/cli.js';
import { SDK_OF } from '../support/packed.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, { types: string; default: string } | string>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};

const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

/** The packages `entry`'s graph imports, each with the first file that imports it. */
function externalImports(entry: string, root = ROOT): Map<string, string> {
  const found = new Map<string, string>();
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of [...info.importedFiles, ...info.typeReferenceDirectives]) {
      if (fileName.startsWith('.')) {
        const target = path.resolve(path.dirname(file), fileName);
        stack.push(file.endsWith('.d.ts') ? target.replace(/\.js$/, '.d.ts') : target);
      } else if (!fileName.startsWith('node:') && fileName !== 'node') {
        const name = packageOf(fileName);
        if (!found.has(name)) found.set(name, path.relative(root, file));
      }
    }
  }
  return found;
}

/** Whether an installed package ships declarations of its own (else its types are in `@types/`). */
function shipsTypes(name: string): boolean {
  const dir = path.join(ROOT, 'node_modules', name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { types?: string; typings?: string; exports?: unknown };
  return Boolean(manifest.types ?? manifest.typings) || fs.existsSync(path.join(dir, 'index.d.ts')) || JSON.stringify(manifest.exports ?? {}).includes('"types"');
}

/** What is wrong with the subpaths' graphs under `root` (a folder holding dist/). */
function problems(root: string, exportsMap: typeof pkg.exports, sdkOf: Record<string, readonly string[]>, allowed: ReadonlySet<string>, hasTypes: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const [subpath, target] of Object.entries(exportsMap)) {
    if (typeof target === 'string') continue; // ./package.json
    for (const [kind, file] of [['JavaScript', target.default], ['declarations', target.types]] as const) {
      for (const [name, via] of externalImports(path.join(root, file), root)) {
        const sdk = name.startsWith('@modelcontextprotocol/');
        if (sdk && !(sdkOf[subpath] ?? []).includes(name)) out.push(`${subpath} (${kind}) reaches ${name} through ${via}`);
        if (!sdk && !allowed.has(name)) out.push(`${subpath} (${kind}) reaches ${name} through ${via}, which users do not install (not a dependency)`);
        else if (!sdk && kind === 'declarations' && !hasTypes(name) && !allowed.has(`@types/${name}`)) out.push(`${subpath} (declarations) name ${name} through ${via}, which ships no types (and @types/${name} is not a dependency)`);
      }
    }
  }
  return out;
}

test('every subpath reaches only its own MCP SDK and the package dependencies, in its JavaScript and its declarations', () => {
  assert.ok(fs.existsSync(path.join(ROOT, 'dist', 'api', 'index.js')), 'dist/ is built (npm test builds first)');
  assert.deepEqual(Object.keys(pkg.exports).filter((s) => s !== './package.json').sort(), Object.keys(SDK_OF).sort(), 'every subpath is listed in SDK_OF (test/support/packed.ts)');
  const allowed = new Set(Object.keys(pkg.dependencies));
  assert.deepEqual(problems(ROOT, pkg.exports, SDK_OF, allowed, shipsTypes), []);
  // and each SDK subpath does reach its SDK (the check reads the graph at all)
  const sdk1 = externalImports(path.join(ROOT, 'dist', 'api', 'client-sdk1.js'));
  assert.ok(sdk1.has('@modelcontextprotocol/sdk'), [...sdk1.keys()].join(', '));
  assert.ok(externalImports(path.join(ROOT, 'dist', 'api', 'client-sdk2.d.ts')).has('@modelcontextprotocol/client'));
});

test('the check finds an SDK reached through a shared file, a dynamic import and a declaration (it can fail)', () => {
  const root = tmpDir('mcp-mtls-graph-');
  try {
    const write = (f: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      fs.writeFileSync(path.join(root, f), text);
    };
    // the shape of the bug of issue 18: one transports file for both SDKs
    write('dist/api/b.js', "export { b } from '../client/t.js';\n");
    write('dist/api/b.d.ts', "export { b } from '../client/t.js';\n");
    write('dist/client/t.js', "import { X } from '@modelcontextprotocol/sdk/client/streamableHttp.js';\nexport async function b() { return import('@modelcontextprotocol/client'); }\n");
    write('dist/client/t.d.ts', "export declare function b(): Promise<import('@modelcontextprotocol/client').T>;\nimport type pg from 'pg';\n");
    const found = problems(root, { './b': { types: './dist/api/b.d.ts', default: './dist/api/b.js' } }, { './b': ['@modelcontextprotocol/client'] }, new Set(['pg']), (name) => name !== 'pg');
    assert.deepEqual(found, [
      './b (JavaScript) reaches @modelcontextprotocol/sdk through dist/client/t.js',
      './b (declarations) name pg through dist/client/t.d.ts, which ships no types (and @types/pg is not a dependency)',
    ]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
