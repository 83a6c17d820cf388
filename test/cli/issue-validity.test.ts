/**
 * Issue 18: `--not-before` / `--not-after` on issuance (`issue client`, `issue server`, `sign`,
 * batch rows: absolute RFC 3339 times, checked against
 * the limits: maxTtl, the intermediate's end, backdating), with openssl reading the dates; and
 * the `--batch` CSV and YAML formats, whose examples in `issue client --help` and in
 * docs/operations.md are run as written.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cli, cliOk, openssl, ROOT } from '../support/cli.js';
import { makePki } from '../support/pki.js';

type Issued = { serial: string; notBefore: string; notAfter: string; files: { cert: string } };
type Batch = { count: number; issued: { id: string; kind: string; teams: string[]; roles: string[]; email?: string; notBefore: string; notAfter: string }[] };

/** A time `ms` from now, to the second, as RFC 3339 (UTC). */
const at = (ms: number) => new Date(Math.floor((Date.now() + ms) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const H = 3_600_000;

/** The leaf's dates as openssl prints them (`notBefore=Dec  2 09:00:00 2026 GMT`), parsed. */
async function opensslDates(cert: string): Promise<{ notBefore: number; notAfter: number }> {
  const r = await openssl(['x509', '-in', cert, '-noout', '-startdate', '-enddate']);
  assert.equal(r.code, 0, r.stderr);
  const get = (k: string) => Date.parse(new RegExp(`${k}=(.*)`).exec(r.stdout)![1]!);
  return { notBefore: get('notBefore'), notAfter: get('notAfter') };
}

test('issue client and server with --not-before / --not-after: the certificate holds those times (openssl reads them)', async () => {
  const t = await makePki();
  const nb = at(2 * H);
  const na = at(50 * H);
  const alice = await cliOk<Issued>(['issue', 'client', '--dir', t.pki, '--user', 'alice', '--not-before', nb, '--not-after', na, '--out', t.out, '--json']);
  assert.equal(alice.notBefore, new Date(nb).toISOString());
  assert.equal(alice.notAfter, new Date(na).toISOString());
  assert.deepEqual(await opensslDates(alice.files.cert), { notBefore: Date.parse(nb), notAfter: Date.parse(na) });
  // an offset is a time zone: the same instant; --not-before with --ttl counts from --not-before
  const back = new Date(Date.now() - 10_000); // in the past, but after the intermediate (made a moment ago) starts
  back.setUTCMilliseconds(0);
  const offset = new Date(back.getTime() + 2 * H).toISOString().slice(0, 19) + '+02:00';
  const srv = await cliOk<Issued>(['issue', 'server', '--dir', t.pki, '--dns', 'mcp.acme.test', '--not-before', offset, '--ttl', '10d', '--out', t.out, '--json']);
  assert.equal(srv.notBefore, back.toISOString());
  assert.equal(Date.parse(srv.notAfter), back.getTime() + 240 * H);
  assert.deepEqual(await opensslDates(srv.files.cert), { notBefore: back.getTime(), notAfter: back.getTime() + 240 * H });
  // sign (a CSR) takes them too
  await cliOk(['csr', '--user', 'carol', '--out', t.base, '--json']);
  const carol = await cliOk<Issued>(['sign', path.join(t.base, 'carol.csr'), '--dir', t.pki, '--user', 'carol', '--not-before', nb, '--not-after', na, '--out', path.join(t.base, 'signed'), '--json']);
  assert.deepEqual(await opensslDates(carol.files.cert), { notBefore: Date.parse(nb), notAfter: Date.parse(na) });
  // --not-after alone: valid from a minute ago, as without it
  const bob = await cliOk<Issued>(['issue', 'client', '--dir', t.pki, '--user', 'bob', '--not-after', na, '--out', t.out, '--json']);
  assert.ok(Math.abs(Date.parse(bob.notBefore) - (Date.now() - 60_000)) < 30_000, bob.notBefore);
  assert.equal(bob.notAfter, new Date(na).toISOString());
});

test('--not-before / --not-after outside the limits: clear errors naming the flag, nothing issued', async () => {
  const t = await makePki(['--intermediate-ttl', '60d']);
  const cases: [string[], number, RegExp, RegExp][] = [
    [['issue', 'client', '--user', 'a', '--not-after', at(-H)], 64, /--not-after .* is in the past/, /a time in the future/],
    [['issue', 'client', '--user', 'a', '--not-before', at(-3 * H)], 64, /--not-before .* is more than 1h in the past: backdating a certificate is limited to 1h/, /choose a --not-before after/],
    [['issue', 'client', '--user', 'a', '--not-before', at(5 * H), '--not-after', at(4 * H)], 64, /--not-after .* is not after --not-before/, /must end after it starts/],
    [['issue', 'client', '--user', 'a', '--not-after', at(31 * 24 * H)], 65, /client certificate lifetime 30d 23h \(until --not-after .*\) exceeds the limit of 30d \(limits\.client\.maxTtl/, /ask for 30d or less/],
    [['issue', 'server', '--dns', 'x.acme.test', '--not-after', at(61 * 24 * H)], 65, /would end .*, after the intermediate CA/, /choose a --not-after up to/],
    [['issue', 'client', '--user', 'a', '--ttl', '1h', '--not-after', at(2 * H)], 64, /give --ttl or --not-after, not both/, /--not-after says when/],
    [['issue', 'client', '--user', 'a', '--not-after', 'tomorrow'], 64, /invalid --not-after "tomorrow": not an RFC 3339 time/, /2026-12-01T09:00:00Z/],
    [['issue', 'client', '--user', 'a', '--not-after', '2026-02-30T00:00:00Z'], 64, /invalid --not-after "2026-02-30T00:00:00Z"/, /RFC 3339|time zone/],
    [['issue', 'client', '--user', 'a', '--not-before', '2026-12-01 09:00'], 64, /invalid --not-before/, /time zone/],
  ];
  for (const [args, code, message, hint] of cases) {
    const r = await cli([...args.slice(0, 2), '--dir', t.pki, ...args.slice(2), '--out', t.out]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, new RegExp(`hint: .*${hint.source}`), args.join(' '));
    assert.doesNotMatch(r.stderr, /internal error/);
  }
  assert.deepEqual((await cliOk<{ certificates: unknown[] }>(['list', '--dir', t.pki, '--json'])).certificates, []);
});

/** The indented example blocks of `issue client --help`: the CSV (starts `type,`) and the YAML (starts `- `). */
async function helpExamples(): Promise<{ csv: string; yaml: string }> {
  const help = (await cliOk<string>(['issue', 'client', '--help'])).split('\n');
  const block = (first: RegExp) => {
    const i = help.findIndex((l) => first.test(l));
    assert.ok(i >= 0, `an example starting ${first} in the help`);
    const lines: string[] = [];
    for (let j = i; j < help.length && help[j]!.startsWith('  '); j++) lines.push(help[j]!.slice(2));
    return `${lines.join('\n')}\n`;
  };
  return { csv: block(/^ {2}type,id/), yaml: block(/^ {2}- user:/) };
}

/** The fenced block after `<!-- batch-example: NAME ... -->` in docs/operations.md. */
function docsExample(name: string): string {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8');
  const m = new RegExp(`<!-- batch-example: ${name.replace('.', '\\.')}[^>]*-->\\n\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(text);
  assert.ok(m, `docs/operations.md has the ${name} example`);
  return m[1]!;
}

test('the --batch examples of the help and of docs/operations.md issue what they say', async () => {
  const t = await makePki();
  const help = await helpExamples();
  const examples: [string, string][] = [
    ['help.csv', help.csv],
    ['help.yaml', help.yaml],
    ['people.csv', docsExample('people.csv')],
    ['people.yaml', docsExample('people.yaml')],
  ];
  const results: Record<string, Batch> = {};
  for (const [name, text] of examples) {
    const file = path.join(t.base, name);
    fs.writeFileSync(file, text);
    results[name] = await cliOk<Batch>(['issue', 'client', '--dir', t.pki, '--batch', file, '--out', path.join(t.base, name.replace('.', '-')), '--json']);
  }
  // hours, rounded: notBefore is a minute before issuance (clock skew)
  const lifetime = (r: Batch['issued'][number]) => Math.round((Date.parse(r.notAfter) - Date.parse(r.notBefore)) / H);
  const summary = (b: Batch) => b.issued.map((r) => `${r.kind}/${r.id} teams=${r.teams} roles=${r.roles}${r.email ? ` ${r.email}` : ''} ${lifetime(r)}h`);
  assert.deepEqual(summary(results['help.csv']!), ['user/alice teams=platform,sre roles=admin alice@acme.test 24h', 'service/build-bot teams=ci roles= 168h']);
  assert.deepEqual(summary(results['help.yaml']!), summary(results['help.csv']!));
  const docs = ['user/alice teams=platform,sre roles=admin alice@acme.test 24h', 'user/bob teams=dev roles= 12h', 'service/build-bot teams=ci,release roles=deployer 168h'];
  assert.deepEqual(summary(results['people.csv']!), docs);
  assert.deepEqual(summary(results['people.yaml']!), docs);
});

test('batch rows take notBefore / notAfter; the command line gives the rest theirs; a bad row names its line', async () => {
  const t = await makePki();
  const nb = at(H);
  const na = at(30 * H);
  const cliEnd = at(10 * H);
  const csv = path.join(t.base, 'rows.csv');
  fs.writeFileSync(csv, `type,id,notBefore,notAfter\nuser,alice,${nb},${na}\nuser,bob,,\n`);
  const r = await cliOk<Batch>(['issue', 'client', '--dir', t.pki, '--batch', csv, '--not-after', cliEnd, '--out', path.join(t.base, 'o1'), '--json']);
  assert.equal(r.issued[0]!.notBefore, new Date(nb).toISOString());
  assert.equal(r.issued[0]!.notAfter, new Date(na).toISOString());
  assert.equal(r.issued[1]!.notAfter, new Date(cliEnd).toISOString());
  const yaml = path.join(t.base, 'rows.yaml');
  fs.writeFileSync(yaml, `- user: carol\n  notAfter: ${na}\n- user: dave\n  notAfter: someday\n`);
  const bad = await cli(['issue', 'client', '--dir', t.pki, '--batch', yaml, '--out', path.join(t.base, 'o2')]);
  assert.equal(bad.code, 65, bad.stderr);
  assert.match(bad.stderr, /rows\.yaml:3: invalid notAfter "someday": not an RFC 3339 time/);
  const both = path.join(t.base, 'both.csv');
  fs.writeFileSync(both, `type,id,ttl,notAfter\nuser,erin,2h,${na}\n`);
  const r2 = await cli(['issue', 'client', '--dir', t.pki, '--batch', both, '--out', path.join(t.base, 'o3')]);
  assert.equal(r2.code, 65, r2.stderr);
  assert.match(r2.stderr, /both\.csv:2: give ttl or notAfter, not both/);
});
