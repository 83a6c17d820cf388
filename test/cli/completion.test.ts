/**
 * `mcp-mtls completion bash|zsh|fish`: the scripts come from the program, so every command and
 * option is in them; bash's completion function is run as bash runs it (COMP_WORDS/COMP_CWORD),
 * fish's through `complete -C`, zsh's checked by `zsh -n` and loaded under compinit (.ci/run installs
 * both shells when missing; without them these tests fail, never skip).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Command } from 'commander';
import { createProgram } from '../../src/cli/main.js';
import { cli, cliOk, run, tmpDir } from '../support/cli.js';

const has = (shell: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${shell}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** every command path of the program, read from commander directly */
function paths(cmd: Command, prefix = ''): string[] {
  return cmd.commands.flatMap((c) => {
    const p = prefix ? `${prefix} ${c.name()}` : c.name();
    return [p, ...paths(c, p)];
  });
}

async function script(shell: string): Promise<string> {
  const file = path.join(tmpDir('mcp-mtls-completion-'), `mcp-mtls.${shell}`);
  fs.writeFileSync(file, await cliOk<string>(['completion', shell]));
  return file;
}

/** What bash's completion function offers for the words typed so far (the last one being completed). */
async function bashComplete(file: string, words: string[]): Promise<string[]> {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const r = await run('bash', ['-c', `source '${file}'; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _mcp_mtls; printf '%s\\n' "\${COMPREPLY[@]}"`], { cwd: tmpDir() });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  return r.stdout.split('\n').filter(Boolean);
}

test('completion: every command and subcommand of the program is in each script, and an unknown shell is a usage error', async () => {
  const program = createProgram();
  const all = paths(program);
  assert.ok(all.includes('ca init') && all.includes('tidy') && all.includes('completion'), all.join(', '));
  for (const shell of ['bash', 'zsh', 'fish']) {
    const text = fs.readFileSync(await script(shell), 'utf8');
    for (const p of all) {
      const last = p.split(' ').at(-1) as string;
      assert.ok(text.includes(last), `${shell}: ${p} is missing`);
    }
    for (const c of program.commands.find((c) => c.name() === 'tidy')!.options) assert.ok(text.includes(c.long!.slice(2)), `${shell}: tidy ${c.long}`);
  }
  const bad = await cli(['completion', 'powershell']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /no completion for the shell "powershell"/);
  assert.match(bad.stderr, /bash, zsh, fish/);
});

test('completion bash: commands, subcommands and flags as bash completes them', async () => {
  const file = await script('bash');
  const top = await bashComplete(file, ['mcp-mtls', '']);
  assert.deepEqual(top.filter((w) => w !== 'help').sort(), createProgram().commands.map((c) => c.name()).sort());
  assert.deepEqual(await bashComplete(file, ['mcp-mtls', 'ca', 'i']), ['init', 'import']);
  assert.deepEqual(await bashComplete(file, ['mcp-mtls', 'tidy', '--o']), ['--older-than']);
  assert.deepEqual(await bashComplete(file, ['mcp-mtls', 'tidy', '--dir', 'pki', '--dr']), ['--dry-run'], 'an option value is skipped');
  assert.deepEqual(await bashComplete(file, ['mcp-mtls', 'issue', 'client', '--us']), ['--user']);
  assert.deepEqual(await bashComplete(file, ['mcp-mtls', 'completion', '--h']), ['--help']);
});

test('completion fish: complete -C offers the subcommands and flags', async () => {
  assert.ok(has('fish'), 'fish is not installed (.ci/run installs it: apt-get install fish)');
  const file = await script('fish');
  const r = await run('fish', ['--no-execute', file]);
  assert.equal(r.code, 0, r.stderr);
  const complete = async (line: string) => {
    const out = await run('fish', ['-c', `source '${file}'; complete -C '${line}'`]);
    assert.equal(out.code, 0, out.stderr);
    return out.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]);
  };
  assert.deepEqual(await complete('mcp-mtls ca i'), ['import', 'init']);
  assert.deepEqual(await complete('mcp-mtls tidy --o'), ['--older-than']);
  assert.deepEqual(await complete('mcp-mtls tidy --dir pki --dr'), ['--dry-run']);
  assert.ok((await complete('mcp-mtls ')).includes('tidy'));
});

test('completion zsh: valid zsh, and sourcing it under compinit registers the function', async () => {
  assert.ok(has('zsh'), 'zsh is not installed (.ci/run installs it: apt-get install zsh)');
  const file = await script('zsh');
  const syntax = await run('zsh', ['-n', file]);
  assert.equal(syntax.code, 0, syntax.stderr);
  const r = await run('zsh', ['-fc', `autoload -U compinit; compinit -u -D; source '${file}'; print -r -- $_comps[mcp-mtls]; _mcp_mtls_subs ca; print -r -- $reply`]);
  assert.equal(r.code, 0, r.stderr);
  const [registered, caSubs] = r.stdout.split('\n');
  assert.equal(registered, '_mcp_mtls');
  assert.deepEqual(caSubs?.split(' ').filter((w) => w !== 'help'), createProgram().commands.find((c) => c.name() === 'ca')!.commands.map((c) => c.name()));
});
