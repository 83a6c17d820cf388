/**
 * docs/clients.md's table of desktop clients and its configuration examples are generated from
 * the functions client-config itself uses (scripts/client-examples.ts, written by `npm run
 * docs:cli`): this fails when the docs drift from the program (issue 18: the docs showed
 * `["-y","mcp-mtls","connect",...]`, which fails, while the program wrote something else).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { clientExamples, clientsDocWithExamples, CLIENTS_DOC } from '../../scripts/client-examples.js';
import { CLIENTS } from '../../src/cli/client-entries.js';

test('docs/clients.md: the generated client table and examples are current (npm run docs:cli)', () => {
  const doc = fs.readFileSync(CLIENTS_DOC, 'utf8');
  assert.equal(doc, clientsDocWithExamples(doc), 'docs/clients.md is stale: run `npm run docs:cli`');
});

test('docs/clients.md: every client client-config knows is in the table, and no example runs an unpinned npx mcp-mtls', () => {
  const parts = clientExamples();
  for (const c of CLIENTS) assert.match(parts['clients-table']!, new RegExp(`\\| \`${c}\``), c);
  const doc = fs.readFileSync(CLIENTS_DOC, 'utf8');
  // an entry's args: a bare `mcp-mtls` package name for npx (what the docs showed before) is never written
  for (const m of doc.matchAll(/"args": (\[.*\])/g)) {
    const args = JSON.parse(m[1]!) as string[];
    assert.ok(!/^-y$|^--yes$/.test(args[0] ?? '') || args.includes(`--package`), `an npx entry without --package: ${m[1]}`);
    for (const [i, a] of args.entries()) if (args[i - 1] === '--package') assert.match(a, /@\d+\.\d+\.\d+$/, `not an exact version: ${a}`);
  }
});
