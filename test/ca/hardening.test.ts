/**
 * What a hostile or unlucky operator can do to the CA, each case found in review and
 * pinned here: long transactions against concurrent runs, dead lock owners, outputs that
 * race or point elsewhere, input that would make a broken CA, and CLI edge cases.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cli, cliOk, openssl, snapshot, tmpDir } from '../support/cli.js';
import { makePki } from '../support/pki.js';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { isMtlsError } from '../../src/errors.js';

test('a long batch holds the lock for its whole transaction: concurrent issues wait, nothing interleaves', async () => {
  const t = await makePki();
  const csv = path.join(t.base, 'big.csv');
  fs.writeFileSync(csv, `type,id\n${Array.from({ length: 2500 }, (_, i) => `user,b${i}`).join('\n')}\n`);
  const batch = cli(['issue', 'client', '--dir', t.pki, '--batch', csv, '--out', path.join(t.base, 'batch')]);
  await new Promise((r) => setTimeout(r, 400));
  const singles = Promise.all(Array.from({ length: 4 }, (_, i) => cli(['issue', 'client', '--dir', t.pki, '--user', `solo${i}`, '--out', t.out])));
  const [b, s] = await Promise.all([batch, singles]);
  assert.equal(b.code, 0, b.stderr);
  for (const r of s) assert.equal(r.code, 0, r.stderr);
  const ids = (await new FsStore(t.pki).readIndex()).map((r) => (r.op === 'issue' ? r.id : ''));
  assert.equal(ids.length, 2504);
  const first = ids.findIndex((id) => id.startsWith('b'));
  assert.ok(ids.slice(first, first + 2500).every((id) => id.startsWith('b')), 'the batch is one contiguous block in the index');
});

test('a lock left by a killed process is taken over at once; a live owner is waited for', async () => {
  const t = await makePki();
  const child = spawn(process.execPath, ['-e', '0']);
  const deadPid = child.pid as number;
  await new Promise((r) => child.on('exit', r));
  const lockDir = path.join(t.pki, 'store.lock');
  fs.mkdirSync(lockDir);
  fs.writeFileSync(path.join(lockDir, 'owner.json'), JSON.stringify({ pid: deadPid, host: os.hostname(), token: 'x', since: new Date().toISOString() }));
  const started = Date.now();
  await cliOk(['issue', 'client', '--dir', t.pki, '--user', 'after-crash', '--out', t.out]);
  assert.ok(Date.now() - started < 3000, 'no waiting for a dead owner');

  fs.mkdirSync(lockDir);
  fs.writeFileSync(path.join(lockDir, 'owner.json'), JSON.stringify({ pid: process.pid, host: os.hostname(), token: 'live', since: new Date().toISOString() }));
  await assert.rejects(
    new FsStore(t.pki, { waitMs: 300 }).transaction(() => undefined),
    (e) => isMtlsError(e, 'STORE_LOCKED') && e.message.includes(`pid ${process.pid}`),
  );
  fs.rmSync(lockDir, { recursive: true });
});

test('four runs racing for the same output: one certificate recorded, the others refused before signing', async () => {
  const t = await makePki();
  const runs = await Promise.all(Array.from({ length: 4 }, () => cli(['issue', 'client', '--dir', t.pki, '--user', 'dupe', '--out', t.out, '--json'])));
  const ok = runs.filter((r) => r.code === 0);
  assert.equal(ok.length, 1, runs.map((r) => r.stderr).join('\n'));
  for (const r of runs.filter((x) => x.code !== 0)) {
    assert.equal(r.code, 73);
    assert.match(r.stderr, /dupe\.(crt|key) exists already/);
  }
  const index = await new FsStore(t.pki).readIndex();
  assert.equal(index.length, 1, 'no certificate recorded without its key delivered');
  assert.equal(index[0]!.serial, JSON.parse(ok[0]!.stdout).serial);
  const check = await openssl(['x509', '-in', path.join(t.out, 'dupe.crt'), '-noout', '-pubkey']);
  const key = await openssl(['pkey', '-in', path.join(t.out, 'dupe.key'), '-pubout']);
  assert.equal(check.stdout, key.stdout, 'the key on disk belongs to the certificate on disk');
});

test('a dangling symlink in --out counts as taken; the refusal names it and records nothing', async () => {
  const t = await makePki();
  fs.mkdirSync(t.out, { recursive: true });
  fs.symlinkSync('/nonexistent/target', path.join(t.out, 'zed.crt'));
  const before = snapshot(t.pki);
  const r = await cli(['issue', 'client', '--dir', t.pki, '--user', 'zed', '--out', t.out]);
  assert.equal(r.code, 73);
  assert.match(r.stderr, /zed\.crt exists already/);
  const after = snapshot(t.pki);
  delete after['audit.log'];
  delete before['audit.log'];
  assert.deepEqual(after, before);
  assert.equal(fs.existsSync(path.join(t.out, 'zed.key')), false);
});

test('a 253-character DNS name issues, with a shortened file name and a 64-character CN', async () => {
  const t = await makePki();
  const label = 'a'.repeat(63);
  const dns = `${label}.${label}.${label}.${'b'.repeat(61)}`;
  assert.equal(dns.length, 253);
  const r = await cliOk<{ files: { cert: string } }>(['issue', 'server', '--dir', t.pki, '--dns', dns, '--out', t.out, '--json']);
  assert.ok(path.basename(r.files.cert).length < 140);
  const text = (await openssl(['x509', '-in', r.files.cert, '-noout', '-subject', '-ext', 'subjectAltName'])).stdout;
  assert.ok(text.includes(`DNS:${dns}`));
  assert.ok((text.match(/CN = (\S+)/)?.[1] ?? '').length <= 64);
  const v = await openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', path.join(t.out, 'ca.crt'), '-untrusted', r.files.cert, r.files.cert]);
  assert.equal(v.code, 0, v.stderr);
});

test('a CSR with an unsupported key is refused cleanly (no stack trace)', async () => {
  const t = await makePki();
  const key = path.join(t.base, 'k4096.pem');
  const csr = path.join(t.base, 'r4096.csr');
  assert.equal((await openssl(['req', '-new', '-newkey', 'rsa:4096', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=big'])).code, 0);
  const r = await cli(['sign', csr, '--dir', t.pki, '--user', 'big', '--out', t.out]);
  assert.equal(r.code, 65);
  assert.match(r.stderr, /unsupported key: rsa \(4096 bits\)/);
  assert.doesNotMatch(r.stderr, /internal error|TypeError/);
});

test('ca init refuses input that would make a broken CA, before writing anything', async () => {
  const base = tmpDir();
  const dir = path.join(base, 'pki');
  const cases: [string[], RegExp][] = [
    [['--root-ttl', '9000y', '--intermediate-ttl', '8000y'], /too long|past the year 9999/],
    [['--name', 'n'.repeat(80)], /--name .* must have 1 to 50 characters/],
    [['--org', 'o'.repeat(70)], /--org must have 1 to 64 characters/],
    [['--name-constraints', '--permit-dns', 'bad name!'], /--permit-dns "bad name!" is not a DNS name/],
    [['--name-constraints', '--permit-dns', 'ünï.de'], /is not a DNS name/],
    [['--crl-url', 'http://x/ünï'], /not an http\(s\) URL in plain ASCII/],
    [['--crl-url', 'javascript:alert(1)'], /not an http\(s\) URL/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'acme.test', ...args]);
    assert.ok(r.code === 64, `${args.join(' ')}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(fs.existsSync(dir) && fs.readdirSync(dir).length > 0, false, `${args.join(' ')} wrote something`);
  }
});

test('under name constraints, certificates OpenSSL would reject are refused before signing', async () => {
  const t = await makePki(['--name-constraints', '--permit-dns', 'acme.test']);
  const dotted = await cli(['issue', 'client', '--dir', t.pki, '--user', 'alice.smith', '--out', t.out]);
  assert.equal(dotted.code, 65);
  assert.match(dotted.stderr, /cannot contain a dot/);
  const ipOnly = await cli(['issue', 'server', '--dir', t.pki, '--ip', '10.0.0.1', '--out', t.out]);
  assert.equal(ipOnly.code, 65);
  assert.match(ipOnly.stderr, /needs a --dns name/);
  const withDns = await cliOk<{ files: { cert: string } }>(['issue', 'server', '--dir', t.pki, '--dns', 'mcp.acme.test', '--ip', '10.0.0.1', '--out', t.out, '--json']);
  const v = await openssl(['verify', '-purpose', 'sslserver', '-CAfile', path.join(t.out, 'ca.crt'), '-untrusted', withDns.files.cert, withDns.files.cert]);
  assert.equal(v.code, 0, v.stderr);
  assert.equal((await new FsStore(t.pki).readIndex()).length, 1);
});

test('CA keys are encrypted with 600,000 PBKDF2 iterations, and OpenSSL reads them', async () => {
  const base = tmpDir();
  const pass = path.join(base, 'pass');
  fs.writeFileSync(pass, 'pbkdf2 check\n');
  await cliOk(['ca', 'init', '--dir', path.join(base, 'pki'), '--trust-domain', 'acme.test', '--encrypt-keys', '--passphrase-file', pass]);
  const key = path.join(base, 'pki', 'private', 'intermediate.key');
  const parsed = (await openssl(['asn1parse', '-in', key])).stdout;
  assert.match(parsed, /PBES2[\s\S]*PBKDF2[\s\S]*INTEGER\s+:0927C0[\s\S]*hmacWithSHA256[\s\S]*aes-256-cbc/);
  assert.equal((await openssl(['pkey', '-in', key, '-passin', 'pass:pbkdf2 check', '-noout'])).code, 0);
});

test('CLI edges: repeated --user, --json parse errors, inspect of a folder, text before a PEM block, concurrent init', async () => {
  const t = await makePki();
  const twice = await cli(['issue', 'client', '--dir', t.pki, '--user', 'bob', '--user', 'carol', '--out', t.out]);
  assert.equal(twice.code, 64);
  assert.match(twice.stderr, /--user was given twice/);
  const unknown = await cli(['issue', 'client', '--bogus', '--out', t.out, '--json']);
  assert.equal(unknown.code, 64);
  assert.deepEqual(JSON.parse(unknown.stderr), { error: { code: 'USAGE', message: "unknown option '--bogus'" } });
  const folder = await cli(['inspect', t.base, '--dir', t.pki]);
  assert.equal(folder.code, 66);
  assert.match(folder.stderr, /is not a file/);

  const c = await t.issue(['issue', 'client', '--user', 'texty', '--key-type', 'rsa-3072']);
  const text = await openssl(['x509', '-in', c.files.cert, '-text']);
  const withText = path.join(t.base, 'with-text.pem');
  fs.writeFileSync(withText, `${'notes about this certificate\n'.repeat(200)}${text.stdout}`);
  assert.ok(fs.readFileSync(withText, 'utf8').indexOf('-----BEGIN') > 4096, 'the PEM block starts past the first 4 KiB');
  const report = await cliOk<{ identity: { principal: string } }>(['inspect', withText, '--dir', t.pki, '--json']);
  assert.equal(report.identity.principal, 'spiffe://acme.test/user/texty');

  const racing = path.join(t.base, 'race');
  const inits = await Promise.all(Array.from({ length: 4 }, () => cli(['ca', 'init', '--dir', racing, '--trust-domain', 'acme.test'])));
  assert.deepEqual(inits.map((r) => r.code).sort(), [0, 73, 73, 73], inits.map((r) => r.stderr).join('\n'));
  await cliOk(['issue', 'client', '--dir', racing, '--user', 'ok', '--out', path.join(t.base, 'race-out')]);
});

test('server certificates carry keyUsage digitalSignature only, RSA included (identity.md)', async () => {
  const t = await makePki(['--key-type', 'rsa-2048']);
  const s = await t.issue(['issue', 'server', '--dns', 'localhost']);
  const text = (await openssl(['x509', '-in', s.files.cert, '-noout', '-ext', 'keyUsage'])).stdout;
  assert.match(text, /critical\s+Digital Signature\s*$/);
});
