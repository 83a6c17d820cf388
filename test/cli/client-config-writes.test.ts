/**
 * Issue 18 (review): client-config --write edits files the user owns. It refuses, with nothing
 * written, a file whose shape it does not understand (JSON that is not an object, a server list
 * that is not a map), writes nothing when one of the two files of claude-code --native is broken,
 * and writes through a symlinked configuration file (dotfile managers) instead of replacing it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { cli, cliOk, tmpDir } from '../support/cli.js';
import { makePki } from '../support/pki.js';

const URL = 'https://mcp.acme.test/mcp';
let base: string;
let pem: string;
before(async () => {
  const pki = await makePki();
  base = pki.base;
  const alice = await pki.issue(['issue', 'client', '--user', 'alice']);
  pem = path.join(base, 'alice-pem');
  await cliOk(['bundle', alice.files.cert, '--dir', pki.pki, '--format', 'pem', '--out', pem]);
});

/** a bridge entry for cursor: --url given, so the bundle is not read */
const cursor = (home: string) => cli(['client-config', '--client', 'cursor', '--name', 'acme', '--bundle', path.join(home, 'alice.yaml'), '--url', URL, '--write'], { env: { HOME: home } });

test('a config file that is JSON but not an object, or whose server list is not an object, is refused and left as it was', async () => {
  for (const text of ['[{"command":"x"}]\n', '"just a string"\n', 'null\n', '{"mcpServers": ["keep", "me"]}\n', '{"mcpServers": "keep me"}\n']) {
    const home = tmpDir();
    const file = path.join(home, '.cursor', 'mcp.json');
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, text);
    const r = await cursor(home);
    assert.notEqual(r.code, 0, `${text.trim()}: exit ${r.code} ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /mcp\.json/);
    assert.doesNotMatch(r.stderr, /TypeError|at .*\.js:\d+/, 'a MtlsError, not a crash');
    assert.equal(fs.readFileSync(file, 'utf8'), text, `${text.trim()}: the file is unchanged`);
  }
});

test('hermes-agent: mcp_servers that is not a mapping is refused and the file left as it was', async () => {
  const home = tmpDir();
  const file = path.join(home, '.hermes', 'config.yaml');
  fs.mkdirSync(path.dirname(file));
  const text = '# mine\nmcp_servers:\n  - keep\n  - me\n';
  fs.writeFileSync(file, text);
  const r = await cli(['client-config', '--client', 'hermes-agent', '--native', '--name', 'acme', '--bundle', pem, '--url', URL, '--write'], { env: { HOME: home } });
  assert.notEqual(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /mcp_servers/);
  assert.equal(fs.readFileSync(file, 'utf8'), text);
});

test('claude-code --native: a broken ~/.claude.json is refused before ~/.claude/settings.json is touched', async () => {
  const home = tmpDir();
  fs.mkdirSync(path.join(home, '.claude'));
  const settings = path.join(home, '.claude', 'settings.json');
  const settingsText = '{ "model": "opus" }\n';
  fs.writeFileSync(settings, settingsText);
  fs.writeFileSync(path.join(home, '.claude.json'), '{ "mcpServers": { ');
  const r = await cli(['client-config', '--client', 'claude-code', '--native', '--name', 'acme', '--bundle', pem, '--url', URL, '--write'], { env: { HOME: home } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /\.claude\.json is not valid JSON/);
  assert.equal(fs.readFileSync(settings, 'utf8'), settingsText, 'settings.json unchanged');
  assert.ok(!fs.existsSync(`${settings}.bak`), 'and no backup of it made');
});

test('a symlinked config file stays a symlink: the entry is written into its target, whose mode is kept', async () => {
  const home = tmpDir();
  const dotfiles = path.join(home, 'dotfiles');
  fs.mkdirSync(dotfiles);
  fs.mkdirSync(path.join(home, '.cursor'));
  const target = path.join(dotfiles, 'cursor-mcp.json');
  fs.writeFileSync(target, '{ "mcpServers": { "other": { "command": "x" } }, "theme": 1 }\n', { mode: 0o600 });
  fs.chmodSync(target, 0o600);
  const link = path.join(home, '.cursor', 'mcp.json');
  fs.symlinkSync(target, link);
  const r = await cursor(home);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.lstatSync(link).isSymbolicLink(), `${link} is still a symlink`);
  const written = JSON.parse(fs.readFileSync(target, 'utf8')) as { mcpServers: Record<string, unknown>; theme: number };
  assert.deepEqual(Object.keys(written.mcpServers), ['other', 'acme']);
  assert.equal(written.theme, 1);
  assert.equal(fs.statSync(target).mode & 0o777, 0o600);
});

test('client-config runs at once on the same file: every entry is kept (the read-merge-write is locked)', async () => {
  const home = tmpDir();
  const names = Array.from({ length: 8 }, (_, i) => `server-${i}`);
  const runs = await Promise.all(names.map((name) => cli(['client-config', '--client', 'cursor', '--name', name, '--bundle', path.join(home, 'alice.yaml'), '--url', URL, '--write'], { env: { HOME: home } })));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const file = path.join(home, '.cursor', 'mcp.json');
  assert.deepEqual(Object.keys((JSON.parse(fs.readFileSync(file, 'utf8')) as { mcpServers: object }).mcpServers).sort(), names);
  assert.deepEqual(fs.readdirSync(path.dirname(file)).filter((n) => !n.startsWith('mcp.json')), [], 'no lock or temporary file left behind');
});
