/**
 * Secrets never leak (logs, errors, --json, audit) and files get their modes under any umask;
 * a CRL re-signed by `crl --if-due` from cron never expires under a running server.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, cli, cliOk, run, tmpDir } from '../support/cli.js';
import { parseCrl } from '../../src/x509/crl.js';
import { pemDecodeAll } from '../../src/x509/pem.js';

const SECRET = 'Tr0ub4dor&3-do-not-print';

test('no passphrase or key in any output or log; modes hold under umask 000', async () => {
  const dir = tmpDir();
  const pki = path.join(dir, 'pki');
  const pass = path.join(dir, 'pass');
  fs.writeFileSync(pass, SECRET);
  const sh = (cmd: string) => run('sh', ['-c', `umask 000; ${cmd}`], { env: { MCP_MTLS_BUNDLE_PASSPHRASE: SECRET } });
  const outputs: string[] = [];
  const q = (s: string) => `'${s}'`;
  for (const cmd of [
    `${q(process.execPath)} ${q(BIN)} ca init --dir ${q(pki)} --trust-domain acme.test --encrypt-keys --passphrase-file ${q(pass)} --json`,
    `${q(process.execPath)} ${q(BIN)} issue client --dir ${q(pki)} --user alice --out ${q(path.join(dir, 'out'))} --passphrase-file ${q(pass)} --json`,
    `${q(process.execPath)} ${q(BIN)} issue client --dir ${q(pki)} --user bob --out ${q(path.join(dir, 'out'))} --json`, // no passphrase: refused
    `${q(process.execPath)} ${q(BIN)} bundle ${q(path.join(dir, 'out', 'alice.crt'))} --dir ${q(pki)} --format p12 --out ${q(path.join(dir, 'alice.p12'))} --json`,
    `${q(process.execPath)} ${q(BIN)} check-bundle ${q(path.join(dir, 'alice.p12'))} --json`,
    `${q(process.execPath)} ${q(BIN)} revoke ${q(path.join(dir, 'out', 'alice.crt'))} --dir ${q(pki)} --reason keyCompromise --passphrase-file ${q(pass)} --json`,
  ]) {
    const r = await sh(cmd);
    outputs.push(r.stdout, r.stderr);
  }
  const everything = [...outputs, fs.readFileSync(path.join(pki, 'audit.log'), 'utf8'), fs.readFileSync(path.join(pki, 'index.jsonl'), 'utf8')].join('\n');
  assert.ok(!everything.includes(SECRET), 'the passphrase appears nowhere');
  assert.doesNotMatch(everything, /BEGIN (ENCRYPTED )?PRIVATE KEY/, 'no key material in any output or log');
  const mode = (f: string) => fs.statSync(f).mode & 0o777;
  assert.equal(mode(path.join(pki, 'private', 'intermediate.key')), 0o400);
  assert.equal(mode(path.join(pki, 'private')), 0o700);
  assert.equal(mode(path.join(dir, 'out', 'alice.key')), 0o600);
  assert.equal(mode(path.join(dir, 'alice.p12')), 0o600);
  assert.equal(mode(path.join(pki, 'audit.log')), 0o600);
  assert.equal(mode(path.join(pki, 'root.crt')), 0o644);
  // argv never carries a secret: there is no option for one
  const help = await cli(['--help']);
  assert.doesNotMatch(help.stdout, /--passphrase </);
});

test('crl --if-due from "cron": the CRL never expires while short-lived', async () => {
  const dir = tmpDir();
  const pki = path.join(dir, 'pki');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  await cliOk(['crl', '--dir', pki, '--ttl', '6s']);
  let resigned = 0;
  const until = Date.now() + 14_000;
  while (Date.now() < until) {
    const r = await cliOk<{ intermediate: { signed: boolean } }>(['crl', '--dir', pki, '--if-due', '--ttl', '6s', '--json']);
    if (r.intermediate.signed) resigned++;
    const crl = parseCrl(pemDecodeAll(fs.readFileSync(path.join(pki, 'crl', 'intermediate.crl'), 'utf8'))[0]!.der);
    assert.ok(crl.nextUpdate!.getTime() > Date.now() + 1000, `the CRL has ${crl.nextUpdate!.getTime() - Date.now()} ms left`);
    await new Promise((r) => setTimeout(r, 700));
  }
  assert.ok(resigned >= 2, `re-signed ${resigned} times, only when due`);
});
