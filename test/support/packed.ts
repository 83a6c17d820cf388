/**
 * The package as a new user installs it: `npm pack` of this checkout (dist/ as built), fresh npm
 * projects in a temporary folder holding the tarball and only the packages a test names, and
 * TypeScript run in such a project as its author would run it (strict, skipLibCheck false,
 * NodeNext). Used by test/project/package*.test.ts (in `npm test`) and test/packed/ (`npm run
 * test:packed`, run by CI beside the quick suite).
 *
 * Installs use npm's cache (`--prefer-offline`): `npm ci` filled it with every package of the
 * lock file, and every package is asked for at the version this checkout has installed, so the
 * cache answers and the registry is only a fallback.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, run, type RunResult } from './cli.js';

export const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The environment of every npm, node and tsc run in a user's project: no variables of the test run. */
export const packedEnv = (): Record<string, string> => ({
  PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
  HOME: process.env.HOME ?? '/tmp',
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
});

/** Runs npm, expects exit 0, returns its stdout. */
export async function npm(args: string[], cwd: string): Promise<string> {
  const r = await run(NPM, args, { cwd, env: packedEnv() });
  assert.equal(r.code, 0, `npm ${args.join(' ')} (in ${cwd}) failed:\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

/** The version of a package installed in this checkout (so a user's install hits npm's cache). */
export function installedVersion(name: string): string {
  return (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** `name@version` of this checkout's copy. */
export const pinned = (name: string): string => `${name}@${installedVersion(name)}`;

export interface Packed {
  /** the tarball's path */
  readonly tarball: string;
  /** every path in the tarball, relative to the package root (`package.json`, `dist/api/index.js`, ...) */
  readonly files: readonly string[];
  readonly size: number;
  readonly unpackedSize: number;
}

interface PackJson {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

/**
 * `npm pack` of this checkout into `dir`. dist/ must be built (`npm test` and `npm run
 * test:packed` build first); --ignore-scripts keeps pack from building it again under a test.
 */
export async function pack(dir: string): Promise<Packed> {
  const out = await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir], ROOT);
  const [info] = JSON.parse(out) as PackJson[];
  assert.ok(info, `npm pack printed no package: ${out}`);
  return { tarball: path.join(dir, info.filename), files: info.files.map((f) => f.path), size: info.size, unpackedSize: info.unpackedSize };
}

/** What `npm pack` would put in the tarball (`--dry-run`: nothing is written). */
export async function packedFiles(): Promise<string[]> {
  const out = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
  const [info] = JSON.parse(out) as PackJson[];
  assert.ok(info, `npm pack --dry-run printed no package: ${out}`);
  return info.files.map((f) => f.path);
}

/**
 * The MCP SDK packages each subpath of package.json `exports` is for: the only ones its code and
 * declarations may reach (test/project/package-subpaths.test.ts), and the only ones installed
 * with it when it is loaded and type-checked (test/packed/sdk-subpaths.packed.ts).
 */
export const SDK_OF: Record<string, readonly string[]> = {
  '.': [],
  './ca': [],
  './ca/serve': [],
  './identity': [],
  './policy': [],
  './server': [],
  './client': [],
  './gateway': [],
  './client/sdk1': ['@modelcontextprotocol/sdk'],
  './server/sdk1': ['@modelcontextprotocol/sdk'],
  './client/sdk2': ['@modelcontextprotocol/client'],
  './server/sdk2': ['@modelcontextprotocol/server', '@modelcontextprotocol/node'],
};

/** The TypeScript tooling a user's project has besides its dependencies. */
export const TYPESCRIPT = ['typescript', '@types/node'];

/**
 * A fresh ES module project (`"type": "module"`) at `dir` with the tarball and `packages` (names,
 * installed at this checkout's versions) and nothing else: npm installs no optional peer
 * dependency on its own.
 */
export async function makeProject(dir: string, packed: Packed, packages: readonly string[]): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: path.basename(dir).toLowerCase().replace(/[^a-z0-9-]/g, '-'), private: true, type: 'module' }, null, 2)}\n`);
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', packed.tarball, ...packages.map(pinned)], dir);
  return dir;
}

/** Which `@modelcontextprotocol/*` packages a project has installed. */
export function mcpPackagesIn(dir: string): string[] {
  const scope = path.join(dir, 'node_modules', '@modelcontextprotocol');
  return fs.existsSync(scope) ? fs.readdirSync(scope).map((n) => `@modelcontextprotocol/${n}`).sort() : [];
}

/** The compiler options of a careful user: strict, declarations checked (skipLibCheck false), NodeNext. */
export const STRICT_TSCONFIG = {
  target: 'ES2022',
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  strict: true,
  skipLibCheck: false,
  noEmit: true,
  types: ['node'],
};

/**
 * Type-checks `files` (relative to the project) with the project's own TypeScript: writes
 * `tsconfig.<name>.json` and runs `tsc -p` on it. The project must have {@link TYPESCRIPT}.
 */
export function typecheck(dir: string, name: string, files: readonly string[], compilerOptions: Record<string, unknown> = {}): Promise<RunResult> {
  const config = `tsconfig.${name}.json`;
  fs.writeFileSync(path.join(dir, config), JSON.stringify({ compilerOptions: { ...STRICT_TSCONFIG, ...compilerOptions }, files }, null, 2));
  return run(process.execPath, [path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], { cwd: dir, env: packedEnv() });
}

/** Runs `node FILE` in the project (the file written from `source` first when given). */
export function nodeIn(dir: string, file: string, source?: string, options: { env?: Record<string, string> } = {}): Promise<RunResult> {
  if (source !== undefined) fs.writeFileSync(path.join(dir, file), source);
  return run(process.execPath, [file], { cwd: dir, env: { ...packedEnv(), ...options.env } });
}

/** Runs `tasks` with at most `limit` at a time, results in order (the machine has 2 cores). */
export async function inParallel<T>(limit: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}
