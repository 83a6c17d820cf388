/**
 * The folder store under concurrent operators: 20 `mcp-mtls issue client` processes started
 * at once must give 20 distinct serials, 20 index entries, 20 audit lines and a store that
 * still reads back whole. Plus the crash-safety rules of the store's files, and a restore
 * (`ca import`) that refuses serials naming files outside issued/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cli, cliOk, tmpDir } from '../support/cli.js';
import { makeCa } from '../support/ca-serve.js';
import { appendLines, readJsonLines, writeFileAtomic } from '../../src/util/atomic-file.js';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { foldIndex } from '../../src/ca/list.js';
import { parseCertificate } from '../../src/x509/certificate.js';
import { isMtlsError } from '../../src/errors.js';

test('20 concurrent issue processes: distinct serials, 20 index entries, 20 audit lines', async () => {
  const dir = tmpDir();
  const pki = path.join(dir, 'pki');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  const runs = await Promise.all(
    Array.from({ length: 20 }, (_, i) => cli(['issue', 'client', '--dir', pki, '--user', `user${i}`, '--team', 'load', '--out', path.join(dir, 'out'), '--json'])),
  );
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const serials = runs.map((r) => JSON.parse(r.stdout).serial as string);
  assert.equal(new Set(serials).size, 20);

  const store = new FsStore(pki);
  const index = await store.readIndex();
  assert.equal(index.length, 20);
  assert.deepEqual(new Set(index.map((r) => r.serial)), new Set(serials));
  const audit = (await store.readAudit()).filter((e) => e.event === 'cert.issue');
  assert.equal(audit.length, 20);
  assert.deepEqual(new Set(audit.map((e) => e.serial)), new Set(serials));
  // every index entry has its certificate, and it is the one the index describes
  for (const rec of index) {
    const der = await store.readIssued(rec.serial);
    assert.ok(der, `issued/${rec.serial}.crt`);
    assert.equal(parseCertificate(der).serial, rec.serial);
  }
  assert.equal(fs.readdirSync(path.join(pki, 'issued')).filter((f) => f.endsWith('.crt')).length, 20);
  assert.equal(foldIndex(index, new Date()).filter((e) => e.status === 'valid').length, 20);
  assert.equal(fs.existsSync(path.join(pki, 'store.lock')), false, 'the lock is released');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('appendLines repairs a torn last line before appending; readers skip a torn line', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'index.jsonl');
  appendLines(file, ['{"a":1}'], 0o600);
  fs.appendFileSync(file, '{"b":'); // a crash in the middle of a write
  assert.deepEqual(readJsonLines(file), [{ a: 1 }]);
  appendLines(file, ['{"c":3}'], 0o600);
  assert.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n{"c":3}\n');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});

test('a corrupt line in the middle of the index is reported with its line number', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'index.jsonl');
  fs.writeFileSync(file, '{"a":1}\nnot json\n{"c":3}\n');
  assert.throws(() => readJsonLines(file), (e) => isMtlsError(e, 'STORE_CORRUPT') && /index\.jsonl:2/.test(e.message));
});

test('atomic writes set exact modes whatever the umask, and exclusive writes never replace', () => {
  const dir = tmpDir();
  const old = process.umask(0o077);
  try {
    writeFileAtomic(path.join(dir, 'cert.crt'), 'x', { mode: 0o644 });
  } finally {
    process.umask(old);
  }
  const permissive = process.umask(0o000);
  try {
    writeFileAtomic(path.join(dir, 'key.key'), 'secret', { mode: 0o600 });
  } finally {
    process.umask(permissive);
  }
  assert.equal(fs.statSync(path.join(dir, 'cert.crt')).mode & 0o777, 0o644);
  assert.equal(fs.statSync(path.join(dir, 'key.key')).mode & 0o777, 0o600);
  assert.throws(() => writeFileAtomic(path.join(dir, 'key.key'), 'other', { mode: 0o600, exclusive: true }), (e) => isMtlsError(e, 'OUTPUT_EXISTS'));
  assert.equal(fs.readFileSync(path.join(dir, 'key.key'), 'utf8'), 'secret');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['cert.crt', 'key.key'], 'no temporary files left');
});

test('CA folder modes: keys 0400 in a 0700 folder, certificates 0644', async () => {
  const dir = tmpDir();
  const pki = path.join(dir, 'pki');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  const mode = (f: string) => fs.statSync(path.join(pki, f)).mode & 0o777;
  assert.equal(mode('private'), 0o700);
  assert.equal(mode('private/root.key'), 0o400);
  assert.equal(mode('private/intermediate.key'), 0o400);
  assert.equal(mode('root.crt'), 0o644);
  assert.equal(mode('intermediate.crt'), 0o644);
  assert.deepEqual(fs.readdirSync(pki).filter((f) => f.startsWith('.')), [], 'no staging folder left');
});

test('ca import refuses a serial that would name a file outside issued/ (and writes nothing)', async () => {
  const t = makeCa();
  const root = fs.readFileSync(path.join(t.dir, 'root.crt'));
  const store = new FsStore(t.dir);
  const evil = { index: [], issued: [{ serial: '../root', der: Buffer.from('x') }], audit: [], crls: {}, tokens: [] };
  await assert.rejects(store.restore(evil as never, true), (e) => isMtlsError(e, 'STORE_CORRUPT'));
  assert.deepEqual(fs.readFileSync(path.join(t.dir, 'root.crt')), root, 'root.crt untouched');
});
