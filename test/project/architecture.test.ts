/**
 * The import rules of docs/architecture.md, checked on the source: every import, export-from and
 * dynamic import of every src/**\/*.ts file (relative and package), mapped to the folder of the
 * importing file and of the imported one; plus the few things only some files may do (write to
 * stdout/stderr, read process.env, exit, read the clock). A rule that no test checks is a wish:
 * each rule of that document is one entry below, and each violation is printed as
 * `src/a/b.ts imports src/c/d.ts: <rule>`. The table of docs/architecture.md and the one here
 * must agree, and every folder of src/ must have a rule and a line there.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../support/cli.js';

const SRC = path.join(ROOT, 'src');

/** Every folder (and top-level file) of src/ and what it may import; api/ and cli/ may import anything. */
const MAY_IMPORT: Record<string, readonly string[] | 'anything'> = {
  errors: [],
  version: [],
  util: ['errors'],
  x509: ['errors', 'util'],
  identity: ['errors', 'util', 'x509'],
  policy: ['errors', 'util', 'identity'],
  'policy-file': ['errors', 'util', 'identity', 'policy'],
  bundle: ['errors', 'util', 'x509', 'identity'],
  mtls: ['errors', 'util', 'x509', 'identity'],
  mcp: ['errors', 'util', 'x509', 'identity', 'policy', 'mtls'],
  gateway: ['errors', 'util', 'x509', 'identity', 'policy', 'policy-file', 'mtls', 'mcp'],
  ca: ['errors', 'util', 'x509', 'identity', 'policy', 'ca/store', 'ca/oidc'],
  'ca/oidc': ['errors', 'util', 'identity', 'ca'],
  'ca/store': ['errors', 'util', 'x509', 'identity', 'ca'],
  'ca/serve': ['errors', 'util', 'x509', 'identity', 'ca', 'ca/store', 'ca/oidc', 'mtls', 'delegation'],
  // the delegation grant (docs/delegation.md): written by the CLI, read by ca/serve
  delegation: ['errors', 'util', 'x509', 'identity'],
  client: ['errors', 'util', 'x509', 'identity', 'bundle'],
  console: ['errors', 'util', 'x509', 'identity', 'policy', 'policy-file', 'ca', 'ca/store', 'ca/serve'],
  api: 'anything',
  cli: 'anything',
};

/** Why a folder may not import another: the principles the allow-lists above come from. */
const NEVER: { from: (f: string) => boolean; to: (f: string) => boolean; rule: string }[] = [
  { from: (f) => f === 'x509', to: (t) => t !== 'errors' && t !== 'util', rule: 'x509/ imports only errors and util' },
  { from: (f) => f === 'mtls', to: (t) => ['mcp', 'gateway', 'ca', 'ca/serve', 'ca/store', 'client', 'cli'].includes(t), rule: 'mtls/ (the TLS identity layer) never imports mcp/, gateway/, ca/, client/, cli/' },
  { from: (f) => f === 'mcp', to: (t) => ['gateway', 'ca', 'ca/serve', 'ca/store', 'client', 'cli'].includes(t), rule: 'mcp/ never imports gateway/, ca/, client/, cli/' },
  { from: (f) => f === 'gateway', to: (t) => t.startsWith('ca'), rule: 'gateway/ never imports ca/ (a gateway holds no CA key)' },
  { from: (f) => f === 'client', to: (t) => t.startsWith('ca') || ['mtls', 'mcp', 'gateway'].includes(t), rule: 'client/ never imports ca/, mtls/, mcp/, gateway/' },
  { from: (f) => f.startsWith('ca'), to: (t) => ['mcp', 'gateway', 'client'].includes(t), rule: 'ca/ never imports mcp/, gateway/, client/' },
  { from: (f) => f === 'ca' || f === 'ca/store', to: (t) => t === 'mtls', rule: 'only ca/serve/ of ca/ may import mtls/' },
  { from: (f) => f !== 'api', to: (t) => t === 'api', rule: 'nothing imports api/: it is the public surface, not a layer' },
  { from: (f) => f !== 'cli', to: (t) => t === 'cli', rule: 'nothing imports cli/: it is the outermost layer' },
];

/** Packages only some files may import. */
const PACKAGES: { name: (spec: string) => boolean; may: (file: string) => boolean; rule: string }[] = [
  {
    name: (s) => s.startsWith('@modelcontextprotocol/'),
    may: (f) => /^src\/mcp\/sdk[^/]*\.ts$/.test(f) || f.startsWith('src/client/') || f.startsWith('src/gateway/'),
    rule: 'the MCP SDK packages are imported only by mcp/sdk*.ts, client/ and gateway/',
  },
  { name: (s) => s === 'pg' || s.startsWith('pg/'), may: (f) => f.startsWith('src/ca/store/') || f === 'src/mtls/audit-postgres.ts', rule: '`pg` is imported only by ca/store/ and the decisions sink mtls/audit-postgres.ts' },
  {
    name: (s) => /^(node:)?(fs|fs\/promises|net|tls|http|https|http2|dgram|dns|child_process|worker_threads|readline)$/.test(s),
    may: (f) => !/^src\/(identity|policy)\//.test(f),
    rule: 'identity/ and policy/ are pure: no files, sockets or processes',
  },
];

/** What only some files may do, found in the syntax tree (so comments and strings do not count). */
type Use = 'process.stdout' | 'process.stderr' | 'console' | 'process.env' | 'process.exit' | 'the clock';
const WRITES = (f: string) => f.startsWith('src/cli/') || f === 'src/util/log.ts';
const USES: Record<Use, { may: (file: string) => boolean; rule: string }> = {
  'process.stdout': { may: WRITES, rule: 'only cli/ and util/log.ts write to stdout/stderr' },
  'process.stderr': { may: WRITES, rule: 'only cli/ and util/log.ts write to stdout/stderr' },
  console: { may: WRITES, rule: 'only cli/ and util/log.ts write to stdout/stderr' },
  'process.env': { may: (f) => f.startsWith('src/cli/'), rule: 'only cli/ reads process.env' },
  'process.exit': { may: (f) => f.startsWith('src/cli/'), rule: 'only cli/ calls process.exit' },
  'the clock': { may: (f) => !/^src\/(identity|policy)\//.test(f), rule: 'identity/ and policy/ read no clock except one passed in' },
};

/** The use a node is, if any: `process.stderr.write`, `console.log`, `process.env.X`, `process.exit()`, `Date.now()`, `new Date()`. */
function useOf(node: ts.Node): Use | undefined {
  if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
    const [object, name] = [node.expression.text, node.name.text];
    if (object === 'process' && (name === 'stdout' || name === 'stderr' || name === 'env')) return `process.${name}`;
    if (object === 'process' && (name === 'exit' || name === 'exitCode')) return 'process.exit';
    if (object === 'console') return 'console';
    if ((object === 'Date' || object === 'performance') && name === 'now') return 'the clock';
  }
  if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Date' && !node.arguments?.length) return 'the clock';
  return undefined;
}

/**
 * Known, reasoned exceptions, each to one exact piece of code so that anything new in the same
 * file is still checked. Keep this list short: an entry is a rule bent, and says why.
 */
const EXCEPTIONS: { file: string; code: string; why: string }[] = [
  { file: 'src/policy/compile.ts', code: 'options.clock ?? (() => new Date())', why: 'the default of the clock that is passed in, for callers that give none' },
  { file: 'src/bundle/profile-dir.ts', code: 'env ?? process.env', why: 'a per-user profile folder is where XDG_CONFIG_HOME or HOME say (loadBundle({ profile }) finds what `mcp-mtls login` wrote); callers may pass env' },
];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

const rel = (abs: string) => path.relative(ROOT, abs).split(path.sep).join('/');

/** The folder a file belongs to: src/errors.ts -> errors, src/ca/serve/x.ts -> ca/serve, src/mtls/x.ts -> mtls. */
function folderOf(file: string): string {
  const parts = file.replace(/^src\//, '').split('/');
  if (parts.length === 1) return (parts[0] as string).replace(/\.ts$/, '');
  if (parts[0] === 'ca' && parts.length > 2) return `ca/${parts[1]}`;
  return parts[0] as string;
}

interface Source {
  file: string;
  folder: string;
  text: string;
  tree: ts.SourceFile;
  imports: string[];
}

function readSources(): Source[] {
  return sourceFiles(SRC).map((abs) => {
    const text = fs.readFileSync(abs, 'utf8');
    // import, import type, export ... from, side-effect imports and import(): what the compiler sees
    const imports = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
    return { file: rel(abs), folder: folderOf(rel(abs)), text, tree: ts.createSourceFile(abs, text, ts.ScriptTarget.Latest, true), imports };
  });
}

/** A relative specifier to the source file it names (`./a.js` -> src/x/a.ts). */
function resolve(from: string, spec: string): string {
  return rel(path.resolve(ROOT, path.dirname(from), spec)).replace(/\.js$/, '.ts');
}

function folderViolations(sources: Source[]): string[] {
  const out: string[] = [];
  for (const s of sources) {
    for (const spec of s.imports.filter((i) => i.startsWith('.'))) {
      const target = resolve(s.file, spec);
      const to = folderOf(target);
      if (to === s.folder) continue;
      const never = NEVER.find((r) => r.from(s.folder) && r.to(to));
      const may = MAY_IMPORT[s.folder];
      if (never) out.push(`${s.file} imports ${target}: ${never.rule}`);
      else if (may === undefined) out.push(`${s.file} imports ${target}: ${s.folder}/ has no import rule yet (add it to docs/architecture.md and this test)`);
      else if (may !== 'anything' && !may.includes(to)) out.push(`${s.file} imports ${target}: ${s.folder}/ may import only ${may.join(', ') || 'nothing'}`);
    }
  }
  return out;
}

function packageViolations(sources: Source[]): string[] {
  const out: string[] = [];
  for (const s of sources) {
    for (const spec of s.imports.filter((i) => !i.startsWith('.'))) {
      for (const p of PACKAGES) if (p.name(spec) && !p.may(s.file)) out.push(`${s.file} imports ${spec}: ${p.rule}`);
    }
  }
  return out;
}

function useViolations(sources: Source[]): string[] {
  const out: string[] = [];
  for (const s of sources) {
    const excused = EXCEPTIONS.filter((e) => e.file === s.file).map((e) => ({ at: s.text.indexOf(e.code), length: e.code.length }));
    const visit = (node: ts.Node): void => {
      const use = useOf(node);
      const at = node.getStart(s.tree);
      if (use && !USES[use].may(s.file) && !excused.some((e) => e.at >= 0 && at >= e.at && at < e.at + e.length)) {
        const { line } = s.tree.getLineAndCharacterOfPosition(at);
        out.push(`${s.file}:${line + 1} uses ${use}: ${USES[use].rule}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(s.tree);
  }
  return [...new Set(out)];
}

const sources = readSources();
const report = (violations: string[]) => `\n${violations.join('\n')}\n`;

test('the source was read: every folder of src/ is found, with its imports', () => {
  assert.ok(sources.length > 100, `${sources.length} files under src/`);
  assert.ok(sources.find((s) => s.file === 'src/gateway/run.ts')?.imports.some((i) => i.startsWith('../mtls/')), 'src/gateway/run.ts imports from mtls/');
  assert.ok(sources.some((s) => s.imports.includes('pg')), 'some file imports pg');
});

test('each folder imports only the folders its rule allows', () => {
  const violations = folderViolations(sources);
  assert.deepEqual(violations, [], report(violations));
});

test('packages with an owner are imported only by their owners (MCP SDK, pg, node I/O in pure code)', () => {
  const violations = packageViolations(sources);
  assert.deepEqual(violations, [], report(violations));
});

test('only cli/ and util/log.ts write to stdout/stderr; only cli/ reads process.env or exits; identity/ and policy/ read no clock', () => {
  const violations = useViolations(sources);
  assert.deepEqual(violations, [], report(violations));
});

test('every exception still matches code (a stale one would hide nothing and mislead)', () => {
  const stale = EXCEPTIONS.filter((e) => !sources.find((s) => s.file === e.file)?.text.includes(e.code));
  assert.deepEqual(stale, []);
});

test('every folder of src/ has an import rule, and docs/architecture.md names every one', () => {
  const folders = [...new Set(sources.map((s) => s.folder))].sort();
  assert.deepEqual(folders.filter((f) => !(f in MAY_IMPORT)), [], 'folders without a rule in this test');
  assert.deepEqual(Object.keys(MAY_IMPORT).filter((f) => !folders.includes(f)), [], 'rules for folders that no longer exist');
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const named = (f: string) => doc.includes(['errors', 'version'].includes(f) ? `src/${f}.ts` : `src/${f}/`);
  assert.deepEqual(folders.filter((f) => !named(f)), [], 'folders docs/architecture.md does not name');
});

test('the table of docs/architecture.md says what this test checks', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const table = doc.split('## What each folder may import')[1]?.split('\n\n')[2] ?? '';
  const documented: Record<string, readonly string[] | 'anything'> = {};
  for (const row of table.split('\n').slice(2)) {
    const [, folders = '', may = ''] = row.split('|').map((c) => c.trim());
    const allowed = may.startsWith('anything') ? 'anything' : may.startsWith('nothing') ? [] : may.replace(/\s*\(.*\)$/, '').split(', ');
    for (const f of folders.match(/`[^`]+`/g) ?? []) documented[f.replace(/`/g, '').replace(/(\/|\.ts)$/, '')] = allowed;
  }
  assert.deepEqual(documented, MAY_IMPORT);
});
