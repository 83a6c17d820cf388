/**
 * `mcp-mtls login` as a person runs it (#22): the CLI as a child process (HOME and
 * XDG_CONFIG_HOME in a temporary folder) against a real `ca serve` with sign-in configured and a
 * real OpenID provider (oidc-provider, test/support/oidc.ts), whose browser side is driven by its
 * HTTP driver: for the device flow the test reads the code the CLI printed and approves it; for
 * code + PKCE it opens the URL the CLI printed, signs in, and the provider's last redirect lands
 * on the CLI's loopback listener. Acceptance: after login, a desktop app configured with
 * `client-config --profile` calls a tool as that person through the bridge.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Authority } from '../../src/ca/authority.js';
import type { CaServer } from '../../src/ca/serve/server.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { BIN, cli, tmpDir } from '../support/cli.js';
import { makeCa, serverCreds, startServer, type TestCa } from '../support/ca-serve.js';
import { buildTestServer, TEST_POLICY } from '../support/mcp.js';
import { CLI_CLIENT_ID, startOidcProvider, type TestIdp } from '../support/oidc.js';
import { caMadeDaysAgo, expireProfile } from '../support/profiles.js';

const GROUPS = { sre: { teams: ['sre'], roles: ['oncall'] }, dev: { teams: ['dev'] } };

/** The CLI as a child, its stderr watched line by line (the prompts), bounded in time. */
function spawnCli(args: string[], env: Record<string, string>, options: { terminal?: boolean } = {}) {
  // terminal: under a pseudo-terminal (python's pty.spawn), whose output (stdout and stderr) arrives as it is written
  const [cmd, argv] = options.terminal ? ['python3', ['-c', 'import pty, sys; pty.spawn(sys.argv[1:])', process.execPath, BIN, ...args]] : [process.execPath, [BIN, ...args]];
  const child = spawn(cmd as string, argv as string[], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: [options.terminal ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  child.stdout!.on('data', (d) => {
    stdout += d;
    if (options.terminal) onStderr('');
  });
  const onStderr = (d: string) => {
    stderr += d;
    for (const w of [...waiters]) {
      const m = w.re.exec(seen());
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stderr!.on('data', (d) => onStderr(String(d)));
  const exited = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(timer));
  const seen = () => (options.terminal ? stdout + stderr : stderr);
  return {
    exited,
    kill: () => child.kill('SIGKILL'),
    waitFor(re: RegExp): Promise<RegExpMatchArray> {
      const m = re.exec(seen());
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        void exited.then((r) => reject(new Error(`the CLI exited ${r.code} before printing ${re}: ${r.stderr}`)));
      });
    },
  };
}

describe('mcp-mtls login against ca serve and a real OpenID provider', { timeout: 180_000 }, () => {
  let idp: TestIdp;
  let t: TestCa;
  let ca: CaServer;
  let audit: Record<string, unknown>[];
  let caUrl: string;
  let home: string;
  let env: Record<string, string>;
  let mcp: MtlsServer;
  let mcpUrl: string;
  let closeHandler: () => Promise<void>;

  before(async () => {
    idp = await startOidcProvider();
    const base = caMadeDaysAgo(3); // so that a certificate that has expired since can be made for the expiry case
    const file = path.join(base.dir, 'config.yaml');
    const config = YAML.parse(fs.readFileSync(file, 'utf8'));
    config.login = { providers: [{ name: 'test-idp', issuer: idp.issuer, clientId: CLI_CLIENT_ID, principalClaim: 'preferred_username', groups: GROUPS }] };
    fs.writeFileSync(file, YAML.stringify(config));
    await base.ca.store.close();
    t = { ...base, ca: Authority.open(base.dir) };
    const s = await startServer(t, { login: { cooldownMs: 0, timeoutMs: 2000 } });
    ca = s.server;
    audit = s.audit;
    caUrl = `https://127.0.0.1:${s.port}`;
    home = tmpDir('login-home-');
    env = { HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg') };
    // an mTLS MCP server trusting this CA (the test server: a whoami tool, the test policy)
    const tls = await serverCreds(t.ca);
    fs.writeFileSync(path.join(home, 'srv.crt'), tls.cert);
    fs.writeFileSync(path.join(home, 'srv.key'), tls.key);
    const handler = createMcpSdk1Handler({ serverInfo: { name: 'test', version: '1.0.0' }, build: buildTestServer, policy: () => policyFromText(TEST_POLICY), audit: memoryAudit(), whoami: true });
    closeHandler = () => handler.close();
    mcp = createMtlsServer({ ...tlsFromPki(t.dir, path.join(home, 'srv.crt'), path.join(home, 'srv.key')), audit: memoryAudit(), log: () => undefined }, handler);
    await new Promise<void>((r) => mcp.listen(0, '127.0.0.1', r));
    mcpUrl = `https://127.0.0.1:${(mcp.address() as AddressInfo).port}/mcp`;
  });
  after(async () => {
    await closeHandler();
    mcp.closeAllConnections();
    await new Promise((r) => mcp.close(r));
    await ca.shutdown(100);
    await t.ca.store.close();
    await idp.stop();
  });

  it('device flow: the CLI prints the URL and the code, the person approves, the certificate carries the mapped teams', async () => {
    const run = spawnCli(['login', '--ca', caUrl, '--ca-bundle', t.rootFile, '--device', '--profile', 'alice'], env);
    const [, userCode] = await run.waitFor(/enter the code (\S+)/);
    await idp.approveDevice({ userCode: userCode!, user: 'alice' });
    const r = await run.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /To sign in to test-idp, open http:\/\/127\.0\.0\.1:\d+\/\S+ and enter the code/);
    assert.match(r.stdout, /^Signed in as spiffe:\/\/acme\.test\/user\/alice teams=\[dev,sre\] roles=\[oncall\]\n/);
    const dir = path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'alice');
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, 'bundle.yaml')).mode & 0o777, 0o600);
    const bundle = fs.readFileSync(path.join(dir, 'bundle.yaml'), 'utf8');
    assert.match(bundle, new RegExp(`renewUrl: ${caUrl}/renew`));
    assert.doesNotMatch(bundle, /eyJ/, 'no ID token is kept');
    const who = JSON.parse((await cli(['whoami', '--profile', 'alice', '--json'], { env })).stdout);
    assert.deepEqual([who.principal, who.teams, who.roles, who.via, who.provider], ['spiffe://acme.test/user/alice', ['dev', 'sre'], ['oncall'], 'login', 'test-idp']);
    assert.ok(audit.some((e) => e.event === 'ca.login-sign' && e.status === 200));
  });

  it('code + PKCE on a loopback redirect: the browser comes back to the CLI, which checks state and nonce; then a desktop app calls a tool as that person (acceptance)', async () => {
    const fp = new crypto.X509Certificate(t.rootPem).fingerprint256;
    const run = spawnCli(['login', '--ca', caUrl, '--ca-fingerprint', fp, '--browser', '--profile', 'bob'], env);
    const [, url] = await run.waitFor(/^ {2}(http:\/\/127\.0\.0\.1:\d+\/\S+)$/m);
    const u = new URL(url!);
    assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
    assert.match(u.searchParams.get('redirect_uri')!, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    assert.ok(u.searchParams.get('state') && u.searchParams.get('nonce'));
    const landed = await idp.browse(url!, 'bob');
    assert.match(landed.url, /^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
    assert.equal(landed.status, 200);
    assert.match(landed.body, /Signed in/);
    const r = await run.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Signed in as spiffe:\/\/acme\.test\/user\/bob teams=\[dev\] roles=\[\]\n/);

    // the desktop app: client-config --profile writes its entry; the app starts it and calls a tool
    const cfg = await cli(['client-config', '--client', 'claude-desktop', '--name', 'acme', '--profile', 'bob', '--url', mcpUrl, '--write', '--json'], { env });
    assert.equal(cfg.code, 0, cfg.stderr);
    const written = JSON.parse(cfg.stdout) as { file: string };
    const entry = (JSON.parse(fs.readFileSync(written.file, 'utf8')) as { mcpServers: Record<string, { command: string; args: string[] }> }).mcpServers.acme!;
    assert.ok(entry.args.includes(path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'bob', 'bundle.yaml')), entry.args.join(' '));
    const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: { PATH: '/nonexistent', HOME: home }, stderr: 'pipe' });
    let stderr = '';
    transport.stderr?.on('data', (d) => (stderr += d));
    const client = new Client({ name: 'desktop-app', version: '1.0.0' });
    try {
      await client.connect(transport);
      const res = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: { text: string }[] };
      assert.match(res.content[0]!.text, /spiffe:\/\/acme\.test\/user\/bob/, stderr);
      assert.match(res.content[0]!.text, /dev/);
    } finally {
      await client.close();
    }
    // renews through the CA while valid: the bridge was given the profile's renewal URL
    assert.match(stderr, new RegExp(`renewal: certificate \\S+ valid until \\S+; renewal at \\S+ through ${caUrl}/renew`), stderr);
    const who = await cli(['whoami', '--profile', 'bob'], { env });
    assert.match(who.stdout, new RegExp(`servers: {5}${mcpUrl.replace(/[.]/g, '\\.')}`));
  });

  it('the loopback listener ignores an answer with another state (a forged redirect): 404, nothing exchanged, and the real sign-in still completes', async () => {
    const run = spawnCli(['login', '--ca', caUrl, '--ca-bundle', t.rootFile, '--browser', '--profile', 'forged'], env);
    const [, url] = await run.waitFor(/^ {2}(http:\/\/127\.0\.0\.1:\d+\/\S+)$/m);
    const redirect = new URL(new URL(url!).searchParams.get('redirect_uri')!);
    redirect.search = new URLSearchParams({ code: 'forged-code', state: 'not-the-state', iss: idp.issuer }).toString();
    const landed = await fetch(redirect, { signal: AbortSignal.timeout(10_000) });
    assert.equal(landed.status, 404);
    assert.equal(fs.existsSync(path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'forged')), false);
    // the forged answer did not end the attempt (else anyone could end every sign-in with one request)
    const real = await idp.browse(url!, 'bob');
    assert.equal(real.status, 200, real.body);
    const r = await run.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Signed in as spiffe:\/\/acme\.test\/user\/bob /);
  });

  it('a wrong fingerprint is refused before the provider or the CA hear of the sign-in', async () => {
    const devices = idp.hits('/device/auth');
    const signs = audit.filter((e) => e.event === 'ca.login-sign').length;
    const r = await cli(['login', '--ca', caUrl, '--ca-fingerprint', 'ab'.repeat(32), '--device', '--profile', 'mallory'], { env });
    assert.equal(r.code, 65, r.stderr);
    assert.match(r.stderr, /presented a root whose SHA-256 is [0-9A-F:]+, not AB:AB:[0-9A-F:]+: refused, nothing was sent/);
    assert.equal(idp.hits('/device/auth'), devices);
    assert.equal(audit.filter((e) => e.event === 'ca.login-sign').length, signs);
    assert.equal(fs.existsSync(path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'mallory')), false);
    const none = await cli(['login', '--ca', caUrl, '--device', '--profile', 'mallory'], { env });
    assert.equal(none.code, 64);
    assert.match(none.stderr, /the CA is not trusted yet: pass --ca-fingerprint HEX/);
  });

  it('an expired certificate: connect --profile says to run mcp-mtls login --profile NAME (no terminal: no sign-in started)', async () => {
    await expireProfile(t, path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'alice', 'bundle.yaml'), 'alice', 'user');
    const r = await cli(['connect', mcpUrl, '--profile', 'alice'], { env });
    assert.equal(r.code, 65, r.stderr);
    assert.match(r.stderr, /error: the certificate of profile "alice" has expired \(at [^)]+\): run `mcp-mtls login --profile alice`/);
    // signing in again (same CA: the pinned root of the profile, no flags) replaces it
    const run = spawnCli(['login', '--device', '--profile', 'alice'], env);
    const [, userCode] = await run.waitFor(/enter the code (\S+)/);
    await idp.approveDevice({ userCode: userCode!, user: 'alice' });
    const again = await run.exited;
    assert.equal(again.code, 0, again.stderr);
    const who = JSON.parse((await cli(['whoami', '--profile', 'alice', '--json'], { env })).stdout);
    assert.equal(who.expired, false);
  });

  it('on a terminal, connect --profile with an expired certificate starts the device flow itself and then bridges', async () => {
    await expireProfile(t, path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'alice', 'bundle.yaml'), 'alice', 'user');
    const run = spawnCli(['connect', mcpUrl, '--profile', 'alice'], env, { terminal: true });
    try {
      await run.waitFor(/has expired \(at [^)]+\): run `mcp-mtls login --profile alice`; signing in now/);
      const [, userCode] = await run.waitFor(/enter the code (\S+)/);
      await idp.approveDevice({ userCode: userCode!, user: 'alice' });
      await run.waitFor(/relaying stdio to https:\/\/127\.0\.0\.1:\d+\/mcp as spiffe:\/\/acme\.test\/user\/alice/);
    } finally {
      run.kill();
    }
    const who = JSON.parse((await cli(['whoami', '--profile', 'alice', '--json'], { env })).stdout);
    assert.equal(who.expired, false);
  });
});
