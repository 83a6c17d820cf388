/**
 * Issue 18: what `mcp-mtls client-config` writes works where the user has it.
 *
 * - `--runner npx` (the default when client-config itself runs from npx's cache, as after
 *   `npx -y mcp-mtls client-config ...` on a machine with only Node and npx): the entry runs npx
 *   with exact versions of mcp-mtls and of @modelcontextprotocol/sdk (an optional peer, which
 *   `npx mcp-mtls` alone does not install). The written command line is run as a desktop app runs
 *   it (that command, those args, the entry's env over a bare PATH, stdio JSON-RPC) against a
 *   real mTLS MCP server. npx resolves both packages from the local tree of the folder it runs in
 *   (a project holding this checkout and its SDK, npm offline): the stand-in for the download,
 *   with the argv unchanged.
 * - `--client claude-code --native`: the http entry in ~/.claude.json and the certificate
 *   variables Claude Code documents (CLAUDE_CODE_CLIENT_CERT, CLAUDE_CODE_CLIENT_KEY,
 *   NODE_EXTRA_CA_CERTS) in ~/.claude/settings.json; a Node client given only those variables
 *   reaches the server with them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { onPath } from '../../src/cli/bridge-command.js';
import { after, before, test } from 'node:test';
import { cli, cliOk, ROOT, run } from '../support/cli.js';
import { assertRelaysAsAlice } from '../support/desktop-app.js';
import { aliceProfile, startFixture, type McpFixture } from '../support/mcp.js';

const SDK_VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'sdk', 'package.json'), 'utf8')) as { version: string }).version;
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

type Entry = { command: string; args: string[]; env?: Record<string, string> };

let f: McpFixture;
let alice: string;
before(async () => {
  f = await startFixture();
  alice = await aliceProfile(f);
});
after(async () => f.close());

/**
 * The folder a desktop app starts the server in, holding what npx would download: a project
 * whose node_modules has mcp-mtls (this checkout) and the SDK, and mcp-mtls's bin.
 */
function npxStandIn(): string {
  const dir = path.join(f.pki.base, 'desktop-cwd');
  fs.mkdirSync(path.join(dir, 'node_modules', '@modelcontextprotocol'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'));
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "name": "desktop-cwd", "private": true }\n');
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'mcp-mtls'));
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'sdk'), path.join(dir, 'node_modules', '@modelcontextprotocol', 'sdk'));
  fs.symlinkSync(path.join('..', 'mcp-mtls', 'bin', 'mcp-mtls.js'), path.join(dir, 'node_modules', '.bin', 'mcp-mtls'));
  return dir;
}

/** npm without the network, its cache in the test folder */
const offlineNpm = () => ({ npm_config_offline: 'true', npm_config_cache: path.join(f.pki.base, 'npm-cache'), npm_config_update_notifier: 'false' });

test('--runner npx: exact versions of mcp-mtls and the SDK, npx and PATH by node; the entry, run as a desktop app runs it, relays initialize and tools/list', async () => {
  const home = path.join(f.pki.base, 'home-npx');
  fs.mkdirSync(home);
  const out = await cliOk<{ file: string; mcpServers: Record<string, Entry>; runs: { runner: string; packages: string[] } }>(
    ['client-config', '--client', 'claude-desktop', '--name', 'acme', '--bundle', alice, '--runner', 'npx', '--write', '--json'],
    { env: { HOME: home } },
  );
  const entry = (JSON.parse(fs.readFileSync(out.file, 'utf8')) as { mcpServers: Record<string, Entry> }).mcpServers.acme!;
  const nodeDir = path.dirname(process.execPath);
  // the npx beside this node, else (the npm registry's `node` package has none: CI's Node 22 and 24) the one PATH finds
  assert.equal(entry.command, fs.existsSync(path.join(nodeDir, 'npx')) ? path.join(nodeDir, 'npx') : onPath('npx'), 'the npx beside this node, or on PATH, by absolute path');
  assert.ok(path.isAbsolute(entry.command), entry.command);
  assert.deepEqual(entry.args, ['--yes', '--package', `mcp-mtls@${VERSION}`, '--package', `@modelcontextprotocol/sdk@${SDK_VERSION}`, 'mcp-mtls', 'connect', f.url, '--bundle', alice]);
  assert.equal(entry.env?.PATH?.split(':')[0], nodeDir, 'node first on the entry PATH: npx and the mcp-mtls bin start with #!/usr/bin/env node');
  assert.deepEqual(out.runs, { runner: 'npx', npx: entry.command, node: process.execPath, packages: [`mcp-mtls@${VERSION}`, `@modelcontextprotocol/sdk@${SDK_VERSION}`] });

  const cwd = npxStandIn();
  // a desktop app: that command and those args, its env (a bare PATH) with the entry's env over it
  await assertRelaysAsAlice(entry, cwd, { PATH: '/nonexistent', HOME: home, ...offlineNpm(), ...entry.env });

  // the entry's PATH is needed: without it (the app's bare PATH only) npx cannot even start
  const bare = await run(entry.command, entry.args, { cwd, env: { PATH: '/nonexistent', HOME: home, ...offlineNpm() } });
  assert.notEqual(bare.code, 0);
  assert.match(bare.stderr, /node/);
});

test("client-config run from npx's cache, without the SDK there, writes the npx entry (not paths into the cache)", async () => {
  // a copy of the package under .../_npx/<hash>/node_modules/, as `npx -y mcp-mtls` leaves it: no SDK beside it
  const base = path.join(f.pki.base, '_npx', '0123456789abcdef');
  const pkg = path.join(base, 'node_modules', 'mcp-mtls');
  fs.mkdirSync(pkg, { recursive: true });
  for (const entry of ['bin', 'dist', 'package.json']) fs.cpSync(path.join(ROOT, entry), path.join(pkg, entry), { recursive: true });
  const modules = path.join(base, 'node_modules');
  for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name === 'mcp-mtls' || name.startsWith('.') || name === '@modelcontextprotocol') continue;
    fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
  }
  const home = path.join(f.pki.base, 'home-from-npx');
  fs.mkdirSync(home);
  const r = await run(process.execPath, [path.join(pkg, 'bin', 'mcp-mtls.js'), 'client-config', '--client', 'cursor', '--name', 'acme', '--bundle', alice, '--json'], { env: { HOME: home }, cwd: home });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no warning: the entry does not point into the cache');
  const out = JSON.parse(r.stdout) as { mcpServers: Record<string, Entry>; runs: { runner: string } };
  assert.equal(out.runs.runner, 'npx');
  const entry = out.mcpServers.acme!;
  assert.doesNotMatch(JSON.stringify(entry), /_npx/);
  // the SDK this release was tested with (its devDependency), exactly
  const tested = /(\d+\.\d+\.\d+)/.exec((JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['@modelcontextprotocol/sdk']!)![1];
  assert.ok(entry.args.includes(`@modelcontextprotocol/sdk@${tested}`), entry.args.join(' '));

  // issue 18 item 2: the entry docs/clients.md used to show, `npx -y mcp-mtls connect ...`, fails where npx put only mcp-mtls
  fs.mkdirSync(path.join(modules, '.bin'), { recursive: true });
  fs.symlinkSync(path.join('..', 'mcp-mtls', 'bin', 'mcp-mtls.js'), path.join(modules, '.bin', 'mcp-mtls'));
  fs.writeFileSync(path.join(base, 'package.json'), '{ "name": "npx-cache-dir", "private": true }\n');
  const old = await run(entry.command, ['-y', `mcp-mtls@${VERSION}`, 'connect', f.url, '--bundle', alice], { cwd: base, env: { HOME: home, ...offlineNpm(), ...entry.env } });
  assert.equal(old.code, 78, old.stderr);
  assert.match(old.stderr, /`connect` needs @modelcontextprotocol\/sdk, which is not installed/);

  // --runner install there fails (no SDK beside that copy), and the hint names the npx entry
  const pinned = await run(process.execPath, [path.join(pkg, 'bin', 'mcp-mtls.js'), 'client-config', '--client', 'cursor', '--name', 'acme', '--bundle', alice, '--runner', 'install'], { env: { HOME: home }, cwd: home });
  assert.equal(pinned.code, 78, pinned.stderr);
  assert.match(pinned.stderr, /hint: .*--runner npx/);
});

test('--client claude-code --native: the http entry and the certificate variables Claude Code reads; a client given only those variables reaches the server', async () => {
  const pem = path.join(f.pki.base, 'alice-pem');
  await cliOk(['bundle', f.clients.alice.cert, '--dir', f.pki.pki, '--format', 'pem', '--out', pem]);
  const home = path.join(f.pki.base, 'home-native');
  fs.mkdirSync(path.join(home, '.claude'), { recursive: true });
  fs.writeFileSync(path.join(home, '.claude', 'settings.json'), JSON.stringify({ model: 'opus', env: { FOO: 'bar' } }));
  const out = await cliOk<{ file: string; settingsFile: string; env: Record<string, string>; commands: string[] }>(
    ['client-config', '--client', 'claude-code', '--native', '--name', 'acme', '--bundle', pem, '--url', f.url, '--write', '--json'],
    { env: { HOME: home } },
  );
  const realPem = fs.realpathSync(pem);
  const expected = { CLAUDE_CODE_CLIENT_CERT: path.join(realPem, 'cert.pem'), CLAUDE_CODE_CLIENT_KEY: path.join(realPem, 'key.pem'), NODE_EXTRA_CA_CERTS: path.join(realPem, 'ca.pem') };
  assert.deepEqual(out.env, expected);
  assert.deepEqual((JSON.parse(fs.readFileSync(path.join(home, '.claude.json'), 'utf8')) as { mcpServers: unknown }).mcpServers, { acme: { type: 'http', url: f.url } });
  const settings = JSON.parse(fs.readFileSync(path.join(home, '.claude', 'settings.json'), 'utf8')) as { model: string; env: Record<string, string> };
  assert.equal(settings.model, 'opus', 'the rest of settings.json is kept');
  assert.deepEqual(settings.env, { FOO: 'bar', ...expected });
  assert.ok(fs.existsSync(path.join(home, '.claude', 'settings.json.bak')));
  assert.equal(out.commands.at(-1), `claude mcp add --transport http --scope user acme ${f.url}`);
  assert.doesNotMatch(fs.readFileSync(path.join(home, '.claude.json'), 'utf8'), /connect|npx|node/, 'no bridge');

  // what Claude Code does with these variables: one client certificate on its HTTPS connections, the CA added to the trusted ones
  const probe = `
    import fs from 'node:fs';
    import { Agent } from 'undici';
    import { Client } from '@modelcontextprotocol/sdk/client/index.js';
    import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
    const dispatcher = new Agent({ connect: { cert: fs.readFileSync(process.env.CLAUDE_CODE_CLIENT_CERT), key: fs.readFileSync(process.env.CLAUDE_CODE_CLIENT_KEY) } });
    const client = new Client({ name: 'claude-code-stand-in', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[1]), { fetch: (u, init) => fetch(u, { ...init, dispatcher }) }));
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    console.log(JSON.stringify(whoami.content));
    await client.close();
    await dispatcher.close();`;
  const env = settings.env;
  const r = await run(process.execPath, ['--input-type=module', '-e', probe, f.url], { cwd: ROOT, env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /spiffe:\/\/acme\.test\/user\/alice/);
  // and without NODE_EXTRA_CA_CERTS the server's certificate is not trusted: the variable is needed
  const { NODE_EXTRA_CA_CERTS: _ca, ...withoutCa } = env;
  const untrusted = await run(process.execPath, ['--input-type=module', '-e', probe, f.url], { cwd: ROOT, env: withoutCa });
  assert.notEqual(untrusted.code, 0);
  assert.match(untrusted.stderr, /UNABLE_TO_GET_ISSUER_CERT|unable to (get|verify)|SELF_SIGNED/i);
});

test('--native: a bundle that is not a PEM folder, and a client without native support, are usage errors with what to do', async () => {
  const home = path.join(f.pki.base, 'home-native-errors');
  fs.mkdirSync(home);
  const profile = await cli(['client-config', '--client', 'claude-code', '--native', '--name', 'acme', '--bundle', alice], { env: { HOME: home } });
  assert.equal(profile.code, 64, profile.stderr);
  assert.match(profile.stderr, /reads the certificate and key from PEM files; .*alice\.yaml is a bundle profile/);
  assert.match(profile.stderr, /hint: make a PEM folder \(mcp-mtls bundle CERT --format pem --out DIR\)/);
  const cursor = await cli(['client-config', '--client', 'cursor', '--native', '--name', 'acme', '--bundle', alice], { env: { HOME: home } });
  assert.equal(cursor.code, 64, cursor.stderr);
  assert.match(cursor.stderr, /cursor cannot present a client certificate itself: it needs the bridge/);
  assert.deepEqual(fs.readdirSync(home), [], 'nothing written');
});

test('--client hermes-agent --native: client_cert, client_key and ssl_verify of the server in ~/.hermes/config.yaml (the rest kept); curl with those files, as Hermes uses them, gets the server to answer', async () => {
  const pem = path.join(f.pki.base, 'alice-pem-hermes');
  await cliOk(['bundle', f.clients.alice.cert, '--dir', f.pki.pki, '--format', 'pem', '--out', pem]);
  const home = path.join(f.pki.base, 'home-hermes');
  fs.mkdirSync(path.join(home, '.hermes'), { recursive: true });
  const config = path.join(home, '.hermes', 'config.yaml');
  fs.writeFileSync(config, '# my hermes\nmodel: some-model\nmcp_servers:\n  other:\n    url: https://other.example/mcp # keep me\n');
  await cliOk(['client-config', '--client', 'hermes-agent', '--native', '--name', 'acme', '--bundle', pem, '--url', f.url, '--write', '--json'], { env: { HOME: home } });
  const text = fs.readFileSync(config, 'utf8');
  assert.match(text, /^# my hermes\nmodel: some-model\n/);
  assert.match(text, /url: https:\/\/other\.example\/mcp # keep me/);
  const YAML = (await import('yaml')).default;
  const servers = (YAML.parse(text) as { mcp_servers: Record<string, Record<string, string>> }).mcp_servers;
  const dir = fs.realpathSync(pem);
  assert.deepEqual(servers.acme, { url: f.url, client_cert: path.join(dir, 'cert.pem'), client_key: path.join(dir, 'key.pem'), ssl_verify: path.join(dir, 'ca.pem') });
  assert.equal(fs.statSync(config).mode & 0o777, 0o600);

  // an independent client with exactly those three files: the server answers initialize as alice's server
  const acme = servers.acme!;
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'hermes-stand-in', version: '1' } } });
  const curl = (args: string[]) => run('curl', ['-sS', '--max-time', '20', ...args, '-H', 'content-type: application/json', '-H', 'accept: application/json, text/event-stream', '--data', body, acme.url!]);
  const ok = await curl(['--cert', acme.client_cert!, '--key', acme.client_key!, '--cacert', acme.ssl_verify!]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /"serverInfo":\{"name":"test"/);
  // without the client certificate the same request is refused: the files are what gets alice in
  const refused = await curl(['--cacert', acme.ssl_verify!]);
  assert.doesNotMatch(refused.stdout, /"serverInfo"/);

  // without --native, Hermes gets the bridge as a stdio server
  await cliOk(['client-config', '--client', 'hermes-agent', '--name', 'acme-bridge', '--bundle', alice, '--write'], { env: { HOME: home } });
  const bridged = (YAML.parse(fs.readFileSync(config, 'utf8')) as { mcp_servers: Record<string, { command: string; args: string[] }> }).mcp_servers['acme-bridge']!;
  assert.equal(bridged.command, process.execPath);
  assert.deepEqual(bridged.args.slice(1), ['connect', f.url, '--bundle', alice]);
});
