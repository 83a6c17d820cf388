/**
 * The docs say what the code does: the CLI reference is generated from the program and must be
 * current; every `mcp-mtls` command line in the README and docs/ names real commands and
 * options; and the README's quick start runs as shown.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Command, Option } from 'commander';
import { createProgram } from '../../src/cli/main.js';
import { cliReference, readmeWithCliSummary } from '../../scripts/cli-reference.js';
import { BIN, ROOT, run, tmpDir } from '../support/cli.js';

const DOCS = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f)), 'pki/README.md'];

test('docs/cli.md and the README command table are generated from the program and current (npm run docs:cli)', () => {
  assert.equal(fs.readFileSync(path.join(ROOT, 'docs', 'cli.md'), 'utf8'), cliReference());
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.match(readme, /<!-- cli:start[^>]*-->\n\| command \| what it does \|/);
  assert.equal(readme, readmeWithCliSummary(readme));
});

/** Shell-like split: quotes group words. */
function words(line: string): string[] {
  return (line.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((w) => w.replace(/^["']|["']$/g, ''));
}

function commandLines(markdown: string): string[] {
  const lines: string[] = [];
  for (const block of markdown.matchAll(/```(?:sh|bash|shell)?\n([\s\S]*?)```/g)) {
    const joined = (block[1] as string).replace(/\\\n\s*/g, ' '); // continuation lines
    for (const raw of joined.split('\n')) {
      const m = /^\s*(?:\$\s*)?(?:npx (?:-y )?)?mcp-mtls (.*)$/.exec(raw.replace(/\s+#.*$/, ''));
      if (m) lines.push(m[1] as string);
    }
  }
  return lines;
}

test('every mcp-mtls command line in the README and docs names real commands and options', () => {
  const program = createProgram();
  const problems: string[] = [];
  let checked = 0;
  for (const file of DOCS) {
    for (const line of commandLines(fs.readFileSync(path.join(ROOT, file), 'utf8'))) {
      const argv = words(line);
      let cmd: Command = program;
      for (let sub = cmd.commands.find((c) => c.name() === argv[0]); sub; sub = cmd.commands.find((c) => c.name() === argv[0])) {
        cmd = sub;
        argv.shift();
      }
      if (cmd === program) {
        if (!['--help', '--version', '-V'].includes(argv[0] ?? '')) problems.push(`${file}: unknown command in "mcp-mtls ${line}"`);
        continue;
      }
      const known = new Set((cmd.options as Option[]).flatMap((o) => [o.long, o.short]).filter(Boolean));
      known.add('--help');
      for (const w of argv) if (w.startsWith('--') && !known.has(w.split('=')[0] as string)) problems.push(`${file}: "${w}" is not an option of "mcp-mtls ${cmd.name()}" in "mcp-mtls ${line}"`);
      checked++;
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked >= 12, `${checked} command lines checked`);
});

test("the README's quick start runs as shown", async () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const quick = /## Quick start\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(quick, 'the README has a quick start block');
  const cwd = tmpDir();
  const lines = quick.split('\n').filter((l) => /^npx mcp-mtls /.test(l));
  assert.ok(lines.length >= 4);
  for (const line of lines) {
    const r = await run(process.execPath, [BIN, ...words(line.replace(/^npx mcp-mtls /, ''))], { cwd });
    assert.equal(r.code, 0, `${line}\n${r.stderr}`);
  }
  assert.ok(fs.existsSync(path.join(cwd, 'certs', 'alice.crt')));
  const verify = /```sh\n(openssl verify [^\n]*)\n/.exec(readme)?.[1];
  if (verify) {
    const r = await run('openssl', words(verify).slice(1), { cwd });
    assert.equal(r.code, 0, r.stderr);
  }
});
