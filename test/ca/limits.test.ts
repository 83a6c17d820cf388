/**
 * Issuance limits (issue 16, finding 10): config.yaml's `limits:` bound the lifetime of every
 * certificate (defaults: clients 30d, servers 397d) and may allow-list teams, roles, DNS names
 * and IP addresses, on every path that issues: `issue client` / `issue server`, batch, `sign`
 * of a CSR, `renew`, `token create` (at creation, not at use), `ca serve` /sign and /renew. A
 * refusal names the limit and its config key, exits 65 (LIMIT_EXCEEDED), consumes no serial
 * and writes nothing but the audit line. The real CLI, the real folder store, openssl to read
 * the certificates back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { canonicalDnsName, canonicalDnsPattern, dnsMatches } from '../../src/ca/limits.js';
import { createEnrollmentToken } from '../../src/ca/tokens.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { pemEncode } from '../../src/x509/pem.js';
import { clientCreds, makeCa, request, startServer } from '../support/ca-serve.js';
import { cli, cliOk, openssl, snapshot, tmpDir } from '../support/cli.js';

const DAY = 86_400_000;
let base: string;

before(() => {
  base = tmpDir('ca-limits-');
});

let n = 0;
async function newCa(limits?: Record<string, unknown>, edit?: (config: Record<string, unknown>) => void): Promise<string> {
  const pki = path.join(base, `pki${++n}`);
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  if (limits !== undefined || edit) setConfig(pki, (c) => {
    if (limits !== undefined) c.limits = limits;
    edit?.(c);
  });
  return pki;
}

function setConfig(pki: string, edit: (config: Record<string, unknown>) => void): void {
  const file = path.join(pki, 'config.yaml');
  const config = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(config);
  fs.writeFileSync(file, YAML.stringify(config));
}

/** the CA folder's files but the audit log, which records the refusal */
function state(pki: string): Record<string, string> {
  const { 'audit.log': _audit, ...rest } = snapshot(pki);
  return rest;
}

function lastAudit(pki: string): Record<string, unknown> {
  const lines = fs.readFileSync(path.join(pki, 'audit.log'), 'utf8').trim().split('\n');
  return JSON.parse(lines.at(-1) as string) as Record<string, unknown>;
}

/** lifetime of a PEM certificate file as openssl reads it, in ms */
async function lifetimeMs(certFile: string): Promise<number> {
  const r = await openssl(['x509', '-in', certFile, '-noout', '-startdate', '-enddate']);
  assert.equal(r.code, 0, r.stderr);
  const start = Date.parse(/notBefore=(.+)/.exec(r.stdout)![1]!);
  const end = Date.parse(/notAfter=(.+)/.exec(r.stdout)![1]!);
  return end - start;
}

/** runs a command that must be refused: exit 65, the message (and hint), nothing written but the audit line */
async function refused(args: string[], message: RegExp, pki: string, o: { hint?: RegExp; audited?: boolean } = {}): Promise<void> {
  const before = state(pki);
  const r = await cli(args);
  assert.equal(r.code, 65, `exit 65 for ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, message);
  if (o.hint) assert.match(r.stderr, o.hint);
  assert.deepEqual(state(pki), before, 'nothing written: no serial, no certificate, no index line, no token');
  if (o.audited !== false) {
    const audit = lastAudit(pki);
    assert.deepEqual([audit.event, audit.code], ['cert.refuse', 'LIMIT_EXCEEDED']);
    assert.match(String(audit.reason), /exceeds the limit of|not allowed by limits\./);
  }
}

test('issue client --ttl 4y is refused by the default limit (30d), naming it and its config key; 30d is issued', async () => {
  const pki = await newCa();
  assert.deepEqual(YAML.parse(fs.readFileSync(path.join(pki, 'config.yaml'), 'utf8')).limits, { client: { maxTtl: '30d' }, server: { maxTtl: '397d' } }, 'ca init writes the limits out');
  const out = path.join(base, 'out-4y');
  await refused(['issue', 'client', '--dir', pki, '--user', 'alice', '--ttl', '4y', '--out', out], /^error: client certificate lifetime 4y exceeds the limit of 30d \(limits\.client\.maxTtl in config\.yaml\)$/m, pki, { hint: /hint: ask for 30d or less, or raise limits\.client\.maxTtl in config\.yaml/ });
  assert.equal(fs.existsSync(out), false, 'no output folder');
  const json = await cli(['issue', 'client', '--dir', pki, '--user', 'alice', '--ttl', '31d', '--out', out, '--json']);
  assert.equal(json.code, 65);
  assert.equal(json.stdout, '', 'nothing on stdout with --json');
  const ok = await cliOk<{ files: { cert: string } }>(['issue', 'client', '--dir', pki, '--user', 'alice', '--ttl', '30d', '--out', out, '--json']);
  assert.equal(await lifetimeMs(ok.files.cert), 30 * DAY + 60_000, 'openssl reads 30 days (plus the 60 s backdating)');
});

test('a CA folder without limits: (written before them) gets the defaults; servers stop at 397d', async () => {
  const pki = await newCa(undefined, (c) => delete c.limits);
  await refused(['issue', 'client', '--dir', pki, '--service', 'bot', '--ttl', '31d', '--out', path.join(base, 'o1')], /client certificate lifetime 31d exceeds the limit of 30d/, pki);
  await refused(['issue', 'server', '--dir', pki, '--dns', 'mcp.acme.test', '--ttl', '398d', '--out', path.join(base, 'o2')], /server certificate lifetime 1y 33d exceeds the limit of 397d \(limits\.server\.maxTtl in config\.yaml\)/, pki);
  const ok = await cliOk<{ files: { cert: string } }>(['issue', 'server', '--dir', pki, '--dns', 'mcp.acme.test', '--ttl', '397d', '--out', path.join(base, 'o2'), '--json']);
  assert.equal(await lifetimeMs(ok.files.cert), 397 * DAY + 60_000);
});

test('a default lifetime over the limit is refused too, naming defaults.clientTtl', async () => {
  const pki = await newCa({ client: { maxTtl: '12h' } });
  await refused(['issue', 'client', '--dir', pki, '--user', 'alice', '--out', path.join(base, 'o3')], /client certificate lifetime 24h \(defaults\.clientTtl\) exceeds the limit of 12h \(limits\.client\.maxTtl in config\.yaml\)/, pki, { hint: /lower defaults\.clientTtl to at most 12h/ });
});

test('a raised limit allows longer certificates (the check reads config.yaml, not a constant)', async () => {
  const pki = await newCa({ client: { maxTtl: '2y' } });
  const ok = await cliOk<{ files: { cert: string } }>(['issue', 'client', '--dir', pki, '--user', 'alice', '--ttl', '1y', '--out', path.join(base, 'o4'), '--json']);
  assert.equal(await lifetimeMs(ok.files.cert), 365 * DAY + 60_000);
});

test('batch, sign of a CSR and renew are limited the same way; a refused batch issues no row', async () => {
  const pki = await newCa({ client: { maxTtl: '7d', teams: ['sre', 'ci'] } });
  const csv = path.join(base, 'people.csv');
  fs.writeFileSync(csv, 'type,id,teams,roles,email,ttl\nuser,ann,sre,,,1d\nuser,bob,ci,,,8d\n');
  await refused(['issue', 'client', '--dir', pki, '--batch', csv, '--out', path.join(base, 'o5')], /request 2: client certificate lifetime 8d exceeds the limit of 7d/, pki);
  fs.writeFileSync(csv, 'type,id,teams,roles,email,ttl\nuser,ann,sre,,,1d\nuser,bob,marketing,,,1d\n');
  await refused(['issue', 'client', '--dir', pki, '--batch', csv, '--out', path.join(base, 'o5')], /request 2: team "marketing" not allowed by limits\.client\.teams in config\.yaml \(sre, ci\)/, pki);
  assert.equal(fs.existsSync(path.join(base, 'o5')), false);

  const csrDir = path.join(base, 'csr');
  await cliOk(['csr', '--user', 'carol', '--out', csrDir]);
  await refused(['sign', path.join(csrDir, 'carol.csr'), '--dir', pki, '--user', 'carol', '--ttl', '10d', '--out', path.join(base, 'o6')], /client certificate lifetime 10d exceeds the limit of 7d/, pki);
  await refused(['sign', path.join(csrDir, 'carol.csr'), '--dir', pki, '--user', 'carol', '--team', 'finance', '--out', path.join(base, 'o6')], /team "finance" not allowed by limits\.client\.teams/, pki);
  const signed = await cliOk<{ serial: string }>(['sign', path.join(csrDir, 'carol.csr'), '--dir', pki, '--user', 'carol', '--team', 'ci', '--out', path.join(base, 'o6'), '--json']);

  await refused(['renew', signed.serial, '--dir', pki, '--ttl', '8d', '--out', path.join(base, 'o7')], /client certificate lifetime 8d exceeds the limit of 7d/, pki);
  // the allow-list shrank since: renewing cannot carry a team it no longer allows
  setConfig(pki, (c) => ((c.limits as { client: { teams: string[] } }).client.teams = ['sre']));
  await refused(['renew', signed.serial, '--dir', pki, '--out', path.join(base, 'o7')], /team "ci" not allowed by limits\.client\.teams in config\.yaml \(sre\)/, pki);
});

test('roles allow-list; an empty list allows none', async () => {
  const pki = await newCa({ client: { roles: [] } });
  await refused(['issue', 'client', '--dir', pki, '--user', 'alice', '--role', 'admin', '--out', path.join(base, 'o8')], /role "admin" not allowed by limits\.client\.roles in config\.yaml \(none\)/, pki);
  await cliOk(['issue', 'client', '--dir', pki, '--user', 'alice', '--out', path.join(base, 'o8')]);
});

test('token create refuses a --cert-ttl (or a default) over the limit and teams outside the list at creation: no token is stored', async () => {
  const pki = await newCa({ client: { maxTtl: '1d', teams: ['ci'] } });
  await refused(['token', 'create', '--dir', pki, '--service', 'bot', '--team', 'ci', '--ttl', '15m', '--cert-ttl', '2d'], /client certificate lifetime 2d exceeds the limit of 1d \(limits\.client\.maxTtl in config\.yaml\)/, pki, { audited: false });
  await refused(['token', 'create', '--dir', pki, '--service', 'bot', '--team', 'ops', '--ttl', '15m'], /team "ops" not allowed by limits\.client\.teams/, pki, { audited: false });
  setConfig(pki, (c) => (((c.limits as { client: { maxTtl: string } }).client.maxTtl = '12h')));
  await refused(['token', 'create', '--dir', pki, '--service', 'bot', '--team', 'ci', '--ttl', '15m'], /client certificate lifetime 24h \(defaults\.clientTtl\) exceeds the limit of 12h/, pki, { audited: false });
  assert.deepEqual((await cliOk<{ tokens: unknown[] }>(['token', 'list', '--dir', pki, '--json'])).tokens, []);
  await cliOk(['token', 'create', '--dir', pki, '--service', 'bot', '--team', 'ci', '--ttl', '15m', '--cert-ttl', '12h']);
});

test('server DNS allow-list: canonical lowercase ASCII (IDNA, no trailing dot), *.suffix is one label, **.suffix any; IP allow-list by CIDR', async () => {
  const pki = await newCa({ server: { dns: ['*.acme.test', '**.svc.acme.test', 'MCP.Other.test.', '*.bücher.test'], ips: ['127.0.0.0/8', '::1'] } });
  assert.deepEqual(Authority.open(pki).config.limits?.server?.dns, ['*.acme.test', '**.svc.acme.test', 'mcp.other.test', '*.xn--bcher-kva.test'], 'patterns are kept in canonical form');
  const issue = (dns: string[], ips: string[] = []) => ['issue', 'server', '--dir', pki, ...dns.flatMap((d) => ['--dns', d]), ...ips.flatMap((i) => ['--ip', i]), '--out', path.join(base, `srv${++n}`)];
  for (const [dns, why] of [
    ['acme.test', 'the suffix itself is not *.acme.test'],
    ['a.b.acme.test', '*. is one label'],
    ['evil-acme.test', 'not a subdomain'],
    ['mcp.other.test.evil', 'not the exact name'],
  ] as const) {
    await refused(issue([dns]), new RegExp(`DNS name "${dns.replace(/\./g, '\\.')}" not allowed by limits\\.server\\.dns in config\\.yaml`), pki);
    void why;
  }
  await refused(issue(['mcp.acme.test'], ['10.0.0.1']), /IP address 10\.0\.0\.1 not allowed by limits\.server\.ips in config\.yaml \(127\.0\.0\.0\/8, ::1\)/, pki);
  // an IPv4-mapped IPv6 address is its IPv4 address (Node's BlockList): no way around a v4 list
  await refused(issue(['mcp.acme.test'], ['::ffff:10.0.0.1']), /IP address ::ffff:10\.0\.0\.1 not allowed/, pki);
  // allowed, and written in canonical form: openssl reads lowercase ASCII names
  const ok = await cliOk<{ serial: string; dns: string[]; files: { cert: string } }>([...issue(['API.Acme.Test', 'x.y.svc.acme.test', 'mcp.other.test.', 'shop.bücher.test', '*.acme.test'], ['127.0.0.2', '::1']), '--json']);
  assert.deepEqual(ok.dns, ['api.acme.test', 'x.y.svc.acme.test', 'mcp.other.test', 'shop.xn--bcher-kva.test', '*.acme.test']);
  const text = (await openssl(['x509', '-in', ok.files.cert, '-noout', '-ext', 'subjectAltName'])).stdout;
  assert.match(text, /DNS:api\.acme\.test, DNS:x\.y\.svc\.acme\.test, DNS:mcp\.other\.test, DNS:shop\.xn--bcher-kva\.test, DNS:\*\.acme\.test, IP Address:127\.0\.0\.2, IP Address:0:0:0:0:0:0:0:1/);
  // uppercase and trailing-dot spellings of a refused name are refused the same
  await refused(issue(['A.B.ACME.TEST.']), /DNS name "a\.b\.acme\.test" not allowed/, pki);
  // renew keeps the names: one the list no longer allows stops the renewal too
  setConfig(pki, (c) => ((c.limits as { server: { dns: string[] } }).server.dns = ['*.acme.test', 'mcp.other.test', '*.bücher.test']));
  await refused(['renew', ok.serial, '--dir', pki, '--out', path.join(base, `srv${++n}`)], /DNS name "x\.y\.svc\.acme\.test" not allowed by limits\.server\.dns/, pki);
});

test('a bad limits: entry is a config error (exit 78) naming the field', async () => {
  for (const [limits, field] of [
    [{ server: { dns: ['a.*.test'] } }, /limits\.server\.dns\.0: must be a DNS name, \*\.suffix/],
    [{ server: { ips: ['10.0.0.0/33'] } }, /limits\.server\.ips\.0: must be an IP address or a CIDR block/],
    [{ client: { maxTtl: 'soon' } }, /limits\.client\.maxTtl: must be a duration/],
    [{ client: { teams: ['-x'] } }, /limits\.client\.teams\.0: must be a team or role name/],
    [{ client: { maxTTL: '1d' } }, /limits\.client/],
  ] as const) {
    const pki = await newCa(limits);
    const r = await cli(['issue', 'client', '--dir', pki, '--user', 'alice', '--out', path.join(base, `bad${n}`)]);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, field);
  }
});

test('canonical DNS forms and patterns', () => {
  assert.equal(canonicalDnsName('MCP.Acme.TEST.'), 'mcp.acme.test');
  assert.equal(canonicalDnsName('bücher.test'), 'xn--bcher-kva.test');
  assert.equal(canonicalDnsName('*.Acme.test'), '*.acme.test');
  for (const bad of ['', '.', 'a..b', 'a b.test', 'a.*.test', '*', 'a/b', 'a@b', 'a:b', 'a%2eb', 'x'.repeat(64) + '.test']) assert.equal(canonicalDnsName(bad), undefined, bad);
  // IPv4 addresses, however spelled, are not DNS names (they escaped limits.server.ips as DNS SANs)
  for (const ip of ['10.0.0.1', '127.0.0.1.', '0x7f.1', '10.1', '012.0.0.1']) assert.equal(canonicalDnsName(ip), undefined, ip);
  assert.equal(canonicalDnsName('1.2.3.4.acme.test'), '1.2.3.4.acme.test');
  assert.equal(canonicalDnsPattern('**.Acme.test.'), '**.acme.test');
  assert.equal(canonicalDnsPattern('*.*.acme.test'), undefined);
  assert.equal(canonicalDnsPattern('***.acme.test'), undefined);
  assert.ok(dnsMatches('*.acme.test', 'a.acme.test') && dnsMatches('*.acme.test', '*.acme.test'));
  assert.ok(!dnsMatches('*.acme.test', 'acme.test') && !dnsMatches('*.acme.test', 'a.b.acme.test') && !dnsMatches('*.acme.test', 'xacme.test'));
  assert.ok(dnsMatches('**.acme.test', 'a.b.acme.test') && !dnsMatches('**.acme.test', 'acme.test') && !dnsMatches('**.acme.test', 'evilacme.test'));
});

test('ca serve: /sign with a token over a limit lowered since is 403 LIMIT_EXCEEDED and leaves the token usable; /renew cuts the lifetime at the limit', async () => {
  const t = makeCa('limits.test', tmpDir('ca-limits-serve-'));
  const { secret } = await createEnrollmentToken(t.ca, { kind: 'service', id: 'bot', teams: [], roles: [], ttlMs: 600_000, certTtl: '2d' });
  const old = await clientCreds(t.ca, { id: 'renewer', ttlMs: 10 * DAY });
  await t.ca.store.close();
  setConfig(t.dir, (c) => (c.limits = { client: { maxTtl: '1d' } }));
  const ca = Authority.open(t.dir);
  const { server, port } = await startServer({ ...t, ca });
  try {
    const key = generateKey('ec-p256');
    const csr = pemEncode('CERTIFICATE REQUEST', createCsr(key, 'bot'));
    const sign = await request(port, t.rootPem, { method: 'POST', path: '/sign', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: csr });
    assert.equal(sign.status, 403, sign.text());
    assert.equal(sign.json().error?.code, 'LIMIT_EXCEEDED');
    assert.match(sign.json().error?.message ?? '', /client certificate lifetime 2d exceeds the limit of 1d \(limits\.client\.maxTtl in config\.yaml\)/);
    const tokens = await ca.store.readTokens();
    assert.equal(tokens[0]?.usedAt, undefined, 'the token was not used up');

    const renewed = await request(port, t.rootPem, { method: 'POST', path: '/renew', creds: old });
    assert.equal(renewed.status, 200, renewed.text());
    const file = path.join(t.dir, 'renewed.pem');
    fs.writeFileSync(file, renewed.text());
    assert.equal(await lifetimeMs(file), DAY + 60_000, 'a 10d certificate renews for 1d (the limit), not 10d');
  } finally {
    await server.shutdown();
    await ca.store.close();
  }
});

test('an IP address given as a DNS name is refused (BAD_NAME): it would escape limits.server.ips as a DNS SAN', async () => {
  const pki = await newCa({ server: { ips: ['127.0.0.0/8'] } });
  const ca = Authority.open(pki);
  try {
    for (const name of ['10.0.0.1', '0x0a.1']) {
      const before = state(pki);
      await assert.rejects(ca.issueServer({ dns: [name], ips: [] }), (e: { code?: string; hint?: string }) => e.code === 'BAD_NAME' && /--ip/.test(String(e.hint)), name);
      assert.deepEqual(state(pki), before, 'nothing written');
    }
    await ca.issueServer({ dns: ['mcp.acme.test'], ips: ['127.0.0.2'] });
  } finally {
    await ca.store.close();
  }
});
