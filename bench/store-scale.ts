/**
 * bench/store-scale: what the CA's costs do as its store grows. For the folder store and
 * PostgreSQL, with N certificates already recorded (BENCH_STORE_N, default "10000,100000";
 * BENCH_STORE_MAX=1000000 adds 1M), each measured on one store grown step by step:
 *
 *   issue        Authority.issueClient, one certificate per call and transaction (what `ca serve /sign`
 *                ends in), public key given, BENCH_STORE_ISSUE (default 100) calls: certificates per second
 *   list --team  listCertificates(store, { team }) (src/ca/list.ts, what `mcp-mtls list --team X` runs),
 *                a team of 298 certificates at every N from 10k on (the same answer: the cost of finding
 *                them, not of a longer answer): median of 3, ms
 *   inspect      store.readIssued(serial) + inspectCertificate (what `mcp-mtls inspect SERIAL` runs after
 *                Authority.open), serials of really signed certificates: median of 50, ms
 *   crl          writeCrls (src/ca/revocation.ts, `mcp-mtls crl`), 100 revocations (fixed: the CRL's size
 *                stays the same, only the store grows): median of 3, ms
 *
 *   cold list,   the same list and CRL as the first call of a new process (bench/store-scale-cold.ts: what a
 *   cold crl     CLI run, `mcp-mtls list` or `mcp-mtls crl` from cron, pays; Node's start-up not counted):
 *                best of 2, ms. The folder store reads index.jsonl once per process (then only what was
 *                appended), so this is its whole-file read
 *
 * Each figure is printed with its ratio to the same figure at the first N of the run (10k by
 * default): the target is issue and lookups within 2x from 10k to 1M.
 *
 * How the store is filled (signing N real certificates would take the whole run): 200
 * certificates are signed for real (Authority.issueClients, through the store), and carry the team
 * the list looks for and the serials inspect looks up; the rest are fillers with distinct random
 * serials whose record is a realistic IssuedRecord (1% of the first 10k in the listed team, 100 revoked) and whose
 * stored certificate is a copy of a real certificate's DER, written in bulk in the store's own format:
 *   - PostgreSQL: the rows commitIssued writes (same columns, the same record JSON as fillerRecord),
 *     made by the server with one INSERT ... SELECT FROM generate_series per 100,000, then VACUUM ANALYZE
 *     (what autovacuum does after that many inserts: it also merges the GIN indexes' pending lists);
 *     the indexes are the real ones (migrations 1-6), maintained as the rows go in;
 *   - folder store: issued/<serial>.crt in PEM (32 writes in flight) and one JSON line per record in
 *     index.jsonl, appended 10,000 lines at a time, without the per-certificate fsync and journal
 *     of commitIssued (the bulk fill only; everything measured goes through the store).
 * The folder store then holds N files in issued/ (about 4 KB of disk each: 1M is ~4 GB) and an
 * index.jsonl of ~400 bytes per certificate (1M: ~400 MB), which a new process reads once.
 *
 * BENCH_STORE_MAX=1000000 adds the 1M step (about 10 minutes more on 2 cores, 4 GB of disk for the
 * folder store, ~2 GB of memory: run with NODE_OPTIONS=--max-old-space-size=6144).
 * `npm run bench:store-scale`; BENCH_STORE_N=1000,5000 BENCH_STORE_ISSUE=20 is the smoke run.
 * PostgreSQL is measured when a private cluster starts (test/support/postgres.ts, or
 * MCP_MTLS_TEST_PG=postgres://...); BENCH_STORE_KINDS=folder measures the folder store alone.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

/**
 * the listed team's fillers: 1% of those below this index (98 from 10k on), so that the list answers
 * the same 298 certificates at every N and its time is the lookup's, not the answer's size
 */
const LISTED_BELOW = 10_000;

/** a filler's record: like a real client certificate's, 1% of the first LISTED_BELOW of them in TEAM */
function fillerRecord(i: number, serial: string, now: Date): IssuedRecord {
  const id = `filler${i}`;
  return {
    op: 'issue', serial, type: 'client', principal: `spiffe://bench.test/user/${id}`, id, kind: 'user',
    teams: i % 100 === 0 && i < LISTED_BELOW ? [TEAM, `t${i % 37}`] : [`t${i % 37}`], roles: ['dev'], keyType: 'ec-p256', keySource: 'csr',
    fingerprint: crypto.createHash('sha256').update(serial).digest('hex'),
    notBefore: now.toISOString(), notAfter: new Date(now.getTime() + 30 * 86_400_000).toISOString(), issuedAt: now.toISOString(),
  };
}

interface Kind {
  readonly label: string;
  readonly ca: Authority;
  readonly store: Store;
  /** records fillers `from` to `to` - 1 (fillerRecord; their stored certificate a copy of `der`), the first `revoke` of them revoked */
  fill(from: number, to: number, der: Buffer, revoke: number, now: Date): Promise<void>;
  /** the arguments of bench/store-scale-cold.ts after `list`/`crl` for this store: the CA folder, the team, the database */
  readonly coldArgs: readonly string[];
  close(): Promise<void>;
}

const revocationOf = (serial: string, now: Date): RevokedRecord => ({ op: 'revoke', serial, reason: 'keyCompromise', revokedAt: new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString() });
const fillerSerial = () => `5${crypto.randomBytes(15).toString('hex')}`;

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
    async fill(from, to, der, revoke, now) {
      // the store's own layout, 10,000 records at a time: their files, then their index lines
      // (one append each batch), the revocations last
      const pem = pemEncode('CERTIFICATE', der);
      fs.mkdirSync(path.join(dir, 'issued'), { recursive: true });
      const revoked: RevokedRecord[] = [];
      for (let i = from; i < to; i += 10_000) {
        const records: IssuedRecord[] = [];
        for (let j = i; j < Math.min(to, i + 10_000); j++) records.push(fillerRecord(j, fillerSerial(), now));
        let next = 0; // 32 writes at a time: on this shared disk one by one took 0.15 to 4 ms a file, 32 at a time 0.2
        await Promise.all(Array.from({ length: 32 }, async () => {
          for (let r = records[next++]; r; r = records[next++]) await fs.promises.writeFile(path.join(dir, 'issued', `${r.serial}.crt`), pem, { mode: MODES.cert });
        }));
        for (const r of records.slice(0, Math.max(0, revoke - revoked.length))) revoked.push(revocationOf(r.serial, now));
        fs.appendFileSync(path.join(dir, 'index.jsonl'), records.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: MODES.record });
      }
      if (revoked.length) fs.appendFileSync(path.join(dir, 'index.jsonl'), revoked.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: MODES.record });
      // the fill's files written back before anything is measured: otherwise every fsync of the
      // measured issuances and CRLs waits behind gigabytes of the fill's dirty pages
      execFileSync('sync');
    },
    coldArgs: [dir, TEAM],
    close: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

async function postgresKind(url: string): Promise<Kind> {
  const mod = await import('../src/ca/store/postgres-store.js');
  const { default: pg } = await import('pg');
  await mod.migrate(url);

  const dir = newCaDir();
  const store = new mod.PostgresStore(url);
  const ca = Authority.open(dir, { store });
  return {
    label: 'postgres',
    ca,
    store,
    async fill(from, to, der, revoke, now) {
      // the rows the store writes (the columns commitIssued fills, the record fillerRecord builds),
      // made by the server itself: one INSERT ... SELECT per 100,000 certificates, no round trip per row
      const pool = new pg.Pool({ connectionString: url, max: 1 });
      try {
        const notAfter = new Date(now.getTime() + 30 * 86_400_000).toISOString();
        for (let i = from; i < to; i += 100_000) {
          await pool.query(
            `INSERT INTO certificates (serial, der, record, type, principal, not_after)
             SELECT serial, $3, json_build_object('op', 'issue', 'serial', serial, 'type', 'client', 'principal', 'spiffe://bench.test/user/filler' || i, 'id', 'filler' || i, 'kind', 'user',
                      'teams', CASE WHEN i % 100 = 0 AND i < $7 THEN json_build_array($4::text, 't' || (i % 37)) ELSE json_build_array('t' || (i % 37)) END, 'roles', json_build_array('dev'),
                      'keyType', 'ec-p256', 'keySource', 'csr', 'fingerprint', encode(sha256(convert_to(serial, 'UTF8')), 'hex'), 'notBefore', $5::text, 'notAfter', $6::text, 'issuedAt', $5::text),
                    'client', 'spiffe://bench.test/user/filler' || i, $6::timestamptz
             FROM (SELECT i, '5' || substr(md5(random()::text || i::text), 1, 30) AS serial FROM generate_series($1::int, $2::int - 1) AS i) AS f`,
            [i, Math.min(to, i + 100_000), der, TEAM, now.toISOString(), notAfter, LISTED_BELOW],
          );
        }
        if (revoke > 0) {
          const r = revocationOf('x', now);
          await pool.query(
            `INSERT INTO revocations (serial, record, reason, revoked_at)
             SELECT serial, json_build_object('op', 'revoke', 'serial', serial, 'reason', $2::text, 'revokedAt', $3::text), $2, $3::timestamptz
             FROM (SELECT serial FROM certificates WHERE record->>'id' LIKE 'filler%' AND serial NOT IN (SELECT serial FROM revocations) ORDER BY ord LIMIT $1) AS c`,
            [revoke, r.reason, r.revokedAt],
          );
        }
        // what autovacuum does after this many inserts: statistics, and the GIN indexes' pending
        // lists merged (until then each list --team scans its pending entries one by one)
        await pool.query('VACUUM ANALYZE certificates');
        await pool.query('VACUUM ANALYZE revocations');
      } finally {
        await pool.end();
      }
    },
    coldArgs: [dir, TEAM, url],
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
  /** a new store instance's first list --team and CRL (a CLI run: `mcp-mtls list`, `mcp-mtls crl` from cron) */
  listColdMs: number;
  crlColdMs: number;
  /** the largest resident memory of those new processes, MB */
  coldRssMb: number;
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
  // a new process's first list and CRL (a CLI run): each in a process of its own, best of 2
  const cold = (what: 'list' | 'crl') => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./store-scale-cold.ts', import.meta.url)), what, ...k.coldArgs], { encoding: 'utf8', maxBuffer: 1 << 20 });
    const r = JSON.parse(out.trim().split('\n').at(-1) as string) as { ms: number; n: number; rssMb: number };
    if (what === 'list' && r.n !== listed) throw new Error(`the new process listed ${r.n}, this one ${listed}`);
    coldRss = Math.max(coldRss, r.rssMb);
    return r.ms;
  };
  let coldRss = 0;
  const listColdMs = Math.min(cold('list'), cold('list'));
  const crlColdMs = Math.min(cold('crl'), cold('crl'));
  return { n, issuePerSec, listMs: median(lists), listed, inspectMs: median(inspects), crlMs: median(crls), listColdMs, crlColdMs, coldRssMb: coldRss, fillSec };
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
    const revoke = Math.min(Math.max(0, REVOKED - revoked), Math.max(0, n - have));
    if (n > have) await k.fill(have, n, der, revoke, now);
    revoked += revoke;
    have = Math.max(have, n) + ISSUE; // the issue phase adds its certificates
    const row = await measure(k, n, realSerials, (performance.now() - t0) / 1000);
    rows.push(row);
    console.log(`  ${k.label} N=${n}: filled in ${row.fillSec.toFixed(1)} s; issue ${row.issuePerSec.toFixed(0)}/s, list --team ${row.listMs.toFixed(1)} ms (${row.listed} listed), inspect ${row.inspectMs.toFixed(2)} ms, crl ${row.crlMs.toFixed(1)} ms; a new process's first list --team ${row.listColdMs.toFixed(0)} ms, crl ${row.crlColdMs.toFixed(0)} ms (rss ${row.coldRssMb} MB); this process's rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
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
  const cols = ['store', 'N', 'issue/s', 'x', 'list ms', 'x', 'inspect ms', 'x', 'crl ms', 'x', 'cold list', 'x', 'cold crl', 'x'];
  const w = [8, 8, 8, 5, 9, 5, 10, 5, 8, 5, 9, 6, 8, 6];
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i] ?? 0)).join('  ');
  console.log(line(cols));
  for (const { label, rows } of results) {
    const b = rows[0] as Row;
    for (const r of rows) {
      // issue: the base rate over this rate (a cost ratio like the others: 2.00 = twice as slow)
      console.log(line([label, String(r.n), r.issuePerSec.toFixed(0), (b.issuePerSec / r.issuePerSec).toFixed(2), r.listMs.toFixed(1), (r.listMs / b.listMs).toFixed(2), r.inspectMs.toFixed(2), (r.inspectMs / b.inspectMs).toFixed(2), r.crlMs.toFixed(1), (r.crlMs / b.crlMs).toFixed(2), r.listColdMs.toFixed(0), (r.listColdMs / b.listColdMs).toFixed(2), r.crlColdMs.toFixed(0), (r.crlColdMs / b.crlColdMs).toFixed(2)]));
    }
  }
  for (const n of notes) console.log(n);
  console.log(`x: cost at N over cost at N=${STEPS[0]} in the same store (issue: time per certificate); target: issue and lookups within 2x from 10k to 1M`);
  console.log('list, crl: in a process that has the store open (ca serve, the console); cold list, cold crl: a new process\'s first call (a CLI run), which in the folder store reads index.jsonl once');
}

await main();
