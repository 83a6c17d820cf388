/**
 * bench/store-scale: what the CA's costs do as its store grows. For the folder store and
 * PostgreSQL, with N certificates already recorded (BENCH_STORE_N, default "10000,100000";
 * BENCH_STORE_MAX=1000000 adds 1M), each measured on one store grown step by step:
 *
 *   issue        Authority.issueClient, one certificate per call and transaction (what `ca serve /sign`
 *                ends in), public key given, BENCH_STORE_ISSUE (default 100) calls: certificates per second
 *   list --team  listCertificates(store, { team }) (src/ca/list.ts, what `mcp-mtls list --team X` runs),
 *                a team that 1% of the certificates carry: median of 3, ms
 *   inspect      store.readIssued(serial) + inspectCertificate (what `mcp-mtls inspect SERIAL` runs after
 *                Authority.open), serials of really signed certificates: median of 50, ms
 *   crl          writeCrls (src/ca/revocation.ts, `mcp-mtls crl`), 100 revocations (fixed: the CRL's size
 *                stays the same, only the store grows): median of 3, ms
 *
 * Each figure is printed with its ratio to the same figure at the first N of the run (10k by
 * default): the target is issue and lookups within 2x from 10k to 1M.
 *
 * How the store is filled (signing N real certificates would take the whole run): 200
 * certificates are signed for real (Authority.issueClients, through the store), and carry the team
 * the list looks for and the serials inspect looks up; the rest are fillers with distinct random
 * serials whose record is a realistic IssuedRecord (1% in the listed team, 100 revoked) and whose
 * stored certificate is a copy of a real certificate's DER:
 *   - PostgreSQL: through the store's own record API (StoreTransaction.commitIssued, 2,000 per
 *     transaction; revocations with commitRevocation), so the rows and indexes are the real ones;
 *   - folder store: written in the store's own layout (issued/<serial>.crt in PEM, one JSON line
 *     per record in index.jsonl) with plain writes, without the per-certificate fsync and journal
 *     of commitIssued (the bulk fill only; everything measured goes through the store).
 * The folder store then holds N files in issued/ (about 4 KB of disk each: 1M is ~4 GB) and an
 * index.jsonl of ~400 bytes per certificate, which every `list`, revocation and CRL reads whole.
 *
 * `npm run bench:store-scale`; BENCH_STORE_N=1000,5000 BENCH_STORE_ISSUE=20 is the smoke run.
 * PostgreSQL is measured when a private cluster starts (test/support/postgres.ts, or
 * MCP_MTLS_TEST_PG=postgres://...); BENCH_STORE_KINDS=folder measures the folder store alone.
 */
import 'reflect-metadata';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Authority } from '../src/ca/authority.js';
import { initCa } from '../src/ca/init.js';
import { inspectCertificate } from '../src/ca/inspect.js';
import { MODES } from '../src/ca/layout.js';
import { listCertificates } from '../src/ca/list.js';
import { writeCrls } from '../src/ca/revocation.js';
import type { IssuedRecord, RevokedRecord, Store } from '../src/ca/store/store.js';
import { generateKey } from '../src/x509/keys.js';
import { pemEncode } from '../src/x509/pem.js';

const MAX = Number(process.env.BENCH_STORE_MAX ?? 0);
const STEPS = (process.env.BENCH_STORE_N ?? '10000,100000').split(',').map(Number).concat(MAX > 0 ? [MAX] : []).filter((n, i, a) => n > 0 && a.indexOf(n) === i).sort((a, b) => a - b);
const ISSUE = Number(process.env.BENCH_STORE_ISSUE ?? 100);
const KINDS = (process.env.BENCH_STORE_KINDS ?? 'folder,postgres').split(',');
const REAL = 200;
const REVOKED = 100;
const TEAM = 'listed';
const YEAR = 365 * 86_400_000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const ms = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

/** a filler's record: like a real client certificate's, 1% of them in TEAM */
function fillerRecord(i: number, serial: string, now: Date): IssuedRecord {
  const id = `filler${i}`;
  return {
    op: 'issue', serial, type: 'client', principal: `spiffe://bench.test/user/${id}`, id, kind: 'user',
    teams: i % 100 === 0 ? [TEAM, `t${i % 37}`] : [`t${i % 37}`], roles: ['dev'], keyType: 'ec-p256', keySource: 'csr',
    fingerprint: crypto.createHash('sha256').update(serial).digest('hex'),
    notBefore: now.toISOString(), notAfter: new Date(now.getTime() + 30 * 86_400_000).toISOString(), issuedAt: now.toISOString(),
  };
}

interface Kind {
  readonly label: string;
  readonly ca: Authority;
  readonly store: Store;
  /** records `records` (fillers, their stored certificate a copy of `der`) and `revocations` */
  fill(records: readonly IssuedRecord[], der: Buffer, revocations: readonly RevokedRecord[]): Promise<void>;
  close(): Promise<void>;
}

function newCaDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-store-scale-'));
  initCa({ dir, trustDomain: 'bench.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
  return dir;
}

function folderKind(): Kind {
  const dir = newCaDir();
  const ca = Authority.open(dir);
  return {
    label: 'folder',
    ca,
    store: ca.store,
    async fill(records, der, revocations) {
      const pem = pemEncode('CERTIFICATE', der);
      fs.mkdirSync(path.join(dir, 'issued'), { recursive: true });
      for (const r of records) fs.writeFileSync(path.join(dir, 'issued', `${r.serial}.crt`), pem, { mode: MODES.cert });
      const lines = [...records, ...revocations].map((r) => `${JSON.stringify(r)}\n`);
      for (let i = 0; i < lines.length; i += 10_000) fs.appendFileSync(path.join(dir, 'index.jsonl'), lines.slice(i, i + 10_000).join(''), { mode: MODES.record });
    },
    close: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

async function postgresKind(url: string): Promise<Kind> {
  const mod = await import('../src/ca/store/postgres-store.js');
  await mod.migrate(url);
  const dir = newCaDir();
  const store = new mod.PostgresStore(url);
  const ca = Authority.open(dir, { store });
  return {
    label: 'postgres',
    ca,
    store,
    async fill(records, der, revocations) {
      for (let i = 0; i < records.length; i += 2000) {
        await store.transaction((tx) => tx.commitIssued(records.slice(i, i + 2000).map((record) => ({ record, der })), []));
      }
      if (revocations.length) await store.transaction(async (tx) => {
        for (const r of revocations) await tx.commitRevocation(r, { time: r.revokedAt, event: 'cert.revoke', actor: 'bench', serial: r.serial });
      });
    },
    async close() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Row {
  n: number;
  issuePerSec: number;
  listMs: number;
  listed: number;
  inspectMs: number;
  crlMs: number;
  fillSec: number;
}

async function measure(k: Kind, n: number, realSerials: readonly string[], fillSec: number): Promise<Row> {
  const spki = generateKey('ec-p256').spki;
  const t0 = performance.now();
  for (let i = 0; i < ISSUE; i++) await k.ca.issueClient({ kind: 'user', id: `issued${n}-${i}`, teams: ['sre'], roles: ['admin'], spki });
  const issuePerSec = ISSUE / ((performance.now() - t0) / 1000);
  let listed = 0;
  const lists: number[] = [];
  for (let i = 0; i < 3; i++) lists.push(await ms(async () => (listed = (await listCertificates(k.store, { team: TEAM }, new Date())).length)));
  const inspects: number[] = [];
  for (let i = 0; i < 50; i++) {
    const serial = realSerials[(i * 7) % realSerials.length] as string;
    inspects.push(await ms(async () => {
      const der = await k.store.readIssued(serial);
      if (!der) throw new Error(`inspect: ${serial} not found in the ${k.label} store`);
      const r = inspectCertificate(der, { root: k.ca.rootDer, intermediate: k.ca.intermediateDer, now: new Date() });
      if (r.serial !== serial || r.chain.status !== 'verified') throw new Error(`inspect ${serial}: ${r.serial} ${r.chain.status}`);
    }));
  }
  const crls: number[] = [];
  for (let i = 0; i < 3; i++) crls.push(await ms(() => writeCrls(k.ca)));
  return { n, issuePerSec, listMs: median(lists), listed, inspectMs: median(inspects), crlMs: median(crls), fillSec };
}

async function run(k: Kind): Promise<Row[]> {
  const real = await k.ca.issueClients(Array.from({ length: REAL }, (_, i) => ({ kind: 'user' as const, id: `real${i}`, teams: [TEAM], roles: ['admin'], spki: generateKey('ec-p256').spki })));
  const realSerials = real.map((c) => c.record.serial);
  const der = real[0]!.der;
  const rows: Row[] = [];
  let have = REAL;
  let revoked = 0;
  const now = new Date();
  for (const n of STEPS) {
    const t0 = performance.now();
    const records: IssuedRecord[] = [];
    for (let i = have; i < n; i++) records.push(fillerRecord(i, `5${crypto.randomBytes(15).toString('hex')}`, now));
    const revocations: RevokedRecord[] = records.slice(0, Math.max(0, REVOKED - revoked)).map((r) => ({ op: 'revoke', serial: r.serial, reason: 'keyCompromise', revokedAt: new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString() }));
    await k.fill(records, der, revocations);
    revoked += revocations.length;
    have = Math.max(have, n) + ISSUE; // the issue phase adds its certificates
    const row = await measure(k, n, realSerials, (performance.now() - t0) / 1000);
    rows.push(row);
    console.log(`  ${k.label} N=${n}: filled in ${row.fillSec.toFixed(1)} s; issue ${row.issuePerSec.toFixed(0)}/s, list --team ${row.listMs.toFixed(1)} ms (${row.listed} listed), inspect ${row.inspectMs.toFixed(2)} ms, crl ${row.crlMs.toFixed(1)} ms`);
  }
  return rows;
}

async function main(): Promise<void> {
  console.log(`bench/store-scale: N = ${STEPS.join(', ')} certificates in the store; ${ISSUE} issuances per step; ${os.cpus().length} cores, load ${os.loadavg()[0]?.toFixed(1)}`);
  const results: { label: string; rows: Row[] }[] = [];
  const notes: string[] = [];
  if (KINDS.includes('folder')) {
    const k = folderKind();
    try {
      results.push({ label: 'folder', rows: await run(k) });
    } finally {
      await k.close();
    }
  }
  if (KINDS.includes('postgres')) {
    let pg: { url: string; stop(): Promise<void> } | undefined;
    try {
      const { startPostgres } = await import('../test/support/postgres.js');
      pg = await startPostgres();
    } catch (e) {
      notes.push(`PostgreSQL: not measured (${(e as Error).message.split('\n')[0]})`);
    }
    if (pg) {
      const k = await postgresKind(pg.url);
      try {
        results.push({ label: 'postgres', rows: await run(k) });
      } finally {
        await k.close();
        await pg.stop();
      }
    }
  }
  const cols = ['store', 'N', 'issue/s', 'x', 'list ms', 'x', 'inspect ms', 'x', 'crl ms', 'x'];
  const w = [8, 8, 8, 5, 9, 5, 10, 5, 8, 5];
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i] ?? 0)).join('  ');
  console.log(line(cols));
  for (const { label, rows } of results) {
    const b = rows[0] as Row;
    for (const r of rows) {
      // issue: the base rate over this rate (a cost ratio like the others: 2.00 = twice as slow)
      console.log(line([label, String(r.n), r.issuePerSec.toFixed(0), (b.issuePerSec / r.issuePerSec).toFixed(2), r.listMs.toFixed(1), (r.listMs / b.listMs).toFixed(2), r.inspectMs.toFixed(2), (r.inspectMs / b.inspectMs).toFixed(2), r.crlMs.toFixed(1), (r.crlMs / b.crlMs).toFixed(2)]));
    }
  }
  for (const n of notes) console.log(n);
  console.log(`x: cost at N over cost at N=${STEPS[0]} in the same store (issue: time per certificate); target: issue and inspect within 2x from 10k to 1M`);
}

await main();
