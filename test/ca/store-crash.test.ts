/**
 * kill -9 at random points of issue, batch issue, revoke and CRL generation, many times:
 * afterwards the store loads, no serial is reused, the index and issued/ agree, every
 * issuance in the index has its audit line, and no log has a torn line.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, cliOk, tmpDir } from '../support/cli.js';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { parseCrl } from '../../src/x509/crl.js';
import { pemDecodeAll } from '../../src/x509/pem.js';

const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 24);

function runAndKill(args: string[], afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), afterMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function checkStore(pki: string) {
  const store = new FsStore(pki);
  const lines = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  for (const f of ['index.jsonl', 'audit.log']) {
    const text = lines(path.join(pki, f));
    const complete = text.endsWith('\n') ? text.split('\n').slice(0, -1) : text.split('\n').slice(0, -1);
    for (const l of complete) JSON.parse(l); // every complete line parses
  }
  const index = await store.readIndex();
  const issued = index.filter((r) => r.op === 'issue').map((r) => r.serial);
  assert.equal(new Set(issued).size, issued.length, 'no serial is reused');
  const files = fs.readdirSync(path.join(pki, 'issued')).filter((f) => f.endsWith('.crt')).map((f) => f.replace(/\.crt$/, ''));
  assert.deepEqual(new Set(files), new Set(issued), 'the index and issued/ agree');
  const audited = new Set((await store.readAudit()).filter((e) => e.event === 'cert.issue').map((e) => e.serial));
  for (const s of issued) assert.ok(audited.has(s), `issuance ${s} has its audit line`);
  return { issued: issued.length };
}

test('a crash at each point of a commit is finished or undone by the next operation', async () => {
  const base = tmpDir();
  const pki = path.join(base, 'pki');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  const expectIndexed: Record<string, boolean> = { 'after-journal': false, 'after-files': false, 'after-index': true, 'after-audit': true };
  for (const [point, indexed] of Object.entries(expectIndexed)) {
    const r = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'issue', 'client', '--dir', pki, '--user', point, '--out', path.join(base, point)], { stdio: 'ignore', env: { ...process.env, MCP_MTLS_CRASH_AT: point } });
      child.once('exit', (_code, signal) => resolve(signal === 'SIGKILL' ? -9 : _code));
    });
    assert.equal(r, -9, `the process died at ${point}`);
    assert.ok(fs.existsSync(path.join(pki, 'pending.json')), 'the journal survives the crash');
    await cliOk(['list', '--dir', pki]); // reading needs no recovery
    await cliOk(['issue', 'client', '--dir', pki, '--user', `next-${point}`, '--out', path.join(base, `next-${point}`)]);
    assert.equal(fs.existsSync(path.join(pki, 'pending.json')), false);
    const ids = (await new FsStore(pki).readIndex()).filter((x) => x.op === 'issue').map((x) => (x as { id: string }).id);
    assert.equal(ids.includes(point), indexed, `${point}: the certificate is ${indexed ? 'kept' : 'undone'}`);
    await checkStore(pki);
  }
  const recovered = (await new FsStore(pki).readAudit()).filter((e) => e.event === 'store.recovered');
  assert.equal(recovered.length, 4);
});

test(`kill -9 during issue, batch issue, revoke and crl (${ROUNDS} rounds): the store stays consistent`, async () => {
  const base = tmpDir();
  const pki = path.join(base, 'pki');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  const csv = path.join(base, 'batch.csv');
  let crashes = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const delay = 60 + Math.floor(Math.random() * 260);
    const kind = i % 4;
    if (kind === 0) await runAndKill(['issue', 'client', '--dir', pki, '--user', `u${i}`, '--out', path.join(base, `out${i}`)], delay);
    else if (kind === 1) {
      fs.writeFileSync(csv, `type,id\n${Array.from({ length: 40 }, (_, j) => `user,b${i}x${j}`).join('\n')}\n`);
      await runAndKill(['issue', 'client', '--dir', pki, '--batch', csv, '--out', path.join(base, `batch${i}`)], delay);
    } else if (kind === 2) {
      const serial = (await new FsStore(pki).readIndex()).find((r) => r.op === 'issue')?.serial;
      if (serial) await runAndKill(['revoke', serial, '--dir', pki, '--reason', 'superseded'], delay);
    } else await runAndKill(['crl', '--dir', pki], delay);
    crashes++;
  }
  // the next operation finishes or undoes whatever a crash interrupted
  await cliOk(['issue', 'client', '--dir', pki, '--user', 'after', '--out', path.join(base, 'after')]);
  await cliOk(['crl', '--dir', pki]);
  const { issued } = await checkStore(pki);
  assert.ok(issued >= 1);
  const list = await cliOk<{ certificates: unknown[] }>(['list', '--dir', pki, '--json']);
  assert.equal(list.certificates.length, issued);
  // CRL numbers only grow, and the CRL is whole and lists every active revocation
  const crl = parseCrl(pemDecodeAll(fs.readFileSync(path.join(pki, 'crl', 'intermediate.crl'), 'utf8'))[0]!.der);
  const revoked = (await new FsStore(pki).readIndex()).filter((r) => r.op === 'revoke').map((r) => r.serial);
  for (const s of revoked) assert.ok(crl.entries.some((e) => e.serial === s), `revoked ${s} is in the CRL`);
  assert.ok(crashes === ROUNDS);
});
