/**
 * Clients renew on their own (issue #11): the renewer schedules /renew at two thirds of the
 * lifetime, a real SDK client keeps calling a tool on a real mTLS MCP server across renewals,
 * the bundle on disk is replaced atomically (profile, PEM folder), a CA that is down or busy
 * is retried (backoff, Retry-After), a refusal stops the renewer, a wrong certificate is
 * neither used nor written, `mcp-mtls connect --renew-url` renews while bridging, and stop()
 * leaves no timer.
 *
 * The /renew endpoint here is a small real HTTPS server with the project's CA code, honouring
 * the wire contract of `ca serve` (POST /renew, CSR or empty body, PEM chain or JSON errors).
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Client as Client2 } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { loadBundle, type Bundle } from '../../src/bundle/load.js';
import { writeBundle, type BundleFormat } from '../../src/bundle/write.js';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { createCaServer } from '../../src/ca/serve/server.js';
import { isMtlsError } from '../../src/errors.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { createMtlsAgent, createMtlsFetch, RenewingAgent } from '../../src/client/agent.js';
import { RenewalHttpError } from '../../src/client/renew-request.js';
import { createBundleRenewer, loadBundleRenewer, renewalTime, systemClock, type RenewalClock } from '../../src/client/renewal.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { createSdk2Transport } from '../../src/client/transport-sdk2.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { parseCertificate } from '../../src/x509/certificate.js';
import { verifyCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { BIN, cliOk, ROOT, tmpDir } from '../support/cli.js';
import { buildTestServer, TEST_POLICY } from '../support/mcp.js';

const YEAR = 365 * 86_400_000;

/** What the test CA does with the next /renew calls (shifted off a queue; then `mode`). */
type Mode = 'ok' | '429' | '503' | '500' | '403' | 'wrong-key' | 'other-claims';

interface CaCall {
  at: number;
  mode: Mode;
  status: number;
  csr: boolean;
}

let base: string;
let ca: Authority;
let caDir: string;
let renewTtlMs = 3_600_000;
let mode: Mode = 'ok';
const queue: Mode[] = [];
const calls: CaCall[] = [];
let caServer: https.Server;
let caPort: number;
let renewUrl: string;
let mcp: MtlsServer;
let mcpClose: () => Promise<void>;
let mcpUrl: string;
let srvChainPem: string;
let srvKeyPem: string;
const serialsSeen: string[] = [];

async function readBody(req: import('node:http').IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function jsonError(res: import('node:http').ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error: { code, message, hint: 'test CA' } }));
}

function startCa(port = 0): Promise<number> {
  return new Promise((resolve) => {
    caServer.listen(port, '127.0.0.1', () => resolve((caServer.address() as AddressInfo).port));
  });
}

before(async () => {
  base = tmpDir('mcp-mtls-renewal-');
  caDir = path.join(base, 'pki');
  initCa({ dir: caDir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
  // one test renews a 1y certificate: raise this CA's client limit (default 30d) for it
  const config = path.join(caDir, 'config.yaml');
  fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace('maxTtl: 30d', 'maxTtl: 2y'));
  ca = await Authority.open(caDir);
  const srv = await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] });
  const srvKey = crypto.createPrivateKey({ key: srv.key!.pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
  srvChainPem = srv.chainPem;
  srvKeyPem = srvKey;

  // the CA's /renew: mTLS with the current client certificate
  caServer = https.createServer({ cert: srv.chainPem, key: srvKey, ca: ca.rootPem, requestCert: true, rejectUnauthorized: true }, async (req, res) => {
    const current = queue.shift() ?? mode;
    const body = await readBody(req);
    const record = (status: number) => calls.push({ at: Date.now(), mode: current, status, csr: body.length > 0 });
    if (req.method !== 'POST' || req.url !== '/renew') return void (record(404), jsonError(res, 404, 'not_found', 'no such route'));
    if (current === '429') return void (record(429), jsonError(res, 429, 'rate_limited', 'too many renewals', { 'retry-after': '1' }));
    if (current === '503') return void (record(503), jsonError(res, 503, 'unavailable', 'store down', { 'retry-after': '1' }));
    if (current === '500') return void (record(500), jsonError(res, 500, 'internal', 'internal error'));
    if (current === '403') return void (record(403), jsonError(res, 403, 'certificate_revoked', 'the certificate was revoked (keyCompromise)'));
    const der = (req.socket as TLSSocket).getPeerCertificate().raw;
    const id = decodeIdentity(der);
    const spki = current === 'wrong-key' ? generateKey('ec-p256').spki : body.length ? verifyCsr(body).spki : parseCertificate(der).spki;
    const issued = await ca.issueClient({ kind: id.kind, id: current === 'other-claims' ? 'mallory' : id.id, teams: id.teams, roles: id.roles, ...(id.email ? { email: id.email } : {}), spki, ttlMs: renewTtlMs });
    record(200);
    res.writeHead(200, { 'content-type': 'application/pem-certificate-chain' });
    res.end(issued.chainPem);
  });
  caPort = await startCa();
  renewUrl = `https://localhost:${caPort}/renew`;

  // a real mTLS MCP server (SDK 1.x adapter) trusting the same CA
  fs.writeFileSync(path.join(base, 'server.crt'), srv.chainPem);
  fs.writeFileSync(path.join(base, 'server.key'), srvKey);
  const handler = createMcpSdk1Handler({ serverInfo: { name: 'renewal-test', version: '1.0.0' }, build: buildTestServer, policy: () => policyFromText(TEST_POLICY), audit: memoryAudit(), whoami: true });
  mcp = createMtlsServer({ ...tlsFromPki(caDir, path.join(base, 'server.crt'), path.join(base, 'server.key')), log: () => undefined }, handler);
  mcp.on('secureConnection', (s: TLSSocket) => {
    const serial = s.getPeerX509Certificate()?.serialNumber;
    if (serial) serialsSeen.push(serial.toLowerCase());
  });
  await new Promise<void>((r) => mcp.listen(0, '127.0.0.1', r));
  mcpUrl = `https://localhost:${(mcp.address() as AddressInfo).port}/mcp`;
  mcpClose = async () => {
    await handler.close();
    mcp.closeAllConnections();
    await new Promise((r) => mcp.close(r));
  };
});

after(async () => {
  await mcpClose?.();
  caServer.closeAllConnections();
  await new Promise((r) => caServer.close(r));
});

let n = 0;
/** A client bundle on disk for a new user (ttl as given), in the format asked. */
async function makeBundle(ttlMs: number, format: BundleFormat = 'profile', password?: string): Promise<{ file: string; bundle: Bundle }> {
  const user = `u${++n}`;
  const issued = await ca.issueClient({ kind: 'user', id: user, teams: ['sre'], roles: ['admin'], ttlMs });
  const key = crypto.createPrivateKey({ key: issued.key!.pkcs8, format: 'der', type: 'pkcs8' });
  const file = path.join(base, `${user}${format === 'profile' ? '.yaml' : format === 'p12' ? '.p12' : ''}`);
  writeBundle(format, file, { chain: [issued.der, ca.intermediateDer], root: ca.rootDer, key, url: mcpUrl, principal: issued.record.principal!, ...(password ? { password } : {}) });
  return { file, bundle: await loadBundle(file, password ? { passphrase: () => password } : {}) };
}

/** The system clock, counting the timers that are set and not yet fired or cleared. */
function countingClock(): RenewalClock & { live: Set<unknown> } {
  const live = new Set<unknown>();
  return {
    live,
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const h: unknown = systemClock.setTimeout(() => {
        live.delete(h);
        fn();
      }, ms);
      live.add(h);
      return h;
    },
    clearTimeout(h) {
      live.delete(h);
      systemClock.clearTimeout(h);
    },
  };
}

const until = async (what: string, cond: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

const spkiOf = (b: Bundle) => parseCertificate(b.chain[0]!).spki;
const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0] as { text: string }).text;

test('the schedule: two thirds of notBefore..notAfter, earlier by at most the jitter; stop() clears the timer', async () => {
  const { bundle } = await makeBundle(24 * 3_600_000);
  const leaf = parseCertificate(bundle.chain[0]!);
  const life = leaf.notAfter.getTime() - leaf.notBefore.getTime();
  const timers: number[] = [];
  const fake: RenewalClock = { now: () => leaf.notBefore.getTime() + 1000, setTimeout: (_fn, ms) => (timers.push(ms), timers.length), clearTimeout: () => undefined };
  for (const [r, expected] of [
    [0, leaf.notBefore.getTime() + (life * 2) / 3],
    [0.999999, leaf.notBefore.getTime() + (life * 2) / 3 - 0.05 * life],
  ] as const) {
    const renewer = createBundleRenewer({ bundle, renewUrl, write: false, clock: fake, random: () => r });
    const at = renewer.status().nextAttemptAt!.getTime();
    assert.ok(Math.abs(at - expected) < 100, `renewal at ${new Date(at).toISOString()}, expected ${new Date(expected).toISOString()}`);
    assert.equal(timers.at(-1), at - fake.now(), 'one timer, for that moment');
    assert.equal(renewer.status().state, 'scheduled');
    renewer.stop();
    assert.equal(renewer.status().state, 'stopped');
    assert.equal(renewer.status().nextAttemptAt, undefined);
  }
  assert.equal(renewalTime(new Date(0), new Date(3000)).getTime(), 2000);
  // already due at start: spread over up to 30 s rather than all at once
  const late: RenewalClock = { ...fake, now: () => leaf.notBefore.getTime() + life * 0.9 };
  const due = createBundleRenewer({ bundle, renewUrl, write: false, clock: late, random: () => 0.5 });
  assert.equal(due.status().nextAttemptAt!.getTime() - late.now(), 15_000);
  due.stop();
  // the URL comes from the option or the bundle profile, https only
  assert.throws(() => createBundleRenewer({ bundle, write: false }), (e) => isMtlsError(e, 'USAGE'));
  assert.throws(() => createBundleRenewer({ bundle, renewUrl: 'http://ca/renew', write: false }), (e) => isMtlsError(e, 'BAD_ARGUMENT'));
  const withUrl = createBundleRenewer({ bundle: { ...bundle, renewUrl }, write: false, clock: fake });
  assert.equal(withUrl.renewUrl.href, renewUrl);
  withUrl.stop();
});

test('long and ending lifetimes: a renewal months away is reached in timer steps; retries stop before expiry', async () => {
  // a 1-year certificate: the renewal is 8 months away, beyond what one Node timer holds
  const { bundle } = await makeBundle(365 * 86_400_000);
  let now = Date.now();
  const timers: { fn: () => void; ms: number }[] = [];
  const fake: RenewalClock = { now: () => now, setTimeout: (fn, ms) => (timers.push({ fn, ms }), timers.length), clearTimeout: () => undefined };
  const renewer = createBundleRenewer({ bundle, renewUrl, write: false, clock: fake, random: () => 0 });
  const due = renewer.status().nextAttemptAt!.getTime();
  assert.equal(timers.at(-1)!.ms, 2 ** 31 - 1, 'a first step of 24.8 days');
  while (timers.at(-1)!.ms === 2 ** 31 - 1) {
    now += 2 ** 31 - 1;
    timers.at(-1)!.fn();
  }
  assert.equal(now + timers.at(-1)!.ms, due, 'the last step ends at the renewal time');
  assert.equal(renewer.status().state, 'scheduled', 'no early renewal');
  renewer.stop();

  // close to the end: a retry is never scheduled past a second before notAfter, and then it gives up
  renewTtlMs = 7_200_000;
  const ending = await makeBundle(3_600_000);
  const end = ending.bundle.notAfter.getTime();
  now = end - 5_000;
  const logs: string[] = [];
  const last = createBundleRenewer({ bundle: ending.bundle, renewUrl, write: false, clock: fake, backoff: { initialMs: 60_000 }, log: (l) => logs.push(l) });
  queue.push('500');
  await assert.rejects(last.renewNow());
  assert.equal(last.status().nextAttemptAt!.getTime(), end - 1000, 'one last try a second before the end (not after the 60 s backoff)');
  now = end - 900;
  queue.push('500');
  await assert.rejects(last.renewNow());
  assert.equal(last.status().state, 'expired');
  assert.equal(last.status().nextAttemptAt, undefined);
  assert.match(logs.at(-1)!, /expires now .*Make a new bundle/);
  last.stop();
});

test('a real SDK client keeps calling a tool across renewals (short real lifetime): no failed call, new certificate on new connections, bundle replaced atomically', async () => {
  // 36 s certificates (96 s lifetime with the CA's 60 s backdating): renewal every ~4 s
  renewTtlMs = 36_000;
  const { file, bundle } = await makeBundle(36_000);
  const clock = countingClock();
  const renewedAt: number[] = [];
  const logs: string[] = [];
  const renewer = createBundleRenewer({ bundle, renewUrl, jitter: 0.01, clock, log: (l) => logs.push(l), onRenewed: () => renewedAt.push(Date.now()) });
  const transport = createSdk1Transport(renewer);
  const client = new Client({ name: 'renewing-agent', version: '1.0.0' });
  await client.connect(transport);
  let ok = 0;
  let failed = 0;
  const t0 = Date.now();
  try {
    while (renewer.status().renewals < 2) {
      if (Date.now() - t0 > 20_000) assert.fail(`only ${renewer.status().renewals} renewals in 20 s: ${JSON.stringify(renewer.status())}\n${logs.join('\n')}`);
      const r = await client.callTool({ name: 'search', arguments: { q: String(ok) } }).catch(() => undefined);
      if (r && text(r) === `results for ${ok}`) ok++;
      else failed++;
      await new Promise((res) => setTimeout(res, 10));
    }
    // a few more calls on the second renewed certificate
    for (let i = 0; i < 20; i++) (text(await client.callTool({ name: 'search', arguments: { q: 'x' } })) === 'results for x' ? ok++ : failed++);
  } finally {
    await client.close();
    renewer.stop();
  }
  assert.equal(failed, 0, `${failed} failed calls`);
  const status = renewer.status();
  assert.equal(status.renewals, 2);
  // the server saw the new certificates on new connections
  const original = parseCertificate(bundle.chain[0]!).serial;
  const serials = new Set(serialsSeen.map((s) => s.replace(/^0+/, '')));
  assert.ok(serials.has(original.replace(/^0+/, '')) && serials.has(status.serial.replace(/^0+/, '')), `serials seen: ${[...serials].join(', ')}`);
  assert.equal(calls.filter((c) => c.status === 200).slice(-2).every((c) => c.csr), true, 'a new key and a CSR each time');
  // the bundle on disk: the newest certificate, a new key, mode 0600, loadable, nothing left over
  const onDisk = await loadBundle(file);
  assert.equal(parseCertificate(onDisk.chain[0]!).serial, status.serial);
  assert.notDeepEqual(spkiOf(onDisk), spkiOf(bundle), 'a new key');
  assert.equal(onDisk.identity?.principal, bundle.identity?.principal);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(base).filter((f) => f.endsWith('.tmp')), []);
  assert.equal(clock.live.size, 0, 'stop() leaves no timer');
  const first = renewedAt[0]! - t0;
  console.log(`# ${ok} calls across ${status.renewals} renewals, 0 failed; first renewal ${first} ms after start; ${logs.filter((l) => l.startsWith('renewed')).join(' | ')}`);
});

test('a PEM folder gets a new key and certificate in one rename (generations), and stays loadable', async () => {
  renewTtlMs = 7_200_000;
  const { file, bundle } = await makeBundle(3_600_000, 'pem');
  const renewer = createBundleRenewer({ bundle, renewUrl, clock: countingClock() });
  try {
    const first = await renewer.renewNow();
    let disk = await loadBundle(file);
    assert.deepEqual(spkiOf(disk), spkiOf(first));
    assert.equal(fs.readlinkSync(path.join(file, 'key.pem')), path.join('current', 'key.pem'));
    assert.equal(fs.statSync(path.join(file, 'key.pem')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(file, 'cert.pem')).mode & 0o777, 0o644);
    renewTtlMs = 7_300_000; // a later notAfter than the first renewal's
    const second = await renewer.renewNow();
    disk = await loadBundle(file);
    assert.deepEqual(spkiOf(disk), spkiOf(second));
    assert.notDeepEqual(spkiOf(second), spkiOf(first));
    assert.equal(fs.readdirSync(file).filter((f) => f.startsWith('.gen-')).length, 2, 'the current and the previous generation');
    renewTtlMs = 7_400_000;
    await renewer.renewNow();
    assert.equal(fs.readdirSync(file).filter((f) => f.startsWith('.gen-')).length, 2, 'older generations are removed');
  } finally {
    renewer.stop();
  }
  // without a new key, a plain PEM folder changes cert.pem only (one rename, no symlinks)
  renewTtlMs = 7_200_000;
  const plain = await makeBundle(3_600_000, 'pem');
  const keyBefore = fs.readFileSync(path.join(plain.file, 'key.pem'));
  const keep = createBundleRenewer({ bundle: plain.bundle, renewUrl, rekey: false, clock: countingClock() });
  const renewed = await keep.renewNow();
  keep.stop();
  assert.equal(calls.at(-1)!.csr, false, 'an empty body keeps the public key');
  assert.deepEqual(spkiOf(renewed), spkiOf(plain.bundle));
  assert.deepEqual(fs.readFileSync(path.join(plain.file, 'key.pem')), keyBefore);
  assert.equal(fs.lstatSync(path.join(plain.file, 'cert.pem')).isSymbolicLink(), false);
  assert.equal(parseCertificate((await loadBundle(plain.file)).chain[0]!).serial, keep.status().serial);
});

test('another process loading the bundles in a loop while they are renewed with new keys never sees a torn file or a key that does not match', async () => {
  renewTtlMs = 7_200_000;
  const profile = await makeBundle(3_600_000, 'profile');
  const folder = await makeBundle(3_600_000, 'pem');
  const stop = path.join(base, 'reader.stop');
  const script = path.join(base, 'reader.mts');
  fs.writeFileSync(script, [
    `import fs from 'node:fs';`,
    `import { loadBundle } from ${JSON.stringify(path.join(ROOT, 'src', 'bundle', 'load.ts'))};`,
    `const [file, dir, stop] = process.argv.slice(2);`,
    `let ok = 0; const bad = []; const serials = new Set();`,
    `while (!fs.existsSync(stop)) {`,
    `  for (const f of [file, dir]) {`,
    `    try { const b = await loadBundle(f); serials.add(b.identity.serial); ok++; } catch (e) { bad.push(e.message); }`,
    `  }`,
    `  if (ok === 2) console.error('ready');`,
    `}`,
    `console.log(JSON.stringify({ ok, serials: serials.size, bad: bad.slice(0, 3), badCount: bad.length }));`,
  ].join('\n'));
  const child = spawn(process.execPath, ['--import', 'tsx', script, profile.file, folder.file, stop], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise<void>((r) => child.stderr.on('data', (d) => String(d).includes('ready') && r()));
  const renewers = [profile, folder].map((b) => createBundleRenewer({ bundle: b.bundle, renewUrl, clock: countingClock() }));
  const rounds = 12;
  for (let i = 0; i < rounds; i++) {
    for (const r of renewers) await r.renewNow();
    await new Promise((res) => setTimeout(res, 10));
  }
  for (const r of renewers) r.stop();
  fs.writeFileSync(stop, '');
  await new Promise((r) => child.once('exit', r));
  const result = JSON.parse(out) as { ok: number; serials: number; bad: string[]; badCount: number };
  assert.equal(result.badCount, 0, `failed loads: ${result.bad.join(' | ')}`);
  assert.ok(result.serials > rounds, `the reader saw ${result.serials} certificates`);
  console.log(`# concurrent reader: ${result.ok} loads across ${rounds} renewals of each bundle (profile, PEM folder), ${result.serials} certificates seen, 0 failed`);
});

test('PKCS#12 and encrypted profiles are rewritten with their passphrase (and refused without it); renewUrl from the profile', async () => {
  renewTtlMs = 7_200_000;
  const p12 = await makeBundle(3_600_000, 'p12', 'pw-p12');
  assert.throws(() => createBundleRenewer({ bundle: p12.bundle, renewUrl }), (e) => isMtlsError(e, 'BUNDLE_PASSWORD'));
  const r1 = createBundleRenewer({ bundle: p12.bundle, renewUrl, passphrase: 'pw-p12', clock: countingClock() });
  const renewedP12 = await r1.renewNow();
  r1.stop();
  const diskP12 = await loadBundle(p12.file, { passphrase: () => 'pw-p12' });
  assert.deepEqual(spkiOf(diskP12), spkiOf(renewedP12));
  assert.equal(fs.statSync(p12.file).mode & 0o777, 0o600);
  const enc = await makeBundle(3_600_000, 'profile', 'pw-profile');
  assert.throws(() => createBundleRenewer({ bundle: enc.bundle, renewUrl }), (e) => isMtlsError(e, 'BUNDLE_PASSWORD'));
  const keep = createBundleRenewer({ bundle: enc.bundle, renewUrl, rekey: false, clock: countingClock() }); // the key text is kept as it is
  await keep.renewNow();
  keep.stop();
  assert.match(fs.readFileSync(enc.file, 'utf8'), /ENCRYPTED PRIVATE KEY/);
  let asked = 0;
  const r2 = await loadBundleRenewer(enc.file, { renewUrl, passphrase: () => (asked++, 'pw-profile'), clock: countingClock() });
  const renewedEnc = await r2.renewNow();
  r2.stop();
  assert.equal(asked, 2, 'once to load, once to write the new key');
  const text = fs.readFileSync(enc.file, 'utf8');
  assert.match(text, /ENCRYPTED PRIVATE KEY/, 'the new key is written encrypted');
  assert.match(text, new RegExp(`notAfter: ${renewedEnc.notAfter.toISOString()}`));
  assert.deepEqual(spkiOf(await loadBundle(enc.file, { passphrase: () => 'pw-profile' })), spkiOf(renewedEnc));
  // `mcp-mtls bundle --renew-url` writes renewUrl into the profile, and the renewer takes it from there
  const issued = await ca.issueClient({ kind: 'service', id: 'from-cli', teams: [], roles: [], ttlMs: 3_600_000 });
  fs.writeFileSync(path.join(base, 'from-cli.crt'), issued.chainPem);
  fs.writeFileSync(path.join(base, 'from-cli.key'), crypto.createPrivateKey({ key: issued.key!.pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }));
  const out = path.join(base, 'from-cli.yaml');
  await cliOk(['bundle', path.join(base, 'from-cli.crt'), '--dir', caDir, '--format', 'profile', '--url', mcpUrl, '--renew-url', renewUrl, '--out', out]);
  const fromCli = await loadBundle(out);
  assert.equal(fromCli.renewUrl, renewUrl);
  const r3 = createBundleRenewer({ bundle: fromCli, renewUrl: undefined, clock: countingClock() });
  assert.equal(r3.renewUrl.href, renewUrl);
  await r3.renewNow();
  r3.stop();
  assert.equal((await loadBundle(out)).renewUrl, renewUrl, 'kept on rewrite');
});

test('a bundle file that cannot be written: the renewal is used in memory and the error reported', async () => {
  renewTtlMs = 7_200_000;
  const { file, bundle } = await makeBundle(3_600_000);
  fs.rmSync(file);
  const errors: string[] = [];
  const renewer = createBundleRenewer({ bundle, renewUrl, clock: countingClock(), onError: (e) => errors.push(e.message) });
  const renewed = await renewer.renewNow();
  renewer.stop();
  assert.equal(renewer.bundle, renewed);
  assert.equal(renewer.status().renewals, 1);
  assert.match(renewer.status().lastError!.message, /renewed, but the bundle was not written/);
  assert.equal(errors.length, 1);
  assert.equal(fs.existsSync(file), false);
});

test('the CA down for a while: retried with growing backoff, then renewed when it is back', async () => {
  renewTtlMs = 7_200_000;
  const { bundle } = await makeBundle(3_600_000);
  const clock = countingClock();
  const errors: { message: string; at?: Date }[] = [];
  caServer.closeAllConnections();
  await new Promise((r) => caServer.close(r));
  const renewer = createBundleRenewer({ bundle, renewUrl, clock, backoff: { initialMs: 100, maxMs: 800 }, onError: (e, retry) => errors.push({ message: e.message, ...(retry ? { at: retry.at } : {}) }) });
  try {
    await assert.rejects(renewer.renewNow(), (e) => isMtlsError(e, 'RENEWAL_FAILED') && /cannot reach the CA/.test(e.message));
    assert.equal(renewer.status().state, 'retrying');
    await until('four failures', () => renewer.status().failures >= 4, 5000);
    const gaps = errors.slice(0, 4).map((e, i) => (e.at!.getTime() - (i === 0 ? 0 : errors[i - 1]!.at!.getTime())));
    assert.ok(gaps.slice(1).every((g, i) => g >= 50 * 2 ** i), `backoff grows: ${gaps.slice(1).join(', ')} ms`);
    assert.match(renewer.status().lastError!.message, /cannot reach the CA/);
    await startCa(caPort);
    await until('the renewal', () => renewer.status().renewals === 1, 5000);
    assert.equal(renewer.status().failures, 0);
    assert.equal(renewer.status().state, 'scheduled');
    console.log(`# CA down: ${errors.length} failed attempts (${errors.map((e) => e.message.replace(/.*: /, '')).at(-1)}), then renewed`);
  } finally {
    renewer.stop();
    if (!caServer.listening) await startCa(caPort);
  }
  assert.equal(clock.live.size, 0);
});

test('429 and 503 with Retry-After: the next call waits that long, then succeeds', async () => {
  renewTtlMs = 7_200_000;
  const { bundle } = await makeBundle(3_600_000);
  const clock = countingClock();
  queue.push('429', '503');
  const before = calls.length;
  const renewer = createBundleRenewer({ bundle, renewUrl, clock, backoff: { initialMs: 50 } });
  try {
    await assert.rejects(renewer.renewNow(), (e) => e instanceof RenewalHttpError && e.status === 429 && e.retryAfterMs === 1000 && !e.permanent);
    const next = renewer.status().nextAttemptAt!.getTime() - Date.now();
    assert.ok(next > 900 && next <= 1000, `next attempt in ${next} ms`);
    await until('the renewal', () => renewer.status().renewals === 1, 4000);
    const mine = calls.slice(before);
    assert.deepEqual(mine.map((c) => c.status), [429, 503, 200]);
    assert.ok(mine[1]!.at - mine[0]!.at >= 990 && mine[2]!.at - mine[1]!.at >= 990, `gaps ${mine[1]!.at - mine[0]!.at}, ${mine[2]!.at - mine[1]!.at} ms`);
  } finally {
    renewer.stop();
  }
  assert.equal(clock.live.size, 0);
});

test('403 (revoked): the renewer stops, says so, and keeps the current certificate', async () => {
  const { file, bundle } = await makeBundle(3_600_000);
  const before = fs.readFileSync(file);
  const clock = countingClock();
  const logs: string[] = [];
  let reported: unknown;
  queue.push('403');
  const renewer = createBundleRenewer({ bundle, renewUrl, clock, log: (l) => logs.push(l), onError: (e, retry) => (reported = { code: e.code, retry }) });
  await assert.rejects(renewer.renewNow(), (e) => isMtlsError(e, 'RENEWAL_REFUSED') && e instanceof RenewalHttpError && e.caCode === 'certificate_revoked');
  const status = renewer.status();
  assert.equal(status.state, 'refused');
  assert.equal(status.nextAttemptAt, undefined);
  assert.equal(status.lastError?.status, 403);
  assert.deepEqual(reported, { code: 'RENEWAL_REFUSED', retry: undefined });
  assert.match(logs.at(-1)!, /renewal refused, not retrying: the CA answered 403 certificate_revoked: the certificate was revoked \(keyCompromise\) \(the certificate may be revoked\)/);
  assert.equal(clock.live.size, 0, 'no timer: nothing more is tried');
  assert.deepEqual(fs.readFileSync(file), before);
  assert.equal(renewer.bundle, bundle);
  renewer.stop();
});

test('a returned certificate with another key or other claims is refused: not used, not written', async () => {
  renewTtlMs = 7_200_000;
  for (const bad of ['wrong-key', 'other-claims'] as const) {
    const { file, bundle } = await makeBundle(3_600_000);
    const before = fs.readFileSync(file);
    const clock = countingClock();
    let swapped = 0;
    const renewer = createBundleRenewer({ bundle, renewUrl, clock, onRenewed: () => swapped++ });
    const agent = createMtlsAgent(renewer);
    queue.push(bad);
    await assert.rejects(renewer.renewNow(), (e) => isMtlsError(e, 'CERT_INVALID') && (bad === 'wrong-key' ? /not the key this client holds/ : /subject alternative names differ/).test(e.message));
    assert.deepEqual(fs.readFileSync(file), before, `${bad}: bundle untouched`);
    assert.equal(renewer.bundle, bundle);
    assert.equal(swapped, 0);
    assert.equal(agent.swaps, 0);
    assert.equal(renewer.status().state, 'retrying', 'the CA may recover: retried with backoff while the certificate is valid');
    renewer.stop();
    await agent.close();
    assert.equal(clock.live.size, 0);
  }
});

test('the RenewingAgent: requests in flight (and 60 concurrent ones) finish while new ones use the new certificate', async () => {
  renewTtlMs = 7_200_000;
  const { bundle } = await makeBundle(3_600_000);
  const renewer = createBundleRenewer({ bundle, renewUrl, write: false, clock: countingClock() });
  const agent = createMtlsAgent(renewer);
  assert.ok(agent instanceof RenewingAgent);
  const fetch = createMtlsFetch(agent);
  const client = new Client({ name: 'slow', version: '1.0.0' });
  const transport = new (await import('@modelcontextprotocol/sdk/client/streamableHttp.js')).StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: fetch as typeof globalThis.fetch });
  await client.connect(transport);
  try {
    const slow = client.callTool({ name: 'slow', arguments: {} });
    const before = Array.from({ length: 20 }, (_, i) => client.callTool({ name: 'search', arguments: { q: `a${i}` } }));
    await new Promise((r) => setTimeout(r, 5));
    const renewing = renewer.renewNow();
    const during = Array.from({ length: 20 }, (_, i) => client.callTool({ name: 'search', arguments: { q: `b${i}` } }));
    await renewing;
    const afterSwap = Array.from({ length: 20 }, (_, i) => client.callTool({ name: 'search', arguments: { q: `c${i}` } }));
    assert.equal(agent.swaps, 1);
    assert.equal(text(await slow), 'done', 'the call in flight completed');
    const answers = (await Promise.all([...before, ...during, ...afterSwap])).map(text);
    assert.deepEqual(answers, ['a', 'b', 'c'].flatMap((p) => Array.from({ length: 20 }, (_, i) => `results for ${p}${i}`)), '60 concurrent calls around the swap all answered');
    const who = JSON.parse(text(await client.callTool({ name: 'who', arguments: {} }))) as { identity: { serial: string } };
    assert.equal(who.identity.serial.replace(/^0+/, ''), renewer.status().serial.replace(/^0+/, ''), 'the next request presented the new certificate');
  } finally {
    await client.close();
    await agent.close();
    renewer.stop();
  }
});

test('a transport with `renew: { url }` makes its own renewer and stops it when it closes; the SDK 2.x transport follows a renewer', async () => {
  renewTtlMs = 7_200_000;
  const { bundle } = await makeBundle(3_600_000);
  const clock = countingClock();
  const client = new Client({ name: 'owned', version: '1.0.0' });
  await client.connect(createSdk1Transport(bundle, undefined, { renew: { url: renewUrl, write: false, clock } }));
  assert.equal(text(await client.callTool({ name: 'search', arguments: { q: 'o' } })), 'results for o');
  assert.equal(clock.live.size, 1, 'the renewal is scheduled');
  await client.close();
  assert.equal(clock.live.size, 0, 'closing the transport stopped the renewer');
  // the SDK 2.x client with a renewer
  const { bundle: b2 } = await makeBundle(3_600_000);
  const renewer = createBundleRenewer({ bundle: b2, renewUrl, write: false, clock: countingClock() });
  const client2 = new Client2({ name: 'sdk2', version: '1.0.0' });
  await client2.connect(await createSdk2Transport(renewer));
  try {
    assert.equal(text(await client2.callTool({ name: 'search', arguments: { q: 'before' } })), 'results for before');
    await renewer.renewNow();
    const who = JSON.parse(text(await client2.callTool({ name: 'who', arguments: {} }))) as { identity: { serial: string } };
    assert.equal(who.identity.serial.replace(/^0+/, ''), renewer.status().serial.replace(/^0+/, ''));
  } finally {
    await client2.close();
    renewer.stop();
  }
});

test('mcp-mtls connect --renew-url renews while bridging: calls go on, logs on stderr only, the bundle file is rewritten', async () => {
  renewTtlMs = 36_000;
  const { file, bundle } = await makeBundle(36_000);
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'connect', '--bundle', file, '--renew-url', renewUrl], stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'desktop-app', version: '1.0.0' });
  await client.connect(transport);
  let ok = 0;
  const t0 = Date.now();
  try {
    while ((stderr.match(/renewal: renewed/g) ?? []).length < 2) {
      if (Date.now() - t0 > 20_000) assert.fail(`no two renewals in 20 s:\n${stderr}`);
      assert.equal(text(await client.callTool({ name: 'search', arguments: { q: 'b' } })), 'results for b');
      ok++;
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await client.close();
  }
  assert.match(stderr, /mcp-mtls connect: renewal: certificate [0-9a-f]+ valid until .*; renewal at .* through https:\/\/localhost:\d+\/renew/);
  const disk = await loadBundle(file);
  assert.notDeepEqual(spkiOf(disk), spkiOf(bundle));
  assert.ok(disk.notAfter > bundle.notAfter);
  console.log(`# bridge: ${ok} calls across 2 renewals, 0 failed`);
  // the desktop entry carries the flag
  const entry = await cliOk<{ mcpServers: Record<string, { args: string[] }> }>(['client-config', '--client', 'cursor', '--name', 'acme', '--bundle', file, '--renew-url', renewUrl, '--json'], { env: { HOME: base } });
  assert.deepEqual(entry.mcpServers.acme!.args.slice(-4), ['--bundle', file, '--renew-url', renewUrl]);
});

test('against the real `ca serve`: renewal with a new key and with the same key, and its rate limit (429 + Retry-After) is retried', async () => {
  const server = createCaServer({ authority: ca, cert: srvChainPem, key: srvKeyPem });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://localhost:${(server.address() as AddressInfo).port}/renew`;
  const { file, bundle } = await makeBundle(3_600_000);
  const clock = countingClock();
  const renewer = createBundleRenewer({ bundle, renewUrl: url, clock });
  try {
    const t0 = performance.now();
    const first = await renewer.renewNow();
    const ms = performance.now() - t0;
    assert.notDeepEqual(spkiOf(first), spkiOf(bundle));
    assert.equal(first.identity?.principal, bundle.identity?.principal);
    assert.equal(parseCertificate((await loadBundle(file)).chain[0]!).serial, renewer.status().serial);
    const keep = createBundleRenewer({ bundle: first, renewUrl: url, rekey: false, clock });
    const second = await keep.renewNow();
    keep.stop();
    assert.deepEqual(spkiOf(second), spkiOf(first));
    // the default rate limit is a burst of 3 per principal: the next one is told to wait
    await renewer.renewNow().catch(() => undefined);
    const refused = await renewer.renewNow().then(() => undefined, (e: unknown) => e);
    assert.ok(refused instanceof RenewalHttpError && refused.status === 429 && refused.retryAfterMs! > 0, String(refused));
    assert.equal(renewer.status().state, 'retrying');
    assert.ok(renewer.status().nextAttemptAt!.getTime() >= Date.now() + refused.retryAfterMs! - 1500);
    console.log(`# real ca serve: one renewal with a new key (CSR, checks, atomic write) took ${ms.toFixed(0)} ms`);
  } finally {
    renewer.stop();
    await server.shutdown(100);
  }
  assert.equal(clock.live.size, 0);
});
