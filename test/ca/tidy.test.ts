/**
 * `mcp-mtls tidy` through the real CLI on a folder CA (the store contract runs the rules on every
 * store): counts, --dry-run, --json, and a kill -9 at each point of its commit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, cli, cliOk } from '../support/cli.js';
import { makePki } from '../support/pki.js';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { Authority } from '../../src/ca/authority.js';
import { tidyIndex } from '../../src/ca/tidy.js';
import { isMtlsError } from '../../src/errors.js';

interface Report {
  dryRun: boolean;
  removed: { expired: number; superseded: number; revocations: number };
  serials: string[];
  recordsBefore: number;
  recordsAfter: number;
}

async function waitUntil(t: number): Promise<void> {
  const wait = t + 1500 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** Waits (by the clock, generously) until every certificate of `pki` expired more than `ms` ago. */
async function waitExpired(pki: string, ms: number): Promise<void> {
  const last = Math.max(...(await new FsStore(pki).readIndex()).filter((r) => r.op === 'issue').map((r) => Date.parse((r as { notAfter: string }).notAfter)));
  const wait = last + ms + 1500 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

test('tidy: --dry-run says, the run removes expired and renewed records (counts, --json), the valid ones stay, and a second run has nothing to do', async () => {
  const pki = await makePki();
  const a = await pki.issue(['issue', 'client', '--user', 'alice', '--ttl', '1s']);
  const b = await pki.issue(['issue', 'client', '--user', 'bob', '--ttl', '1s']);
  const b2 = await cliOk<{ serial: string }>(['renew', b.serial, '--dir', pki.pki, '--ttl', '1s', '--out', path.join(pki.base, 'renewed'), '--json']);
  await cliOk(['revoke', a.serial, '--dir', pki.pki, '--reason', 'keyCompromise']);
  const keep = await pki.issue(['issue', 'client', '--user', 'carol']);
  await waitUntil(Math.max(Date.parse(a.notAfter), Date.parse(b.notAfter), Date.parse((b2 as unknown as { notAfter: string }).notAfter)) + 1000); // carol's lasts 24 h
  const args = ['tidy', '--dir', pki.pki, '--older-than', '1s'];
  const dry = await cliOk<Report>([...args, '--dry-run', '--json']);
  assert.equal(dry.dryRun, true);
  assert.deepEqual(dry.removed, { expired: 2, superseded: 1, revocations: 1 });
  assert.equal((await new FsStore(pki.pki).readIndex()).length, 5, 'the dry run removed nothing');
  const human = await cliOk<string>(args);
  assert.match(human, /^Removed 3 certificates: 2 expired, 1 superseded \(renewed\), 1 revocation record\.$/m);
  for (const s of [a.serial, b.serial, b2.serial]) assert.ok(human.includes(s), `${s} named`);
  assert.match(human, /Index: 5 records before, 1 now\./);
  const list = await cliOk<{ certificates: { serial: string }[] }>(['list', '--dir', pki.pki, '--json']);
  assert.deepEqual(list.certificates.map((c) => c.serial), [keep.serial]);
  assert.deepEqual(fs.readdirSync(path.join(pki.pki, 'issued')), [`${keep.serial}.crt`]);
  const again = await cliOk<Report>([...args, '--json']);
  assert.deepEqual(again.serials, []);
  assert.match(await cliOk<string>(args), /^Nothing to remove/);
  const bad = await cli(['tidy', '--dir', pki.pki, '--older-than', 'soon']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /invalid --older-than "soon"/);
});

test('tidy: a kill -9 before the index is rewritten changes nothing; after it, the next operation finishes the removal', async () => {
  for (const [point, removed] of [['tidy-after-journal', false], ['tidy-after-index', true]] as const) {
    const pki = await makePki();
    const a = await pki.issue(['issue', 'client', '--user', 'alice', '--ttl', '1s']);
    await waitExpired(pki.pki, 1000);
    const code = await new Promise<string | number | null>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'tidy', '--dir', pki.pki, '--older-than', '1s'], { stdio: 'ignore', env: { ...process.env, MCP_MTLS_CRASH_AT: point } });
      child.once('exit', (c, signal) => resolve(signal ?? c));
    });
    assert.equal(code, 'SIGKILL', `died at ${point}`);
    assert.ok(fs.existsSync(path.join(pki.pki, 'tidy-pending.json')), 'the journal survives');
    const listed = (await new FsStore(pki.pki).readIndex()).some((r) => r.serial === a.serial);
    assert.equal(listed, !removed, `${point}: the index ${removed ? 'no longer lists' : 'still lists'} it`);
    await cliOk(['issue', 'client', '--dir', pki.pki, '--user', 'next', '--out', path.join(pki.base, 'next')]); // any transaction recovers
    assert.equal(fs.existsSync(path.join(pki.pki, 'tidy-pending.json')), false);
    assert.equal(fs.existsSync(path.join(pki.pki, 'issued', `${a.serial}.crt`)), !removed, 'the file follows the index');
    const audit = (await new FsStore(pki.pki).readAudit()).filter((e) => e.event === 'ca.tidy');
    assert.equal(audit.length, removed ? 1 : 0);
    // the serial is retired in both cases (retired before the commit point)
    assert.equal(await new FsStore(pki.pki).transaction((tx) => tx.serialExists(a.serial)), true);
    if (!removed) assert.equal((await cliOk<Report>(['tidy', '--dir', pki.pki, '--older-than', '1s', '--json'])).serials[0], a.serial, 'a later run does it');
  }
});

test('revoke of a serial tidy removed says so and names the renewal still in the index (revoke that one), instead of "no certificate with serial ... was issued"', async () => {
  const pki = await makePki();
  const a = await pki.issue(['issue', 'client', '--user', 'alice', '--ttl', '3s']);
  const a2 = await cliOk<{ serial: string }>(['renew', a.serial, '--dir', pki.pki, '--out', path.join(pki.base, 'renewed'), '--json']); // 24 h, same chain
  await waitUntil(Date.parse(a.notAfter) + 1000);
  const tidied = await cliOk<Report>(['tidy', '--dir', pki.pki, '--older-than', '1s', '--json']);
  assert.deepEqual(tidied.serials, [a.serial], 'the expired predecessor goes, its valid renewal stays');
  const r = await cli(['revoke', a.serial, '--dir', pki.pki, '--reason', 'keyCompromise']);
  assert.notEqual(r.code, 0, r.stdout);
  assert.doesNotMatch(r.stderr, /no certificate with serial .* was issued/);
  assert.match(r.stderr, new RegExp(`certificate ${a.serial} was issued by this CA, but its record is no longer in the index \\(\`mcp-mtls tidy\` removed it after it expired\\)`));
  assert.match(r.stderr, new RegExp(`it was renewed as ${a2.serial}, which is still in the index: revoke ${a2.serial}`));
  // an unknown serial keeps the plain answer
  const unknown = await cli(['revoke', 'abcdef', '--dir', pki.pki, '--reason', 'keyCompromise']);
  assert.match(unknown.stderr, /no certificate with serial abcdef was issued/);
});

test('tidyIndex (the API) refuses a retention that is not a duration: BAD_DURATION, not a RangeError or a silent run', async () => {
  const pki = await makePki();
  const ca = Authority.open(pki.pki);
  try {
    for (const olderThanMs of [Number.NaN, -1, Number.POSITIVE_INFINITY, 1.5e308]) {
      await assert.rejects(tidyIndex(ca, { olderThanMs }), (e) => isMtlsError(e, 'BAD_DURATION') && /--older-than|retention/.test(e.message), String(olderThanMs));
    }
    assert.equal((await tidyIndex(ca, { olderThanMs: 0, dryRun: true })).serials.length, 0);
  } finally {
    await ca.store.close();
  }
});
