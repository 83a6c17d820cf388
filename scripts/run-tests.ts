/**
 * The test runner behind `npm test` and `npm run test:slow`: every test file under test/ (the
 * same files as the shell globs test/X/NAME.test.ts and test/X/Y/NAME.test.ts matched), split by
 * test/slow-suites.txt. A file listed there (a soak, a load test, benchmarks, real proxies, npm
 * stdio servers: long by nature) runs in `npm run test:slow`; every other file, a new one
 * included, runs in `npm test`. The split is by a list, not by folder or name, so files stay where
 * they belong and nothing new is left out by default.
 *
 *   node --import tsx scripts/run-tests.ts            the quick part (npm test)
 *   node --import tsx scripts/run-tests.ts --slow     the listed files (npm run test:slow)
 *   node --import tsx scripts/run-tests.ts --all      both, one after the other (.ci/other-nodes)
 *   ... --list                                        print the files instead of running them
 *   ... --concurrency N                               files at a time (else $MCP_MTLS_TEST_CONCURRENCY)
 * Any other argument (e.g. --test-reporter=tap) is passed on to `node --test`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const MANIFEST = 'test/slow-suites.txt';
/** the quick part waits partly on child processes and sockets: 3 files at a time keep 2 cores busy (4 gained little more and squeezes the timing checks) */
export const QUICK_CONCURRENCY = 3;
/** the slow part holds load tests and benchmarks: 2, as their numbers were made with */
export const SLOW_CONCURRENCY = 2;

/** test/X/*.test.ts and test/X/Y/*.test.ts, sorted, as the shell globs match them (no dot folders). */
export function testFiles(root = ROOT): string[] {
  const out: string[] = [];
  const visible = (d: string) => fs.readdirSync(path.join(root, d), { withFileTypes: true }).filter((e) => !e.name.startsWith('.'));
  for (const a of visible('test').filter((e) => e.isDirectory())) {
    const dir = `test/${a.name}`;
    for (const e of visible(dir)) {
      if (e.isFile() && e.name.endsWith('.test.ts')) out.push(`${dir}/${e.name}`);
      else if (e.isDirectory()) for (const f of visible(`${dir}/${e.name}`)) if (f.isFile() && f.name.endsWith('.test.ts')) out.push(`${dir}/${e.name}/${f.name}`);
    }
  }
  return out.sort();
}

/** The manifest's paths: one a line, `#` starts a comment. */
export function parseManifest(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}

/** quick and slow files; a listed path that is not a test file is an error (a renamed file must be listed again). */
export function partition(root = ROOT): { quick: string[]; slow: string[] } {
  const files = testFiles(root);
  const listed = parseManifest(fs.readFileSync(path.join(root, MANIFEST), 'utf8'));
  const unknown = listed.filter((f) => !files.includes(f));
  if (unknown.length > 0) throw new Error(`${MANIFEST} lists ${unknown.join(', ')}, which is not a test file (test/X/NAME.test.ts or test/X/Y/NAME.test.ts): fix the path or remove the line`);
  const dup = listed.filter((f, i) => listed.indexOf(f) !== i);
  if (dup.length > 0) throw new Error(`${MANIFEST} lists ${[...new Set(dup)].join(', ')} more than once: remove the duplicate line`);
  const slow = new Set(listed);
  return { quick: files.filter((f) => !slow.has(f)), slow: files.filter((f) => slow.has(f)) };
}

function runNodeTest(files: string[], concurrency: number, extra: string[]): Promise<number> {
  if (files.length === 0) return Promise.resolve(0);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...extra, ...files], { cwd: ROOT, stdio: 'inherit' });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function main(argv: string[]): Promise<number> {
  let which: 'quick' | 'slow' | 'all' = 'quick';
  let list = false;
  let concurrency: number | undefined = process.env.MCP_MTLS_TEST_CONCURRENCY ? Number(process.env.MCP_MTLS_TEST_CONCURRENCY) : undefined;
  const extra: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--slow') which = 'slow';
    else if (a === '--all') which = 'all';
    else if (a === '--list') list = true;
    else if (a === '--concurrency') concurrency = Number(argv[++i]);
    else if (a.startsWith('--concurrency=')) concurrency = Number(a.slice('--concurrency='.length));
    else extra.push(a);
  }
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency > 0)) {
    process.stderr.write('error: --concurrency (or MCP_MTLS_TEST_CONCURRENCY) must be a whole number of files, e.g. --concurrency 2\n');
    return 64;
  }
  let parts: { quick: string[]; slow: string[] };
  try {
    parts = partition();
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 78;
  }
  const runs: [string[], number][] = [];
  if (which !== 'slow') runs.push([parts.quick, concurrency ?? QUICK_CONCURRENCY]);
  if (which !== 'quick') runs.push([parts.slow, concurrency ?? SLOW_CONCURRENCY]);
  if (list) {
    for (const [files] of runs) for (const f of files) process.stdout.write(`${f}\n`);
    return 0;
  }
  let code = 0;
  for (const [files, n] of runs) code = (await runNodeTest(files, n, extra)) || code;
  return code;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
