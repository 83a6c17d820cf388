/**
 * The Store contract, one suite for every store (folder, memory, PostgreSQL): run by
 * test/ca/store-contract.test.ts. `open` gives a fresh, empty store for a CA folder each time
 * it is called; `second` (database stores) gives another instance on the SAME state, as a
 * second CA process on another host would have.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import { buildCrl } from '../../src/ca/crl-signing.js';
import { initCa } from '../../src/ca/init.js';
import { revokeCertificate, writeCrls } from '../../src/ca/revocation.js';
import { renewCertificate } from '../../src/ca/renewal.js';
import { tidyIndex } from '../../src/ca/tidy.js';
import { matchesQuery, type EnrollmentToken, type Store } from '../../src/ca/store/store.js';
import { isMtlsError } from '../../src/errors.js';
import { parseCrl } from '../../src/x509/crl.js';
import { createSigner, generateKey } from '../../src/x509/keys.js';
import { tmpDir } from './cli.js';

export interface ContractTarget {
  readonly name: string;
  /** a fresh, empty store for the CA in `dir` */
  open(dir: string): Promise<Store>;
  /** another store instance on the same state as `store` (another process), when the store can have one */
  second?(store: Store, dir: string): Promise<Store>;
  /** a transaction that throws leaves nothing behind (database stores; the folder store writes as it goes) */
  readonly rollsBack?: boolean;
}

function newCa(): string {
  const dir = tmpDir('mcp-mtls-contract-');
  initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * 365 * 86400_000, intermediateTtlMs: 5 * 365 * 86400_000 });
  return dir;
}

function token(over: Partial<EnrollmentToken> = {}): EnrollmentToken {
  const secret = crypto.randomBytes(32).toString('base64url');
  const now = Date.now();
  return {
    id: crypto.randomBytes(8).toString('hex'),
    hash: crypto.createHash('sha256').update(secret).digest('hex'),
    claims: { id: 'alice', kind: 'user', teams: ['sre'], roles: ['admin'], email: 'alice@acme.test' },
    certTtl: '24h',
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3600_000).toISOString(),
    createdBy: 'tester',
    ...over,
  };
}

const user = (id: string) => ({ kind: 'user' as const, id, teams: ['sre'], roles: [] });

export function storeContract(t: ContractTarget): void {
  const stores: Store[] = [];
  let dir = '';
  const open = async () => {
    dir = newCa();
    const s = await t.open(dir);
    stores.push(s);
    return s;
  };

  test(`${t.name}: issue, revoke and audit read back in write order`, async (ctx) => {
    ctx.after(() => Promise.all(stores.splice(0).map((s) => s.close())));
    const store = await open();
    const ca = Authority.open(dir, { store });
    const issued = await ca.issueClients([user('a1'), user('a2'), user('a3')]);
    const one = await ca.issueServer({ dns: ['mcp.acme.test'], ips: ['127.0.0.1'] });
    const r = await revokeCertificate(ca, issued[1]!.record.serial, 'keyCompromise');
    const index = await store.readIndex();
    assert.deepEqual(
      index.map((x) => `${x.op}:${x.serial}`),
      [...issued.map((i) => `issue:${i.record.serial}`), `issue:${one.record.serial}`, `revoke:${issued[1]!.record.serial}`],
    );
    assert.deepEqual(index[0], issued[0]!.record, 'the record reads back field for field');
    assert.deepEqual(index[4], r.record);
    for (const i of [...issued, one]) assert.deepEqual(await store.readIssued(i.record.serial), i.der);
    assert.equal(await store.readIssued('00ff00ff'), undefined);
    assert.equal(await store.readIssued('../../etc/passwd'), undefined);
    const audit = await store.readAudit();
    assert.deepEqual(audit.filter((e) => e.event === 'cert.issue').map((e) => e.serial), [...issued, one].map((i) => i.record.serial));
    assert.equal(audit.at(-1)?.event, 'cert.revoke');
    await store.transaction(async (tx) => {
      assert.equal(await tx.serialExists(one.record.serial), true);
      assert.equal(await tx.serialExists('0123456789abcdef'), false);
      assert.equal((await tx.readIndex()).length, 5);
    });
    // the CRL the revocation signed lists the certificate
    const crl = parseCrl((await store.readCrl('intermediate'))!);
    assert.deepEqual(crl.entries.map((e) => e.serial), [issued[1]!.record.serial]);
    assert.equal(String(crl.number), r.crlNumber);
    await assert.rejects(revokeCertificate(ca, issued[1]!.record.serial, 'superseded'), (e) => isMtlsError(e, 'ALREADY_REVOKED'));
    // a serial taken is refused, never overwritten
    await assert.rejects(
      store.transaction((tx) => tx.commitIssued([{ record: { ...issued[0]!.record, id: 'intruder' }, der: one.der }], [])),
      (e) => isMtlsError(e, 'SERIAL_TAKEN'),
    );
    assert.deepEqual(await store.readIssued(issued[0]!.record.serial), issued[0]!.der);
    assert.equal((await store.readIndex()).length, 5);
  });

  test(`${t.name}: lookups (serial, successor, delegations, active revocations, list filters) agree with the whole index, across instances`, async (ctx) => {
    ctx.after(() => Promise.all(stores.splice(0).map((s) => s.close())));
    const store = await open();
    const other = t.second ? await t.second(store, dir) : store;
    if (other !== store) stores.push(other);
    const ca = Authority.open(dir, { store });
    const H = 3600_000;
    const a = await ca.issueClient({ kind: 'user', id: 'alice', teams: ['sre', 'web'], roles: ['admin'] });
    const b = await ca.issueClient({ kind: 'service', id: 'build', teams: ['web'], roles: [] });
    const short = await ca.issueClient({ kind: 'user', id: 'carol', teams: ['sre'], roles: ['dev'], ttlMs: H });
    const srv = await ca.issueServer({ dns: ['mcp.acme.test'], ips: [] });
    const a2 = (await renewCertificate(ca, a.record.serial)).issued;
    const d = await ca.issueClient({ kind: 'service', id: 'agent', teams: [], roles: [], delegatedFrom: a2.record.serial } as Parameters<typeof ca.issueClient>[0]);
    await revokeCertificate(ca, short.record.serial, 'keyCompromise', 'tester');
    // lookups through the other instance (another process) see what this one wrote
    assert.deepEqual(await other.lookup(a.record.serial), { issued: a.record });
    const rs = await other.lookup(short.record.serial);
    assert.deepEqual(rs.issued, short.record);
    assert.equal(rs.revoked?.reason, 'keyCompromise');
    assert.deepEqual(await other.lookup('00ff00ff'), {});
    assert.equal((await other.successorOf(a.record.serial))?.serial, a2.record.serial);
    assert.equal(await other.successorOf(a2.record.serial), undefined);
    assert.deepEqual((await other.delegatedFrom(a2.record.serial)).map((r) => r.serial), [d.record.serial]);
    assert.deepEqual(await other.delegatedFrom(a.record.serial), []);
    assert.deepEqual((await other.activeRevocations(new Date())).map((r) => r.serial), [short.record.serial]);
    assert.deepEqual(await other.activeRevocations(new Date(Date.now() + 2 * H)), [], 'an expired certificate leaves the CRL');
    // list filters: the same as filtering the whole index, in the order recorded
    const later = new Date(Date.now() + 2 * H);
    const index = await other.readIndex();
    for (const now of [new Date(), later]) {
      for (const q of [{}, { team: 'sre' }, { team: 'web' }, { team: 'none' }, { role: 'admin' }, { user: 'alice' }, { service: 'build' }, { user: 'build' }, { type: 'server' as const }, { status: 'revoked' as const }, { status: 'valid' as const }, { status: 'expired' as const }, { team: 'sre', status: 'valid' as const }, { team: 'web', role: 'admin', user: 'alice' }]) {
        const expected = index
          .filter((r) => r.op === 'issue')
          .map((r) => r as import('../../src/ca/store/store.js').IssuedRecord)
          .filter((r) => matchesQuery(r, index.find((x) => x.op === 'revoke' && x.serial === r.serial) as never, q, now))
          .map((r) => r.serial);
        for (const s of [store, other]) assert.deepEqual((await s.listIssued({ ...q, now })).map((e) => e.issued.serial), expected, `${JSON.stringify(q)} at ${now.toISOString()}`);
      }
    }
    assert.deepEqual((await store.listIssued({ status: 'revoked' }))[0]?.revoked?.serial, short.record.serial);
    assert.ok(index.some((r) => r.serial === srv.record.serial) && index.some((r) => r.serial === b.record.serial));
    // inside a transaction: what it wrote itself, before it commits
    await other.transaction(async (tx) => {
      const now = new Date();
      await tx.commitRevocation({ op: 'revoke', serial: b.record.serial, reason: 'superseded', revokedAt: now.toISOString() }, { time: now.toISOString(), event: 'cert.revoke', actor: 'tester', serial: b.record.serial });
      assert.equal((await tx.lookup(b.record.serial)).revoked?.reason, 'superseded');
      assert.deepEqual((await tx.activeRevocations(now)).map((r) => r.serial), [short.record.serial, b.record.serial]);
    });
    assert.equal((await store.lookup(b.record.serial)).revoked?.reason, 'superseded', 'and the first instance sees it committed');
    // records tidy removed are gone from every lookup (the folder store reads its rewritten index again)
    const at = new Date(Date.now() + 2 * H); // carol's 1 h certificate expired an hour ago, the rest are valid
    const tidied = await tidyIndex(Authority.open(dir, { store: other, now: () => at }), { olderThanMs: H / 2 });
    assert.deepEqual(tidied.serials, [short.record.serial]);
    assert.deepEqual(await store.lookup(short.record.serial), {});
    assert.equal((await store.listIssued({ team: 'sre' })).some((e) => e.issued.serial === short.record.serial), false);
    assert.deepEqual((await store.listIssued({ team: 'sre' })).map((e) => e.issued.serial), [a.record.serial, a2.record.serial]);
  });

  test(`${t.name}: CRLs: write and read, nextCrlNumber strictly increasing`, async (ctx) => {
    ctx.after(() => Promise.all(stores.splice(0).map((s) => s.close())));
    const store = await open();
    const ca = Authority.open(dir, { store });
    const key = generateKey('ec-p256');
    const signer = createSigner(crypto.createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' }));
    const issuer = { subjectName: ca.intermediate.subjectName, keyId: Buffer.alloc(20, 1) };
    const numbers: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      await store.transaction(async (tx) => {
        const n = await tx.nextCrlNumber('intermediate');
        numbers.push(n);
        await tx.writeCrl('intermediate', buildCrl(issuer, signer, { number: n, now: new Date(), nextUpdate: new Date(Date.now() + 86400_000), entries: [] }));
      });
    }
    for (let i = 1; i < numbers.length; i++) assert.ok(numbers[i]! > numbers[i - 1]!, `${numbers.join(' < ')}`);
    assert.equal(parseCrl((await store.readCrl('intermediate'))!).number, numbers.at(-1));
    // the root's numbers are its own
    const rootNext = await store.transaction((tx) => tx.nextCrlNumber('root'));
    assert.ok(rootNext >= 1n);
    const result = await writeCrls(ca, {});
    assert.ok(BigInt(result.intermediate.state.number) > numbers.at(-1)!);
    assert.equal(result.root.signed, true);
  });

  test(`${t.name}: enrollment tokens: consumed once; used, expired and unknown refused`, async (ctx) => {
    ctx.after(() => Promise.all(stores.splice(0).map((s) => s.close())));
    const store = await open();
    const a = token();
    const expired = token({ expiresAt: new Date(Date.now() - 1000).toISOString() });
    const plain = token({ claims: { id: 'build-bot', kind: 'service', teams: [], roles: [] } });
    const { certTtl: _ttl, ...noTtl } = plain;
    await store.transaction(async (tx) => {
      await tx.putToken(a);
      await tx.putToken(expired);
      await tx.putToken(noTtl);
    });
    await assert.rejects(store.transaction((tx) => tx.putToken({ ...token(), hash: a.hash })), (e) => isMtlsError(e));
    assert.deepEqual(await store.readTokens(), [a, expired, noTtl]);
    const now = new Date();
    assert.deepEqual(await store.transaction((tx) => tx.consumeToken(a.hash, now)), { token: a });
    assert.deepEqual(await store.transaction((tx) => tx.consumeToken(a.hash, new Date())), { refused: 'used' });
    assert.deepEqual(await store.transaction((tx) => tx.consumeToken(expired.hash, new Date())), { refused: 'expired' });
    assert.deepEqual(await store.transaction((tx) => tx.consumeToken('0'.repeat(64), new Date())), { refused: 'unknown' });
    // expiry is judged at `now`, not by the clock
    assert.deepEqual(await store.transaction((tx) => tx.consumeToken(noTtl.hash, new Date(Date.parse(noTtl.expiresAt) + 1))), { refused: 'expired' });
    assert.deepEqual(await store.transaction((tx) => tx.consumeToken(noTtl.hash, new Date())), { token: noTtl });
    const read = await store.readTokens();
    assert.equal(read[0]!.usedAt, now.toISOString());
    assert.equal(read[1]!.usedAt, undefined);
    // a failed transaction consumes nothing
    const b = token();
    await store.transaction((tx) => tx.putToken(b));
    await assert.rejects(
      store.transaction(async (tx) => {
        assert.ok('token' in (await tx.consumeToken(b.hash, new Date())));
        throw new Error('enrollment failed after the consume');
      }),
      /enrollment failed/,
    );
    if (t.rollsBack) assert.ok('token' in (await store.transaction((tx) => tx.consumeToken(b.hash, new Date()))), 'rolled back');
    if (t.rollsBack) {
      // a statement that failed inside, even one the caller caught, fails the whole transaction
      const c = token();
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.putToken(c);
          await tx.putToken({ ...token(), hash: a.hash }).catch(() => undefined);
        }),
      );
      assert.equal((await store.readTokens()).some((x) => x.id === c.id), false, 'nothing of it committed');
    }
  });

  test(`${t.name}: 20 concurrent consumes of one token: exactly one wins`, async (ctx) => {
    ctx.after(() => Promise.all(stores.splice(0).map((s) => s.close())));
    const store = await open();
    const other = t.second ? await t.second(store, dir) : store;
    if (other !== store) stores.push(other);
    const tk = token();
    await store.transaction((tx) => tx.putToken(tk));
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).transaction((tx) => tx.consumeToken(tk.hash, new Date()))));
    assert.equal(results.filter((r) => 'token' in r).length, 1);
    assert.equal(results.filter((r) => 'refused' in r && r.refused === 'used').length, 19);
  });

  test(`${t.name}: useOnce: a key is fresh once until it expires, across instances; 20 concurrent uses: one wins`, async (ctx) => {
    ctx.after(() => Promise.all(stores.splice(0).map((s) => s.close())));
    const store = await open();
    const other = t.second ? await t.second(store, dir) : store;
    if (other !== store) stores.push(other);
    const now = new Date();
    const soon = new Date(now.getTime() + 60_000);
    assert.equal(await store.transaction((tx) => tx.useOnce('k1', soon, now)), true);
    assert.equal(await other.transaction((tx) => tx.useOnce('k1', soon, now)), false, 'the same key again, from another instance');
    assert.equal(await store.transaction((tx) => tx.useOnce('k2', soon, now)), true, 'another key is fresh');
    // past its expiry the record is forgotten (the caller refuses an expired credential itself)
    assert.equal(await store.transaction((tx) => tx.useOnce('k1', new Date(soon.getTime() + 60_000), new Date(soon.getTime() + 1))), true);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).transaction((tx) => tx.useOnce('race', soon, now))));
    assert.equal(results.filter(Boolean).length, 1);
  });

  test(`${t.name}: concurrent issuance (two store instances when the store has them): no duplicate serial, nothing lost`, async (ctx) => {
    ctx.after(() => Promise.all(stores.splice(0).map((s) => s.close())));
    const store = await open();
    const other = t.second ? await t.second(store, dir) : store;
    if (other !== store) stores.push(other);
    const cas = [Authority.open(dir, { store }), Authority.open(dir, { store: other })];
    const N = 60;
    const started = performance.now();
    const issued = await Promise.all(Array.from({ length: N }, (_, i) => cas[i % 2]!.issueClient(user(`c${i}`), {})));
    const seconds = (performance.now() - started) / 1000;
    ctx.diagnostic(`${N} certificates from 2 concurrent authorities in ${seconds.toFixed(2)} s (${(N / seconds).toFixed(0)}/s)`);
    const serials = issued.map((i) => i.record.serial);
    assert.equal(new Set(serials).size, N);
    const index = await store.readIndex();
    assert.deepEqual(new Set(index.map((r) => r.serial)), new Set(serials));
    assert.equal(index.length, N);
    // and concurrent revocations: every one in the last CRL, numbers strictly increasing
    const revoked = await Promise.all(serials.slice(0, 8).map((s, i) => revokeCertificate(cas[i % 2]!, s, 'superseded')));
    const numbers = revoked.map((r) => BigInt(r.crlNumber)).sort((a, b) => (a < b ? -1 : 1));
    assert.equal(new Set(numbers).size, 8);
    const crl = parseCrl((await store.readCrl('intermediate'))!);
    assert.equal(crl.number, numbers.at(-1));
    assert.deepEqual(new Set(crl.entries.map((e) => e.serial)), new Set(serials.slice(0, 8)));
  });

  test(`${t.name}: tidy removes expired and superseded records past the retention, keeps what a CRL or a renewal chain needs, never reuses a serial`, async (ctx) => {
    ctx.after(() => Promise.all(stores.splice(0).map((s) => s.close())));
    const store = await open();
    const ca = Authority.open(dir, { store });
    const H = 3600_000;
    const D = 24 * H;
    const a = await ca.issueClient({ ...user('a'), ttlMs: H }); // expires, never renewed
    const b = await ca.issueClient({ ...user('b'), ttlMs: H }); // renewed twice: b, b2 superseded
    const b2 = (await renewCertificate(ca, b.record.serial, { ttlMs: H })).issued;
    const b3 = (await renewCertificate(ca, b2.record.serial, { ttlMs: 10 * D })).issued;
    const c = await ca.issueClient({ ...user('c'), ttlMs: H }); // revoked, then expired: no CRL lists it
    await revokeCertificate(ca, c.record.serial, 'keyCompromise');
    const d = await ca.issueClient({ ...user('d'), ttlMs: 10 * D }); // revoked and still valid: the CRL must list it
    await revokeCertificate(ca, d.record.serial, 'keyCompromise');
    const f = await ca.issueClient({ ...user('f'), ttlMs: 10 * D }); // valid; its renewal expires first
    const f2 = (await renewCertificate(ca, f.record.serial, { ttlMs: H })).issued;
    const fresh = await ca.issueClient({ ...user('g'), ttlMs: 30 * H }); // expired, but within the retention below
    const before = await store.readIndex();
    assert.equal(before.length, 11);

    // two days later, with one day of retention: the 1 h certificates expired 47 h ago
    const at = new Date(Date.now() + 2 * D);
    const later = Authority.open(dir, { store, now: () => at });
    const dry = await tidyIndex(later, { olderThanMs: D, dryRun: true });
    assert.deepEqual(await store.readIndex(), before, 'a dry run changes nothing');
    const report = await tidyIndex(later, { olderThanMs: D });
    assert.deepEqual({ ...dry, dryRun: false }, report, 'the dry run said what the run did');
    const gone = [a, b, b2, c].map((x) => x.record.serial);
    assert.deepEqual(new Set(report.serials), new Set(gone));
    assert.deepEqual(report.removed, { expired: 2, superseded: 2, revocations: 1 });
    assert.deepEqual(report.kept, { chain: 1 }, `f2 stays while f (valid) stays: ${f2.record.serial}`);
    assert.equal(report.recordsBefore, 11);
    assert.equal(report.recordsAfter, 6);
    const after = await store.readIndex();
    assert.deepEqual(after, before.filter((r) => !gone.includes(r.serial)), 'the rest unchanged, in order');
    for (const s of gone) assert.equal(await store.readIssued(s), undefined);
    for (const x of [b3, d, f, f2, fresh]) assert.deepEqual(await store.readIssued(x.record.serial), x.der);
    assert.ok(after.some((r) => r.op === 'revoke' && r.serial === d.record.serial), 'the revocation a CRL needs stays');
    assert.equal(new Set(after.map((r) => r.serial)).has(fresh.record.serial), true, 'within the retention: kept');
    await writeCrls(later, {});
    assert.deepEqual(parseCrl((await store.readCrl('intermediate'))!).entries.map((e) => e.serial), [d.record.serial]);
    const audit = (await store.readAudit()).filter((e) => e.event === 'ca.tidy');
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0]!.removed, report.removed);
    // the serials are retired: taken for ever
    await store.transaction(async (tx) => {
      for (const s of gone) assert.equal(await tx.serialExists(s), true, `serialExists(${s}) after tidy`);
    });
    await assert.rejects(
      store.transaction((tx) => tx.commitIssued([{ record: { ...a.record, id: 'again' }, der: a.der }], [])),
      (e) => isMtlsError(e, 'SERIAL_TAKEN'),
    );
    await assert.rejects(renewCertificate(later, a.record.serial), (e) => isMtlsError(e, 'NOT_FOUND'));
    // nothing more to do: a second run removes nothing and writes no audit line
    const again = await tidyIndex(later, { olderThanMs: D });
    assert.deepEqual(again.serials, []);
    assert.equal((await store.readAudit()).filter((e) => e.event === 'ca.tidy').length, 1);
    // a retention longer than anything: nothing goes
    assert.deepEqual((await tidyIndex(later, { olderThanMs: 30 * D })).serials, []);
  });
}
