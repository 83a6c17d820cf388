/**
 * The operator console in a real browser: Debian's headless Chromium driven by playwright-core
 * (no browser download), the operator's client certificate given through the browser
 * context's `clientCertificates` (Playwright presents it in the TLS handshake to the origin
 * named), against `ca serve`'s real HTTPS listener, a CA folder, a real MCP server (SDK 1.x
 * adapter) watching the CA's CRL files and writing its audit lines where the console reads
 * them, and real MCP clients. Screenshots go to test-output/console/ (kept after the run).
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { createCaServer, type CaServer } from '../../src/ca/serve/server.js';
import { createConsole } from '../../src/console/console.js';
import { createAuditLog } from '../../src/mtls/audit.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { loadPolicy } from '../../src/policy-file/load.js';
import { privateKeyPem } from '../../src/x509/keys.js';
import { tmpDir } from '../support/cli.js';
import { buildTestServer, connect } from '../support/mcp.js';

// page.evaluate callbacks run in the browser; this module is type-checked without the DOM library
declare const document: any; // eslint-disable-line @typescript-eslint/no-explicit-any
type HTMLCanvasElement = any; // eslint-disable-line @typescript-eslint/no-explicit-any
type HTMLFormElement = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = path.join(ROOT, 'test-output', 'console');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const YEAR = 365 * 86_400_000;

const POLICY = `version: 1
rules:
  - id: dev-no-deploy
    description: the dev team never deploys to production
    effect: deny
    subjects: { teams: [dev] }
    tools: [deploy]
  - id: sre-deploy
    subjects: { teams: [sre] }
    tools: [deploy]
  - id: everyone
    subjects: { any: true }
    tools: [search, who, whoami, slow]
  - id: dev-staging
    subjects: { teams: [dev] }
    tools: [deploy_staging]
    when: 'args.env == "staging"'
`;

type Files = { cert: string; key: string; ca: string; serial: string; certPem: string; keyPem: string };

describe('the operator console in Chromium', { timeout: 240_000 }, () => {
  let base: string;
  let dir: string;
  let ca: Authority;
  let caServer: CaServer;
  let consoleUrl: string;
  let mcp: MtlsServer;
  let mcpClose: () => Promise<void>;
  let mcpUrl: string;
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  const audit: Record<string, unknown>[] = [];
  const people: Record<string, Files> = {};
  const expected = { valid: 0, expiring: 0, expired: 0, revoked: 0 };

  const shot = async (p: Page, name: string) => {
    fs.mkdirSync(SHOTS, { recursive: true });
    await p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };
  const open = async (hash: string) => {
    await page.goto(`${consoleUrl}#/${hash}`);
    await page.waitForSelector('main h2', { timeout: 15_000 });
  };

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `the console tests need Debian's chromium at ${CHROMIUM} (.ci/run installs it)`);
    base = tmpDir('console-');
    dir = path.join(base, 'pki');
    initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
    const decisions = path.join(base, 'decisions.jsonl');
    fs.writeFileSync(path.join(base, 'policy.yaml'), POLICY);
    const cfgFile = path.join(dir, 'config.yaml');
    const cfg = YAML.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.console = { policy: '../policy.yaml', decisions: { file: '../decisions.jsonl' } };
    fs.writeFileSync(cfgFile, YAML.stringify(cfg));
    ca = Authority.open(dir);
    const write = (name: string, issued: { chainPem: string; key?: { pkcs8: Uint8Array } | undefined; record: { serial: string } }): Files => {
      const cert = path.join(base, `${name}.crt`);
      const key = path.join(base, `${name}.key`);
      const keyPem = privateKeyPem(issued.key!.pkcs8);
      fs.writeFileSync(cert, issued.chainPem);
      fs.writeFileSync(key, keyPem, { mode: 0o600 });
      return { cert, key, ca: path.join(dir, 'root.crt'), serial: issued.record.serial, certPem: issued.chainPem, keyPem };
    };
    const client = async (id: string, teams: string[], roles: string[], v: { ttlMs?: number; notBefore?: Date; notAfter?: Date } = {}) =>
      (people[id] = write(id, await ca.issueClient({ kind: 'user', id, teams, roles, ttlMs: 20 * 86_400_000, ...v })));
    await client('ops', ['platform'], ['ca-admin']);
    await client('alice', ['sre'], ['admin']);
    await client('bob', ['dev'], []);
    await client('carol', ['sre'], []);
    await client('erin', ['dev'], [], { ttlMs: 2 * 86_400_000 }); // expiring within 7 days
    const now = Date.now();
    await client('frank', ['dev'], [], { ttlMs: undefined, notAfter: new Date(now + 2000) }); // expired by the time the overview is read (the CA issues nothing already expired)
    await client('dave', ['sre'], []);
    const caTls = write('ca-tls', await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] }));
    const mcpTls = write('mcp-tls', await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] }));
    // dave is revoked before the console starts (through the library, as `mcp-mtls revoke` does)
    const { revokeCertificate } = await import('../../src/ca/revocation.js');
    await revokeCertificate(ca, people.dave!.serial, 'keyCompromise');
    await new Promise((r) => setTimeout(r, Math.max(0, now + 3000 - Date.now())));
    Object.assign(expected, { valid: 7, expiring: 1, expired: 1, revoked: 1 }); // ops alice bob carol erin + 2 servers

    const assetsDir = path.join(base, 'web');
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-console.mjs'), assetsDir]);
    caServer = createCaServer({ authority: ca, cert: caTls.certPem, key: caTls.keyPem, audit: (e) => audit.push(e), console: createConsole({ authority: ca, audit: (e) => audit.push(e), assetsDir }) });
    await new Promise<void>((r) => caServer.listen(0, '127.0.0.1', r));
    const origin = `https://127.0.0.1:${(caServer.address() as AddressInfo).port}`;
    consoleUrl = `${origin}/console/`;

    const mcpAudit = createAuditLog(decisions);
    const handler = createMcpSdk1Handler({ serverInfo: { name: 'test', version: '1.0.0' }, build: buildTestServer, policy: loadPolicy(path.join(base, 'policy.yaml')), audit: mcpAudit });
    mcp = createMtlsServer({ ...tlsFromPki(dir, mcpTls.cert, mcpTls.key), audit: mcpAudit, log: () => undefined }, handler);
    await new Promise<void>((r) => mcp.listen(0, '127.0.0.1', r));
    mcpUrl = `https://localhost:${(mcp.address() as AddressInfo).port}/mcp`;
    mcpClose = async () => {
      await handler.close();
      mcp.closeAllConnections();
      await new Promise((r) => mcp.close(r));
    };

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    admin = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 }, clientCertificates: [{ origin, cert: Buffer.from(people.ops!.certPem), key: Buffer.from(people.ops!.keyPem) }] });
    page = await admin.newPage();
  });

  after(async () => {
    await browser?.close();
    await caServer?.shutdown(500);
    await mcpClose?.();
  });

  it('the overview shows the counts of valid, expiring, expired and revoked certificates', async () => {
    await open('overview');
    for (const k of ['valid', 'expiring', 'expired', 'revoked'] as const) {
      assert.equal(await page.textContent(`[data-testid=count-${k}] .n`), String(expected[k]), k);
    }
    const text = await page.innerText('main');
    assert.match(text, /acme\.test MCP CA Root/);
    assert.match(text, /intermediate\t2\t/, 'the intermediate CRL is number 2 (dave revoked)');
    await shot(page, 'overview');
  });

  it('filtering by principal finds alice and only alice', async () => {
    await open('certs');
    await page.fill('input[name=q]', 'alice');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=cert-table] tbody tr').length === 1, null, { timeout: 10_000 });
    assert.match((await page.textContent('[data-testid=cert-table] tbody')) ?? '', /spiffe:\/\/acme\.test\/user\/alice/);
    await page.fill('input[name=q]', '');
    await page.selectOption('select[name=status]', 'expiring');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=cert-table] tbody tr').length === 1, null, { timeout: 10_000 });
    assert.match((await page.textContent('[data-testid=cert-table] tbody')) ?? '', /erin/);
    await page.selectOption('select[name=status]', '');
    await page.waitForSelector('[data-testid=expiry-chart] canvas');
    await shot(page, 'certificates');
  });

  it('the policy matrix cell (bob, deploy) names the rule that denies it, and explains it on click', async () => {
    await open('policy');
    const cell = page.locator('td[data-principal=bob][data-tool=deploy]');
    assert.match((await cell.textContent()) ?? '', /hidden\s*dev-no-deploy/);
    assert.match((await page.locator('td[data-principal=alice][data-tool=deploy]').textContent()) ?? '', /allow\s*sre-deploy/);
    await cell.click();
    await page.waitForSelector('[data-testid=explain]');
    assert.match((await page.textContent('[data-testid=explain]')) ?? '', /DENY by rule "dev-no-deploy": denied by rule "dev-no-deploy"/);
    // the playground: without the deny rule, and dev added to sre-deploy, bob's cell changes, before anything is deployed
    await page.fill('[data-testid=playground-text]', POLICY.replace(/  - id: dev-no-deploy[\s\S]*?tools: \[deploy\]\n/, '').replace('subjects: { teams: [sre] }', 'subjects: { teams: [sre, dev] }'));
    await page.click('text=Compare with the deployed policy');
    await page.waitForSelector('[data-testid=playground-result]');
    const changes = (await page.textContent('[data-testid=playground-result] table')) ?? '';
    assert.match(changes, /spiffe:\/\/acme\.test\/user\/bob\s*deploy\s*hidden \(dev-no-deploy\)\s*allow \(sre-deploy\)/);
    assert.match(fs.readFileSync(path.join(base, 'policy.yaml'), 'utf8'), /dev-no-deploy/, 'the playground wrote nothing');
    await shot(page, 'policy');
  });

  it('the decisions page counts and charts the denials the test provoked', async () => {
    const bob = await connect(mcpUrl, people.bob!);
    const alice = await connect(mcpUrl, people.alice!);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await bob.client.callTool({ name: 'deploy', arguments: { env: 'prod' } }).catch((e: Error) => ({ isError: true, content: [{ type: 'text', text: e.message }] }));
        assert.equal(r.isError, true, 'bob may not deploy');
      }
      await alice.client.callTool({ name: 'deploy', arguments: { env: 'prod' } });
      await bob.client.callTool({ name: 'search', arguments: { q: 'x' } });
    } finally {
      await bob.close();
      await alice.close();
    }
    await open('decisions');
    await page.fill('input[name=tool]', 'deploy');
    // both counts at once: the unfiltered answer (shown until the filtered one arrives) also has 3
    // denials, all of deploy, but 2 allowed (alice's deploy and bob's search)
    await page
      .waitForFunction(() => document.querySelector('[data-testid=decisions-denied] .n')?.textContent === '3' && document.querySelector('[data-testid=decisions-allowed] .n')?.textContent === '1', null, { timeout: 10_000 })
      .catch(async (e: Error) => assert.fail(`the tool filter's counts never showed 3 denied, 1 allowed (shown: ${await page.textContent('[data-testid=decisions-denied] .n')} denied, ${await page.textContent('[data-testid=decisions-allowed] .n')} allowed): ${e.message.split('\n')[0]}`));
    assert.match((await page.textContent('[data-testid=by-rule]')) ?? '', /dev-no-deploy\s*0\s*3/);
    assert.match((await page.textContent('[data-testid=by-principal]')) ?? '', /user\/bob\s*0\s*3/);
    // the chart drew red (deny) bars: count the canvas pixels of the deny colour
    const red = await page.evaluate(() => {
      const c = document.querySelector('[data-testid=decisions-chart] canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i]! > 150 && d[i + 1]! < 110 && d[i + 2]! < 100 && d[i + 3]! > 200) n++;
      return n;
    });
    assert.ok(red > 50, `deny bars in the chart: ${red} red pixels`);
    await shot(page, 'decisions');
  });

  it('creating a token shows its secret once: not in the list, not after a reload', async () => {
    await open('tokens');
    await page.fill('input[name=id]', 'build-bot');
    await page.selectOption('select[name=kind]', 'service');
    await page.fill('input[name=teams]', 'ci');
    await page.click('text=Create token');
    const secret = ((await page.locator('[data-testid=token-secret]').textContent({ timeout: 10_000 })) ?? '').trim();
    assert.match(secret, /^mcpt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    await page.waitForSelector('[data-testid=token-table] tbody tr');
    assert.match((await page.textContent('[data-testid=token-table]')) ?? '', /service\/build-bot/);
    await shot(page, 'tokens');
    await page.reload();
    await page.waitForSelector('[data-testid=token-table] tbody tr');
    assert.ok(!((await page.content()).includes(secret)), 'the secret is gone after a reload');
    const list = await page.evaluate(() => fetch('/console/api/tokens').then((r) => r.text()));
    assert.ok(!list.includes(secret) && !list.includes('"hash"'), 'the list answer holds neither the secret nor its hash');
    assert.ok(audit.some((e) => e.event === 'console.token.create' && e.operator === 'spiffe://acme.test/user/ops' && !JSON.stringify(e).includes(secret)));
    const stored = fs.readFileSync(path.join(dir, 'audit.log'), 'utf8');
    assert.match(stored, /"event":"token.create","actor":"spiffe:\/\/acme.test\/user\/ops"/);
  });

  it("revoking bob from his page makes the MCP server refuse bob's next request", async () => {
    const bob = await connect(mcpUrl, people.bob!);
    try {
      await bob.client.callTool({ name: 'search', arguments: { q: 'before' } });
      await page.goto(`${consoleUrl}#/cert/${people.bob!.serial}`);
      await page.waitForSelector('[data-testid=revoke-panel]');
      assert.equal(await page.isDisabled('text=Revoke certificate'), true, 'not before the serial is typed');
      await page.selectOption('select[name=reason]', 'keyCompromise');
      await page.fill('input[name=confirm]', people.bob!.serial);
      await page.click('text=Revoke certificate');
      await page.waitForSelector('[data-testid=revoked-notice]');
      assert.match((await page.textContent('[data-testid=cert-status]')) ?? '', /revoked/);
      await shot(page, 'certificate-revoked');
      let refused: unknown;
      for (let i = 0; i < 50 && !refused; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await bob.client.callTool({ name: 'search', arguments: { q: 'after' } }).catch((e) => (refused = e));
      }
      assert.ok(refused, 'bob was still served 5 s after the revocation');
    } finally {
      await bob.close().catch(() => undefined);
    }
    // a new connection of bob's is refused in the handshake's aftermath too
    await assert.rejects(connect(mcpUrl, people.bob!));
    const line = audit.find((e) => e.event === 'console.revoke');
    assert.equal(line?.operator, 'spiffe://acme.test/user/ops');
    assert.equal(line?.serial, people.bob!.serial);
  });

  it('an operator certificate without console access sees a refusal, and no certificate gets 401 CERT_REQUIRED', async () => {
    const origin = new URL(consoleUrl).origin;
    const carol = await browser.newContext({ ignoreHTTPSErrors: true, clientCertificates: [{ origin, cert: Buffer.from(people.carol!.certPem), key: Buffer.from(people.carol!.keyPem) }] });
    const p = await carol.newPage();
    const res = await p.goto(consoleUrl);
    assert.equal(res?.status(), 403);
    assert.match((await p.textContent('body')) ?? '', /CONSOLE_FORBIDDEN[\s\S]*spiffe:\/\/acme\.test\/user\/carol may not use the console/);
    const api = await p.evaluate(() => fetch('/console/api/overview').then(async (r) => ({ status: r.status, body: await r.text() })));
    assert.equal(api.status, 403);
    assert.ok(!api.body.includes('acme.test MCP CA'), 'nothing of the overview');
    await shot(p, 'refused');
    await carol.close();
    const nobody = await browser.newContext({ ignoreHTTPSErrors: true });
    const q = await nobody.newPage();
    assert.equal((await q.goto(consoleUrl))?.status(), 401);
    assert.match((await q.textContent('body')) ?? '', /CERT_REQUIRED/);
    await nobody.close();
  });

  it('pages carry a strict CSP and no-store; a POST without the CSRF token, or from another origin, is refused', async () => {
    const res = await page.goto(consoleUrl);
    const csp = res?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res?.headers()['cache-control'], 'no-store');
    const html = await res!.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    await page.waitForSelector('main h2');
    const tokensBefore = (await ca.store.readTokens()).length;
    const noToken = await page.evaluate(() =>
      fetch('/console/api/tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'mallory', ttl: '15m' }) }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: { code: string } }, cc: r.headers.get('cache-control') })),
    );
    assert.equal(noToken.status, 403);
    assert.equal(noToken.body.error.code, 'CSRF_REFUSED');
    assert.equal(noToken.cc, 'no-store');
    // a form on another origin, posted with the operator's certificate (the browser sends it): refused
    const evil = await admin.newPage();
    await evil.setContent(`<form method="POST" action="${consoleUrl}api/tokens" enctype="text/plain"><input name='{"id":"mallory","x":"' value='"}'></form>`);
    const [answer] = await Promise.all([evil.waitForResponse((r) => r.url().includes('/console/api/tokens')), evil.evaluate(() => (document.querySelector('form') as HTMLFormElement).submit())]);
    assert.equal(answer.status(), 403);
    await evil.close();
    assert.equal((await ca.store.readTokens()).length, tokensBefore, 'no token was created');
    assert.ok(audit.filter((e) => e.event === 'console.refused' && e.code === 'CSRF_REFUSED').length >= 2);
    // the overview again, now with the refusals the tests provoked (bob's denials, his revoked certificate)
    await open('overview');
    await page.waitForSelector('[data-testid=recent-refusals]');
    assert.match(await page.innerText('[data-testid=recent-refusals]'), /dev-no-deploy/);
    await shot(page, 'overview-later');
  });
});
