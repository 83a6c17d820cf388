/** What the CLI does only on a terminal: passphrase prompts (hidden, asked twice for new keys) and the batch progress bar. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, ROOT, run, tmpDir } from '../support/cli.js';

const PTY = path.join(ROOT, 'test', 'support', 'pty_run.py');
const onTty = (answers: [string, string][], args: string[]) =>
  run('python3', [PTY, ...answers.flatMap(([re, text]) => ['--answer', `${re}=${text}`]), '--', process.execPath, BIN, ...args]);

test('ca init --encrypt-keys asks twice on a terminal, without echo; issue asks once', async () => {
  const dir = tmpDir();
  const pki = path.join(dir, 'pki');
  const init = await onTty([['New CA key passphrase:', 'tty secret'], ['Repeat the passphrase:', 'tty secret']], ['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test', '--encrypt-keys']);
  assert.equal(init.code, 0, init.stdout);
  assert.doesNotMatch(init.stdout, /tty secret/, 'the passphrase is not echoed');
  assert.match(fs.readFileSync(path.join(pki, 'private', 'intermediate.key'), 'utf8'), /ENCRYPTED PRIVATE KEY/);

  const issue = await onTty([['Passphrase for the intermediate CA key:', 'tty secret']], ['issue', 'client', '--dir', pki, '--user', 'alice', '--out', path.join(dir, 'out')]);
  assert.equal(issue.code, 0, issue.stdout);
  assert.match(issue.stdout, /Issued client certificate for spiffe:\/\/acme\.test\/user\/alice/);

  const wrong = await onTty([['Passphrase for the intermediate CA key:', 'nope']], ['issue', 'client', '--dir', pki, '--user', 'bob', '--out', path.join(dir, 'out')]);
  assert.equal(wrong.code, 77);
  assert.match(wrong.stdout, /wrong passphrase/);
});

test('mismatched passphrases at init create nothing', async () => {
  const dir = tmpDir();
  const r = await onTty([['New CA key passphrase:', 'one'], ['Repeat the passphrase:', 'two']], ['ca', 'init', '--dir', path.join(dir, 'pki'), '--trust-domain', 'acme.test', '--encrypt-keys']);
  assert.equal(r.code, 64);
  assert.match(r.stdout, /passphrases do not match/);
  assert.equal(fs.existsSync(path.join(dir, 'pki')), false);
});

test('batch issuance shows a progress bar on a terminal and a summary', async () => {
  const dir = tmpDir();
  const pki = path.join(dir, 'pki');
  await run(process.execPath, [BIN, 'ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  const csv = path.join(dir, 'people.csv');
  fs.writeFileSync(csv, `type,id,teams\n${Array.from({ length: 40 }, (_, i) => `user,u${i},t${i % 3}`).join('\n')}\n`);
  const r = await onTty([], ['issue', 'client', '--dir', pki, '--batch', csv, '--out', path.join(dir, 'out')]);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /issuing \[#{30}\] 40\/40/);
  assert.match(r.stdout, /Issued 40 client certificates in [\d.]+ s/);
});
