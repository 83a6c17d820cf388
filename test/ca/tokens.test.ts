/**
 * Enrollment tokens (src/ca/tokens.ts): what an enrollment costs the store beside the issuance
 * it ends in (#24: POST /sign against in-process issuance), and the token directory of a
 * long-running server under a burst of enrollments.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { MemoryStore } from '../../src/ca/store/memory-store.js';
import { migrate, PostgresStore } from '../../src/ca/store/postgres-store.js';
import type { Store } from '../../src/ca/store/store.js';
import { createEnrollmentToken, enrollWithToken, tokenHash, TokenDirectory, TokenRefused } from '../../src/ca/tokens.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { tmpDir } from '../support/cli.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

const YEAR = 365 * 86_400_000;

let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

function newCa(store?: Store): Authority {
  const dir = path.join(tmpDir('tokens-'), 'pki');
  initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
  return Authority.open(dir, store ? { store } : {});
}

/** calls of `obj[name]` while `fn` runs (the real function still runs: a counter, not a stand-in) */
async function counting<T extends object>(obj: T, name: keyof T & string, fn: () => Promise<unknown>, filter: (args: unknown[]) => boolean = () => true): Promise<number> {
  const orig = obj[name] as unknown as (...a: unknown[]) => unknown;
  let n = 0;
  (obj as Record<string, unknown>)[name] = function (this: unknown, ...a: unknown[]) {
    if (filter(a)) n++;
    return orig.apply(this, a);
  };
  try {
    await fn();
  } finally {
    (obj as Record<string, unknown>)[name] = orig;
  }
  return n;
}

const tokenFor = (ca: Authority, id: string) => createEnrollmentToken(ca, { kind: 'service', id, teams: [], roles: [], ttlMs: 600_000 });

test('folder store: an enrollment costs two fsyncs over the issuance it ends in (its use file, written with the journal, and tokens-used/), whatever the number of tokens; its token.use line goes with cert.issue', async () => {
  const ca = newCa();
  const spki = generateKey('ec-p256').spki;
  await ca.issueClient({ kind: 'user', id: 'warm', teams: [], roles: [], spki });
  const issuance = await counting(fs, 'fsyncSync', () => ca.issueClient({ kind: 'user', id: 'alice', teams: [], roles: [], spki }));
  const secrets = [(await tokenFor(ca, 'bot0')).secret, (await tokenFor(ca, 'bot1')).secret];
  for (let i = 2; i < 40; i++) await tokenFor(ca, `bot${i}`); // outstanding: a use must not write them all again
  const csr = createCsr(generateKey('ec-p256'), 'bot');
  await enrollWithToken(ca, secrets[0] as string, csr);
  let bytes = 0;
  const write = fs.writeFileSync;
  (fs as { writeFileSync: typeof fs.writeFileSync }).writeFileSync = ((file: fs.PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]) => {
    bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    return (write as (...a: unknown[]) => void)(file, data, ...rest);
  }) as typeof fs.writeFileSync;
  let enrollment: number;
  try {
    enrollment = await counting(fs, 'fsyncSync', () => enrollWithToken(ca, secrets[1] as string, csr));
  } finally {
    fs.writeFileSync = write;
  }
  // tokens.json is not written: a use is a small file of its own (before, tokens.json was written
  // whole: ~18 KB here with 40 tokens, ~1.8 MB with 4,000)
  assert.ok(bytes < 8192, `an enrollment wrote ${bytes} bytes`);
  assert.equal(enrollment, issuance + 2, `fsyncs: issuance ${issuance}, enrollment ${enrollment}`);
  const audit = await ca.store.readAudit();
  const use = audit.findIndex((e) => e.event === 'token.use' && e.principal === 'spiffe://acme.test/service/bot1');
  assert.ok(use >= 0, 'token.use is audited');
  assert.equal(audit[use + 1]?.event, 'cert.issue', 'right before its certificate');
  assert.equal(audit[use + 1]?.serial, audit[use]?.serial);
  // still once: the token file says used, and a second enrollment with another key is refused
  assert.equal((await ca.store.readTokens()).filter((t) => t.usedAt !== undefined).length, 2);
  await assert.rejects(enrollWithToken(ca, secrets[1] as string, createCsr(generateKey('ec-p256'), 'other')), (e) => e instanceof TokenRefused && e.reason === 'used');
});

test('folder store: a token consumed in a transaction that fails before the issuance commits stays usable; one consumed without an issuance is written at the end', async () => {
  const ca = newCa();
  const t = await tokenFor(ca, 'bot');
  await assert.rejects(
    ca.store.transaction(async (tx) => {
      assert.ok('token' in (await tx.consumeToken(t.token.hash, ca.now())));
      throw new Error('refused after the consume');
    }),
    /refused after the consume/,
  );
  assert.equal((await ca.store.readTokens())[0]?.usedAt, undefined, 'nothing written');
  assert.ok('token' in (await ca.store.transaction((tx) => tx.consumeToken(t.token.hash, ca.now()))));
  assert.notEqual((await ca.store.readTokens())[0]?.usedAt, undefined, 'written at the end of the transaction');
  assert.deepEqual(await ca.store.transaction((tx) => tx.consumeToken(t.token.hash, ca.now())), { refused: 'used' });
});

test('PostgreSQL store: an enrollment costs one statement over the issuance it ends in (the token UPDATE), its token.use event goes in the issuance statement', async () => {
  const url = await server.newDatabase();
  await migrate(url);
  const store = new PostgresStore(url);
  try {
    const ca = newCa(store);
    const spki = generateKey('ec-p256').spki;
    await ca.issueClient({ kind: 'user', id: 'warm', teams: [], roles: [], spki });
    const issuance = await counting(pg.Client.prototype, 'query', () => ca.issueClient({ kind: 'user', id: 'alice', teams: [], roles: [], spki }));
    const secrets = [(await tokenFor(ca, 'bot0')).secret, (await tokenFor(ca, 'bot1')).secret];
  for (let i = 2; i < 40; i++) await tokenFor(ca, `bot${i}`); // outstanding: a use must not write them all again
    const csr = createCsr(generateKey('ec-p256'), 'bot');
    const directory = new TokenDirectory(store);
    await enrollWithToken(ca, secrets[0] as string, csr, directory);
    const enrollment = await counting(pg.Client.prototype, 'query', () => enrollWithToken(ca, secrets[1] as string, csr, directory));
    assert.equal(enrollment, issuance + 1, `statements: issuance ${issuance}, enrollment ${enrollment}`);
    const audit = await store.readAudit();
    const use = audit.findIndex((e) => e.event === 'token.use' && e.principal === 'spiffe://acme.test/service/bot1');
    assert.equal(audit[use + 1]?.event, 'cert.issue');
  } finally {
    await store.close();
  }
});

test('token directory: a burst of enrollments right after a start reads the tokens once, not once more a second later; a token created during that read is still found', async () => {
  const store = new MemoryStore();
  const ca = newCa(store);
  const hashes: string[] = [];
  for (let i = 0; i < 8; i++) hashes.push(tokenHash((await tokenFor(ca, `bot${i}`)).secret));
  const directory = new TokenDirectory(store);
  const started = Date.now();
  const reads = await counting(store, 'readTokens', async () => {
    const found = await Promise.all(hashes.map((h) => directory.find(h)));
    assert.ok(found.every((t, i) => t?.hash === hashes[i]));
  });
  assert.equal(reads, 1, `the tokens were read ${reads} times for one burst`);
  assert.ok(Date.now() - started < TokenDirectory.RELOAD_MS, `the burst waited ${Date.now() - started} ms`);

  // the rule the burst must not break: a miss ends with a read that started after the request came
  const fresh = new TokenDirectory(store);
  const first = fresh.find(hashes[0] as string); // its read is in flight
  const late = await tokenFor(ca, 'late');
  const t = await fresh.find(tokenHash(late.secret));
  assert.equal(t?.id, late.token.id, 'a token made while a read was running is found');
  assert.equal((await first)?.hash, hashes[0]);
});
