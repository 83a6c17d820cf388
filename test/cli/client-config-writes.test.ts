/**
 * Issue 18 (review): client-config --write edits files the user owns. It refuses, with nothing
 * written, a file whose shape it does not understand (JSON that is not an object, a server list
 * that is not a map), writes nothing when one of the two files of claude-code --native is broken,
 * and writes through a symlinked configuration file (dotfile managers) instead of replacing it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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

test('hermes-agent: server names that YAML 1.1 reads as something else (<<, on, yes) are written quoted: PyYAML, as Hermes loads its config, reads them back as those names', async () => {
  const home = tmpDir();
  const file = path.join(home, '.hermes', 'config.yaml');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, 'mcp_servers:\n  other:\n    url: https://other.test/mcp\n');
  const names = ['<<', 'on', 'yes', 'No', '~', '12'];
  for (const name of names) {
    const r = await cli(['client-config', '--client', 'hermes-agent', '--native', '--name', name, '--bundle', pem, '--url', URL, '--write'], { env: { HOME: home } });
    assert.equal(r.code, 0, r.stderr);
  }
  const printed = await cli(['client-config', '--client', 'hermes-agent', '--native', '--name', '<<', '--bundle', pem, '--url', URL], { env: { HOME: home } });
  const snippet = printed.stdout.slice(printed.stdout.indexOf('\n') + 1, printed.stdout.indexOf('\n', printed.stdout.indexOf('ssl_verify')));
  // PyYAML (YAML 1.1, as a Python agent's yaml.safe_load reads it): keys, as JSON
  const py = 'import json,sys,yaml; d=yaml.safe_load(open(sys.argv[1])); print(json.dumps({str(type(k).__name__)+":"+str(k): v.get("url") for k, v in d["mcp_servers"].items()}))';
  const load = (f: string) => execFileSync('python3', ['-c', py, f], { encoding: 'utf8' }).trim();
  assert.deepEqual(JSON.parse(load(file)), Object.fromEntries([['str:other', 'https://other.test/mcp'], ...names.map((n) => [`str:${n}`, URL])]));
  const printedFile = path.join(home, 'printed.yaml');
  fs.writeFileSync(printedFile, snippet);
  assert.deepEqual(JSON.parse(load(printedFile)), { 'str:<<': URL }, snippet);
});

test("claude-code --native's shell lines: paths and names with quotes, spaces, newlines, $() and backticks stay one word each; a name that would be an option is refused", async () => {
  const weird = path.join(base, `it's a $(touch PWNED) \`touch PWNED\` "x"\nline`);
  fs.mkdirSync(weird);
  for (const f of fs.readdirSync(pem)) fs.copyFileSync(path.join(pem, f), path.join(weird, f));
  const name = `a'b $(touch PWNED) \`x\``;
  const out = await cliOk<{ env: Record<string, string>; commands: string[] }>(['client-config', '--client', 'claude-code', '--native', '--name', name, '--bundle', weird, '--url', URL, '--json'], { env: { HOME: tmpDir() } });
  const cwd = tmpDir();
  // `claude` stands in as a function printing its arguments, one per NUL
  const script = `claude() { printf '%s\\0' "$@"; }\n${out.commands.join('\n')}\nprintf '%s\\0' "$CLAUDE_CODE_CLIENT_CERT" "$CLAUDE_CODE_CLIENT_KEY" "$NODE_EXTRA_CA_CERTS"\n`;
  const words = execFileSync('bash', ['-c', script], { cwd, encoding: 'utf8' }).split('\0').slice(0, -1);
  assert.deepEqual(words, ['mcp', 'add', '--transport', 'http', '--scope', 'user', name, URL, out.env.CLAUDE_CODE_CLIENT_CERT, out.env.CLAUDE_CODE_CLIENT_KEY, out.env.NODE_EXTRA_CA_CERTS]);
  assert.equal(out.env.CLAUDE_CODE_CLIENT_CERT, path.join(fs.realpathSync(weird), 'cert.pem'));
  assert.deepEqual(fs.readdirSync(cwd), [], 'nothing ran');
  for (const bad of ['--scope=project', '-e']) {
    const r = await cli(['client-config', '--client', 'claude-code', '--native', '--name', bad, '--bundle', pem, '--url', URL], { env: { HOME: tmpDir() } });
    assert.equal(r.code, 64, `${bad}: ${r.code} ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /--name/);
  }
});
