/**
 * `mcp-mtls ca serve` and `mcp-mtls token` as a user runs them (the built bin): encrypted CA
 * keys unlocked from MCP_MTLS_PASSPHRASE, a token created on the command line and traded for a
 * certificate, that certificate renewed, audit lines on stdout without secrets, SIGTERM exits 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'node:test';
import { createCsr } from '../../../src/x509/csr.js';
import { generateKey, privateKeyPem } from '../../../src/x509/keys.js';
import { BIN, cli, cliOk, ROOT, run, tmpDir } from '../../support/cli.js';
import { request } from '../../support/ca-serve.js';

test('ca serve from the CLI: token create, POST /sign, POST /renew, token list, SIGTERM exits 0', async () => {
  const base = tmpDir('ca-serve-cli-');
  const pki = path.join(base, 'pki');
  const env = { MCP_MTLS_PASSPHRASE: 'correct horse battery staple' };
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test', '--encrypt-keys'], { env });
  const tls = await cliOk<{ files: { cert: string; key: string } }>(['issue', 'server', '--dir', pki, '--ip', '127.0.0.1', '--out', path.join(base, 'tls'), '--json'], { env });

  const noTls = await cli(['ca', 'serve', '--dir', pki, '--listen', '127.0.0.1:0'], { env });
  assert.equal(noTls.code, 64);
  assert.match(noTls.stderr, /needs its TLS certificate[\s\S]*hint: issue one from this CA first: mcp-mtls issue server/);

  const created = await cli(['token', 'create', '--dir', pki, '--service', 'build-bot', '--team', 'ci', '--role', 'deployer', '--ttl', '15m', '--cert-ttl', '1h']);
  assert.equal(created.code, 0, created.stderr);
  const secret = created.stdout.trim();
  assert.match(secret, /^mcpt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/, 'stdout is the secret alone');
  assert.match(created.stderr, /spiffe:\/\/acme\.test\/service\/build-bot teams=\[ci\] roles=\[deployer\]/);
  assert.ok(!fs.readFileSync(path.join(pki, 'tokens.json'), 'utf8').includes(secret.slice(22)), 'only the hash is stored');
  const refused = await cli(['token', 'create', '--dir', pki, '--user', 'a/b', '--ttl', '15m', '--json']);
  assert.equal(refused.code, 65);
  assert.equal(JSON.parse(refused.stderr).error.code, 'BAD_NAME');

  const child = spawn(process.execPath, [BIN, 'ca', 'serve', '--dir', pki, '--listen', '127.0.0.1:0', '--tls-cert', tls.files.cert, '--tls-key', tls.files.key], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const lines: Record<string, unknown>[] = [];
  const rl = readline.createInterface({ input: child.stdout });
  const started = new Promise<{ port: number }>((resolve, reject) => {
    rl.on('line', (l) => {
      const e = JSON.parse(l) as Record<string, unknown>;
      lines.push(e);
      if (e.event === 'serve.start') resolve(e as unknown as { port: number });
    });
    void exited.then((code) => reject(new Error(`ca serve exited ${code}: ${stderr}`)));
  });
  try {
    const { port } = await started;
    const rootPem = fs.readFileSync(path.join(pki, 'root.crt'), 'utf8');
    const health = await request(port, rootPem, { path: '/healthz' });
    assert.equal(health.status, 200, health.text());

    const key = generateKey('ec-p256');
    const signed = await request(port, rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: createCsr(key, 'whoever') });
    assert.equal(signed.status, 200, signed.text());
    const creds = { cert: signed.text(), key: privateKeyPem(key.pkcs8) };
    const renewed = await request(port, rootPem, { path: '/renew', method: 'POST', creds });
    assert.equal(renewed.status, 200, renewed.text());
    const again = await request(port, rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}` }, body: createCsr(key, 'again') });
    assert.deepEqual([again.status, again.text()], [200, signed.text()], 'the same key: the same certificate again (a lost answer)');
    assert.equal((await request(port, rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}` }, body: createCsr(generateKey('ec-p256'), 'other') })).status, 401, 'another key: refused');

    const list = await cliOk<{ tokens: { id: string; status: string; principal: string; hash?: string }[] }>(['token', 'list', '--dir', pki, '--json']);
    assert.deepEqual(list.tokens.map((t) => [t.principal, t.status, t.hash]), [['spiffe://acme.test/service/build-bot', 'used', undefined]]);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, stderr);
  const events = lines.map((e) => [e.event, e.status ?? null]);
  assert.deepEqual(events, [['serve.start', null], ['ca.sign', 200], ['ca.renew', 200], ['ca.sign', 200], ['ca.sign', 401], ['serve.stop', null]]);
  assert.ok(!JSON.stringify(lines).includes(secret.slice(22)), 'no secret on stdout');
  assert.match(stderr, /listening on https:\/\/127\.0\.0\.1:\d+/);
  assert.match(stderr, /SIGTERM: draining/);
});

test('bench/ca-serve runs (smoke: a fraction of a second per phase) and prints its ratios', async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'ca-serve.ts')], { env: { BENCH_SECONDS: '0.3', BENCH_WARMUP: '0.1', BENCH_TOKENS: '20', BENCH_CLIENTS: '2' } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  for (const what of ['in-process issue', 'POST /sign', 'POST /renew', 'floor']) assert.match(r.stdout, new RegExp(`^folder\\s+${what.replace('/', '\\/')}\\s+\\d+\\s+\\d+\\.\\d\\d`, 'm'));
  // the ceiling the floor gives /sign on this machine, as a ratio to in-process issuance
  assert.match(r.stdout, /^folder: \/sign at most \d+\/s = \d+\.\d\dx in-process/m);
  assert.doesNotMatch(r.stdout, /failed/);
});
