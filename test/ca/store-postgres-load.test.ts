/**
 * Two CA processes sharing one PostgreSQL database, as two `ca serve` replicas do: 1,000
 * issuances at once through two separate store instances (two pools, no shared memory)
 * give 1,000 distinct serials, 1,000 index records and 1,000 audit lines. Prints the
 * rate with one and with two instances (public keys given, as from CSRs).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { MemoryStore } from '../../src/ca/store/memory-store.js';
import { migrate, PostgresStore } from '../../src/ca/store/postgres-store.js';
import { generateKey } from '../../src/x509/keys.js';
import { tmpDir } from '../support/cli.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

const N = Number(process.env.STORE_LOAD_N ?? 1000);
let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

async function issueConcurrently(instances: number, dir: string): Promise<{ rate: number; serials: string[]; url: string }> {
  const url = await server.newDatabase();
  await migrate(url);
  const stores = Array.from({ length: instances }, () => new PostgresStore(url));
  try {
    const cas = stores.map((store) => Authority.open(dir, { store }));
    for (const ca of cas) await ca.unlock(); // load the key before the clock starts
    const spki = generateKey('ec-p256').spki;
    const started = performance.now();
    const issued = await Promise.all(Array.from({ length: N }, (_, i) => cas[i % instances]!.issueClient({ kind: 'service', id: `agent-${i}`, teams: ['load'], roles: [], spki })));
    const seconds = (performance.now() - started) / 1000;
    return { rate: N / seconds, serials: issued.map((c) => c.record.serial), url };
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

test(`${N} concurrent issuances from two store instances on one database: no duplicate serial, nothing lost`, async (t) => {
  const dir = tmpDir('mcp-mtls-load-');
  initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * 365 * 86400_000, intermediateTtlMs: 5 * 365 * 86400_000 });
  // baseline in the same run: the issuance engine with no store I/O
  const mem = Authority.open(dir, { store: new MemoryStore() });
  await mem.unlock();
  const spki = generateKey('ec-p256').spki;
  const started = performance.now();
  await Promise.all(Array.from({ length: N }, (_, i) => mem.issueClient({ kind: 'service', id: `agent-${i}`, teams: ['load'], roles: [], spki })));
  const memRate = N / ((performance.now() - started) / 1000);
  const one = await issueConcurrently(1, dir);
  const two = await issueConcurrently(2, dir);
  t.diagnostic(`${N} concurrent issuances: memory store ${memRate.toFixed(0)} certs/s; PostgreSQL ${one.rate.toFixed(0)} certs/s with 1 instance (${(one.rate / memRate).toFixed(2)}x memory), ${two.rate.toFixed(0)} certs/s with 2 instances in one process (${(two.rate / one.rate).toFixed(2)}x one)`);
  assert.equal(new Set(two.serials).size, N);
  const reader = new PostgresStore(two.url);
  try {
    const index = await reader.readIndex();
    assert.equal(index.length, N);
    assert.deepEqual(new Set(index.map((r) => r.serial)), new Set(two.serials));
    const audit = (await reader.readAudit()).filter((e) => e.event === 'cert.issue');
    assert.equal(audit.length, N);
    assert.equal(new Set(audit.map((e) => e.serial)).size, N);
    // the order is stable: two reads agree
    assert.deepEqual((await reader.readIndex()).map((r) => r.serial), index.map((r) => r.serial));
  } finally {
    await reader.close();
  }
});
