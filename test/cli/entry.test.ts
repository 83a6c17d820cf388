/** src/cli/entry.ts: a command line naming a listed group runs with that group only, and it is the same command as in the full program. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from 'commander';
import { GROUPS, programFor } from '../../src/cli/entry.js';
import { createProgram } from '../../src/cli/main.js';

/** every command under cmd, with its help text (usage, arguments, options, descriptions) */
function helpTree(cmd: Command, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const sub of cmd.commands) {
    const name = `${prefix} ${sub.name()}`.trim();
    out[name] = sub.helpInformation();
    Object.assign(out, helpTree(sub, name));
  }
  return out;
}

test('each listed first word loads a group that defines that command, with the same subcommands, options and help as the full program', async () => {
  const full = helpTree(createProgram());
  for (const word of Object.keys(GROUPS)) {
    const program = await programFor(['node', 'mcp-mtls', word]);
    assert.ok(program.commands.some((c) => c.name() === word), `the group for "${word}" defines it`);
    const lazy = helpTree(program);
    for (const [name, help] of Object.entries(lazy)) assert.equal(help, full[name], `"${name}" from the group of "${word}" is not the full program's: list the module that adds to it in GROUPS (src/cli/entry.ts)`);
    for (const name of Object.keys(full).filter((n) => n === word || n.startsWith(`${word} `))) assert.ok(name in lazy, `"${name}" is in the full program but not in the group of "${word}": add its module to GROUPS (src/cli/entry.ts)`);
    assert.ok(program.commands.length < createProgram().commands.length, `"${word}" loads one group, not all`);
  }
});

test('help, completion, a typo or an option first get the full program (suggestions, every command)', async () => {
  const all = createProgram().commands.map((c) => c.name());
  for (const argv of [[], ['--help'], ['help'], ['completion', 'bash'], ['isue', 'client'], ['--json', 'issue'], ['constructor'], ['__proto__']]) {
    const program = await programFor(['node', 'mcp-mtls', ...argv]);
    assert.deepEqual(program.commands.map((c) => c.name()), all, argv.join(' '));
  }
});
