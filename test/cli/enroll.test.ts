/**
 * `mcp-mtls enroll`, `whoami` and `logout` against a real `ca serve` (in this process, HTTPS on
 * 127.0.0.1:0), the CLI run as a child with HOME and XDG_CONFIG_HOME in a temporary folder:
 * one command from token to bundle, the root pinned before anything is sent, the profile's
 * modes, and logout revoking the certificate so that a real mTLS MCP server refuses it.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import { createEnrollmentToken, listTokens } from '../../src/ca/tokens.js';
import { loadBundle } from '../../src/bundle/load.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { cli, tmpDir } from '../support/cli.js';
import { makeCa, serverCreds, startServer, type TestCa } from '../support/ca-serve.js';
import { caMadeDaysAgo, expireProfile } from '../support/profiles.js';
import { buildTestServer, connect, TEST_POLICY } from '../support/mcp.js';
import type { CaServer } from '../../src/ca/serve/server.js';

const fingerprintOf = (pem: string) => new crypto.X509Certificate(pem).fingerprint256; // AB:CD:...

describe('mcp-mtls enroll / whoami / logout against ca serve', { timeout: 120_000 }, () => {
  let t: TestCa;
  let other: TestCa;
  let server: CaServer;
  let audit: Record<string, unknown>[];
  let caUrl: string;
  let home: string;
  let env: Record<string, string>;

  const token = async (id: string) => (await createEnrollmentToken(t.ca, { kind: 'service', id, teams: ['ci'], roles: ['deployer'], ttlMs: 600_000 })).secret;
  const tokenFile = async (id: string) => {
    const f = path.join(home, `${id}.token`);
    fs.writeFileSync(f, `${await token(id)}\n`, { mode: 0o600 });
    return f;
  };
  const unusedTokens = async () => (await listTokens(t.ca)).filter((x) => x.status === 'unused').length;

  before(async () => {
    t = caMadeDaysAgo(3);
    other = makeCa('other.test');
    const s = await startServer(t);
    server = s.server;
    audit = s.audit;
    caUrl = `https://127.0.0.1:${s.port}`;
    home = tmpDir('enroll-home-');
    env = { HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg') };
  });
  after(async () => {
    await server.shutdown(100);
    await t.ca.store.close();
    await other.ca.store.close();
  });

  it('enrolls into a profile in one command: private folders and files, the claims of the token, renewal URL and pinned root kept', async () => {
    const r = await cli(['enroll', '--ca', caUrl, '--ca-bundle', t.rootFile, '--token-file', await tokenFile('build-bot'), '--profile', 'bot'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Enrolled spiffe:\/\/acme\.test\/service\/build-bot teams=\[ci\] roles=\[deployer\]/);
    assert.doesNotMatch(r.stderr, /warning/);
    const dir = path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'bot');
    for (const d of [dir, path.dirname(dir), path.dirname(path.dirname(dir))]) assert.equal(fs.statSync(d).mode & 0o777, 0o700, d);
    for (const f of ['bundle.yaml', 'profile.json']) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['bundle.yaml', 'profile.json']); // no temporary file left
    const bundle = await loadBundle({ profile: 'bot', env: { HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg') } });
    assert.equal(bundle.identity?.principal, 'spiffe://acme.test/service/build-bot');
    assert.equal(bundle.renewUrl, `${caUrl}/renew`);
    assert.equal(bundle.ca.length, 1);
    assert.ok(bundle.ca[0]!.equals(t.ca.rootDer));
    assert.equal(await unusedTokens(), 0);
  });

  it('whoami shows principal, teams, roles, CA, servers and expiry, as text and JSON', async () => {
    const text = await cli(['whoami', '--profile', 'bot'], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^spiffe:\/\/acme\.test\/service\/build-bot\n {2}teams: {7}ci\n {2}roles: {7}deployer\n {2}valid until: \d{4}-/);
    assert.match(text.stdout, new RegExp(`CA: {10}${caUrl.replace(/[.]/g, '\\.')}/? \\(enrolled with a token\\)`));
    const json = JSON.parse((await cli(['whoami', '--profile', 'bot', '--json'], { env })).stdout);
    assert.equal(json.principal, 'spiffe://acme.test/service/build-bot');
    assert.deepEqual(json.teams, ['ci']);
    assert.deepEqual(json.roles, ['deployer']);
    assert.equal(json.expired, false);
    assert.equal(json.via, 'enroll');
    assert.ok(Date.parse(json.notAfter) > Date.now());
    const none = await cli(['whoami', '--profile', 'nobody'], { env });
    assert.equal(none.code, 66);
    assert.match(none.stderr, /there is no profile "nobody"/);
  });

  it('a wrong fingerprint is refused before the token is sent (the token stays unused, no /sign reached the CA)', async () => {
    const before = audit.filter((e) => e.event === 'ca.sign').length;
    const file = await tokenFile('fp-bot');
    const r = await cli(['enroll', '--ca', caUrl, '--ca-fingerprint', fingerprintOf(other.rootPem), '--token-file', file, '--profile', 'fp'], { env });
    assert.equal(r.code, 65, r.stderr);
    assert.match(r.stderr, /presented a root whose SHA-256 is [0-9A-F:]{95}, not [0-9A-F:]{95}: refused, nothing was sent/);
    assert.equal(audit.filter((e) => e.event === 'ca.sign').length, before);
    assert.equal(await unusedTokens(), 1);
    assert.equal(fs.existsSync(path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'fp')), false);
    // the right one, lowercase without colons: accepted
    const ok = await cli(['enroll', '--ca', caUrl, '--ca-fingerprint', fingerprintOf(t.rootPem).replace(/:/g, '').toLowerCase(), '--token-file', file, '--profile', 'fp'], { env });
    assert.equal(ok.code, 0, ok.stderr);
  });

  it("a CA whose TLS certificate does not chain to the pinned root gets nothing (--ca-bundle of another CA)", async () => {
    const file = await tokenFile('tls-bot');
    const before = await unusedTokens();
    const r = await cli(['enroll', '--ca', caUrl, '--ca-bundle', other.rootFile, '--token-file', file, '--out', path.join(home, 'tls-bot.yaml')], { env });
    assert.equal(r.code, 69, r.stderr);
    assert.match(r.stderr, /error: cannot connect to https:\/\/127\.0\.0\.1:\d+: .*pinned root/);
    assert.equal(await unusedTokens(), before);
    assert.equal(fs.existsSync(path.join(home, 'tls-bot.yaml')), false);
  });

  it('--token in argv works with a warning; MCP_MTLS_TOKEN and --out DIR --format pem', async () => {
    const warned = await cli(['enroll', '--ca', caUrl, '--ca-bundle', t.rootFile, '--token', await token('argv-bot'), '--out', path.join(home, 'argv-bot.yaml')], { env });
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /warning: --token puts the secret in the command line/);
    const out = path.join(home, 'pem-bot');
    const r = await cli(['enroll', '--ca', caUrl, '--ca-bundle', t.rootFile, '--format', 'pem', '--out', out, '--json'], { env: { ...env, MCP_MTLS_TOKEN: await token('pem-bot') } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).principal, 'spiffe://acme.test/service/pem-bot');
    assert.deepEqual(fs.readdirSync(out).sort(), ['ca.pem', 'cert.pem', 'key.pem']);
    assert.equal(fs.statSync(path.join(out, 'key.pem')).mode & 0o777, 0o600);
    const none = await cli(['enroll', '--ca', caUrl, '--ca-bundle', t.rootFile, '--out', path.join(home, 'x.yaml')], { env });
    assert.equal(none.code, 64);
    assert.match(none.stderr, /no enrollment token: pass --token-file FILE or set MCP_MTLS_TOKEN/);
    const used = await cli(['enroll', '--ca', caUrl, '--ca-bundle', t.rootFile, '--out', path.join(home, 'y.yaml')], { env: { ...env, MCP_MTLS_TOKEN: 'mcpt_0123456789abcdef_nope' } });
    assert.equal(used.code, 77, used.stderr);
    assert.match(used.stderr, /the CA refused the enrollment token \(401 TOKEN_INVALID\)/);
    assert.doesNotMatch(used.stderr + used.stdout, /mcpt_0123456789abcdef_nope/); // the secret is never echoed
  });

  it('an expired enrolled certificate: connect --profile says to enroll again, before connecting', async () => {
    const r = await cli(['enroll', '--ca', caUrl, '--ca-bundle', t.rootFile, '--token-file', await tokenFile('old-bot'), '--profile', 'old'], { env });
    assert.equal(r.code, 0, r.stderr);
    await expireProfile(t, path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'old', 'bundle.yaml'), 'old-bot');
    const c = await cli(['connect', 'https://127.0.0.1:1/mcp', '--profile', 'old'], { env });
    assert.equal(c.code, 65, c.stderr);
    assert.match(c.stderr, /the certificate of profile "old" has expired \(at [^)]+\): enroll again with a new token/);
    const w = await cli(['whoami', '--profile', 'old'], { env });
    assert.match(w.stdout, /EXPIRED/);
  });

  it('logout revokes the certificate at the CA (a server with the new CRL refuses it) and deletes the key and the profile', async () => {
    const kept = path.join(home, 'bot-before-logout.yaml');
    const dir = path.join(home, 'xdg', 'mcp-mtls', 'profiles', 'bot');
    fs.copyFileSync(path.join(dir, 'bundle.yaml'), kept);
    const serial = (await loadBundle(kept)).identity!.serial;
    const r = await cli(['logout', '--profile', 'bot'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Revoked certificate ${serial}`));
    assert.equal(fs.existsSync(dir), false);
    assert.ok(audit.some((e) => e.event === 'ca.revoke-self' && e.status === 200 && e.serial === serial));
    // a real mTLS MCP server, loading the CA folder's CRLs as servers do, refuses the serial
    const tls = await serverCreds(t.ca);
    fs.writeFileSync(path.join(home, 'srv.crt'), tls.cert);
    fs.writeFileSync(path.join(home, 'srv.key'), tls.key);
    const handler = createMcpSdk1Handler({ serverInfo: { name: 't', version: '1' }, build: buildTestServer, policy: () => policyFromText(TEST_POLICY), audit: memoryAudit(), whoami: true });
    const mcp = createMtlsServer({ ...tlsFromPki(t.dir, path.join(home, 'srv.crt'), path.join(home, 'srv.key')), audit: memoryAudit(), log: () => undefined }, handler);
    await new Promise<void>((res) => mcp.listen(0, '127.0.0.1', res));
    try {
      const url = `https://127.0.0.1:${(mcp.address() as AddressInfo).port}/mcp`;
      const b = await loadBundle(kept);
      const pem = (d: Buffer[]) => d.map((x) => new crypto.X509Certificate(x).toString()).join('');
      const files = { cert: path.join(home, 'k.crt'), key: path.join(home, 'k.key'), ca: path.join(home, 'k.ca') };
      fs.writeFileSync(files.cert, pem([...b.chain]));
      fs.writeFileSync(files.key, b.key.export({ format: 'pem', type: 'pkcs8' }) as string);
      fs.writeFileSync(files.ca, pem([...b.ca]));
      await assert.rejects(() => connect(url, files), /certificate_revoked|revoked/);
    } finally {
      await handler.close();
      mcp.closeAllConnections();
      await new Promise((res) => mcp.close(res));
    }
    // the revoked certificate cannot revoke (or renew) again; logout of a missing profile is an error
    const again = await cli(['logout', '--profile', 'bot'], { env });
    assert.equal(again.code, 66);
  });
});
