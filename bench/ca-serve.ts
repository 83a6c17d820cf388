/**
 * bench/ca-serve: what the online CA (`ca serve`) sustains, next to the in-process issuance
 * rate measured in the same run (Authority.issueClient for a given public key, the work every
 * request ends in). The server runs in its own process; BENCH_CLIENTS (default 8) concurrent
 * clients over keep-alive HTTPS.
 *
 *   in-process   Authority.issueClient({ spki }), BENCH_CLIENTS concurrent callers, same store kind, fresh CA
 *   POST /sign   one-time tokens (made beforehand) + a CSR each, BENCH_SECONDS as the in-process
 *                side: as many tokens as the in-process rate would use in that time and the warm-up,
 *                plus a fifth (BENCH_TOKENS sets the number; a phase that runs out early says so).
 *                Every phase, in-process included, runs BENCH_WARMUP seconds (default 3) untimed
 *                first: the server's code warm, as the in-process side's is (until #24's fourth
 *                session a route had one request per client untimed, and a 4-s phase read
 *                0.42-0.46x where warm phases give 0.5x and more). Until #24's third
 *                session the phase was a fixed 300 tokens, about 0.6 s against the in-process
 *                side's 4 s: a cold process's first half second against a warm one's average
 *                (0.36x where the equal phases give 0.51x, PostgreSQL, same machine and hour)
 *   POST /renew  mTLS, empty body (same key), one client certificate per client, BENCH_SECONDS (default 4)
 *   floor        what any /sign costs before the store, in the same run: node:https with ca serve's TLS
 *                options, the same clients, tokens' headers and CSRs; the body read, the CSR's
 *                signature verified (proof of possession), a certificate chain of the same size
 *                answered; no token, no issuance. The machine's CPU is shared by the clients, the
 *                server and PostgreSQL, so the costs add: 1 / (1 / in-process + 1 / floor) is the
 *                most /sign could reach on this machine, printed as its ratio to the in-process rate
 *
 * Stores: the folder store; PostgreSQL too when src/ca/store/postgres-store.ts exists and a
 * private cluster can be started (test/support/postgres.ts; or MCP_MTLS_TEST_PG=postgres://...).
 * `npm run bench:ca-serve`; BENCH_SECONDS=0.3 BENCH_WARMUP=0.1 BENCH_TOKENS=20 is a smoke run;
 * BENCH_NODE_ARGS adds node flags to the ca serve process (e.g. --perf-basic-prof for `perf`).
 */
import 'reflect-metadata';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Authority } from '../src/ca/authority.js';
import { initCa } from '../src/ca/init.js';
import { createCaServer } from '../src/ca/serve/server.js';
import type { Store } from '../src/ca/store/store.js';
import { createEnrollmentToken } from '../src/ca/tokens.js';
import { createCsr, verifyCsr } from '../src/x509/csr.js';
import { tlsServerOptions } from '../src/mtls/tls-options.js';
import { readBoundedBody } from '../src/util/bounded-body.js';
import { generateKey, privateKeyPem } from '../src/x509/keys.js';
import { forkBenchChild, serveForBench } from './child-ipc.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
/**
 * BENCH_WARMUP: seconds each side runs untimed first (default 3): a warm server against a warm
 * in-process issuance. With 1 s, `perf` on ca serve 1.5-5.5 s after its start put 12.7% of its CPU
 * in V8's optimizing compiler (its worker threads count in the process's CPU): /sign read
 * 0.48-0.52x on PostgreSQL where 3 s gives 0.53x twice
 */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
/** BENCH_TOKENS: the number of tokens for POST /sign; by default enough for BENCH_SECONDS at the in-process rate */
const TOKENS = process.env.BENCH_TOKENS ? Number(process.env.BENCH_TOKENS) : undefined;
/** BENCH_STORES=postgres (or folder): only those stores */
const STORES = process.env.BENCH_STORES?.split(',');
const YEAR = 365 * 86_400_000;
const self = fileURLToPath(import.meta.url);

type StoreKind = { kind: 'folder' } | { kind: 'postgres'; url: string };

async function openStore(dir: string, s: StoreKind): Promise<Store | undefined> {
  if (s.kind === 'folder') return undefined; // Authority.open's default
  const mod = (await import('../src/ca/store/postgres-store.js')) as {
    PostgresStore: new (url: string, o?: object) => Store;
    migrate: (url: string) => Promise<unknown>;
  };
  await mod.migrate(s.url);
  void dir;
  return new mod.PostgresStore(s.url);
}

// ---------------------------------------------------------------- the server process
if (process.argv[2] === 'floor') {
  // the floor: ca serve's TLS options and body read, the CSR verified, a fixed chain of the size /sign answers
  const dir = process.argv[3] as string;
  const chain = fs.readFileSync(path.join(dir, 'tls.crt'));
  const floor = https.createServer(
    { ...tlsServerOptions({ cert: chain, key: fs.readFileSync(path.join(dir, 'tls.key')), ca: fs.readFileSync(path.join(dir, 'root.crt')), rejectUnauthorized: false }), headersTimeout: 10_000, requestTimeout: 30_000 },
    (req, res) => {
      void readBoundedBody(req, 64 * 1024).then((r) => {
        if (!r.ok) return void res.writeHead(400).end();
        verifyCsr(r.body);
        res.writeHead(200, { 'content-type': 'application/pem-certificate-chain', 'cache-control': 'no-store', 'content-length': chain.length });
        res.end(chain);
      });
    },
  );
  serveForBench(floor);
} else if (process.argv[2] === 'child') {
  const [dir, storeJson] = [process.argv[3] as string, process.argv[4] as string];
  const store = await openStore(dir, JSON.parse(storeJson) as StoreKind);
  const ca = Authority.open(dir, store ? { store } : {});
  const server = createCaServer({
    authority: ca,
    cert: fs.readFileSync(path.join(dir, 'tls.crt')),
    key: fs.readFileSync(path.join(dir, 'tls.key')),
    renewRate: { burst: 1e9, perMinute: 1e9 },
    log: (m) => process.stderr.write(`[ca serve] ${m}\n`),
  });
  serveForBench(server, () => server.shutdown(2000).then(() => store?.close()));
} else {
  await main();
}

// ---------------------------------------------------------------- the measuring side
async function newCa(s: StoreKind): Promise<{ dir: string; ca: Authority; store: Store | undefined }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ca-serve-'));
  initCa({ dir, trustDomain: 'bench.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
  const store = await openStore(dir, s);
  return { dir, ca: Authority.open(dir, store ? { store } : {}), store };
}

async function inProcess(s: StoreKind): Promise<{ perSec: number; cpuMs: number }> {
  const { ca, store } = await newCa(s);
  const spki = generateKey('ec-p256').spki;
  // as many concurrent callers as the server gets clients, so that the ratio compares like with like;
  // untimed for WARMUP seconds first, as each route is
  let n = 0;
  const warmEnd = performance.now() + WARMUP * 1000;
  await ca.issueClient({ kind: 'user', id: 'warmup', teams: [], roles: [], spki });
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (performance.now() < warmEnd) await ca.issueClient({ kind: 'user', id: `w${n++}`, teams: ['sre'], roles: ['admin'], spki });
  }));
  n = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const end = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        await ca.issueClient({ kind: 'user', id: `u${n++}`, teams: ['sre'], roles: ['admin'], spki });
      }
    }),
  );
  const rate = n / ((performance.now() - t0) / 1000);
  const c = process.cpuUsage(cpu0);
  await store?.close();
  return { perSec: rate, cpuMs: (c.user + c.system) / 1000 / n };
}

interface Phase {
  /** server CPU (user + system) per successful request, ms */
  cpuMs?: number;
  perSec: number;
  ok: number;
  failed: number;
  /** the phase ended before BENCH_SECONDS: its tokens were used up */
  short?: number;
  p50: number;
  p99: number;
}

function post(agent: https.Agent, port: number, p: string, headers: Record<string, string>, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, method: 'POST', agent, headers: { 'content-length': String(body?.length ?? 0), ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function drive(clients: number, next: (i: number) => (() => Promise<number>) | undefined): Promise<Phase> {
  const lat: number[] = [];
  let ok = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      for (let job = next(i); job; job = next(i)) {
        const s = performance.now();
        const status = await job();
        lat.push(performance.now() - s);
        if (status === 200) ok++;
        else failed++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { perSec: ok / secs, ok, failed, p50: lat[Math.floor(lat.length * 0.5)] ?? 0, p99: lat[Math.floor(lat.length * 0.99)] ?? 0 };
}

/** `fn`'s phase with the server CPU per request of `server` */
async function measuredOn(server: { cpuMs(): Promise<number> }, fn: () => Promise<Phase>): Promise<Phase> {
  const before = await server.cpuMs();
  const p = await fn();
  return { ...p, cpuMs: ((await server.cpuMs()) - before) / Math.max(1, p.ok + p.failed) };
}

/** `job` by CLIENTS clients for `seconds` (or until it returns no request) */
function forSeconds(seconds: number, job: (i: number) => (() => Promise<number>) | undefined): Promise<Phase> {
  const end = performance.now() + seconds * 1000;
  return drive(CLIENTS, (i) => (performance.now() < end ? job(i) : undefined));
}

async function online(s: StoreKind, tokens: number): Promise<{ sign: Phase; renew: Phase; floor: Phase }> {
  const { dir, ca, store } = await newCa(s);
  const tls = await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] });
  fs.writeFileSync(path.join(dir, 'tls.crt'), tls.chainPem);
  fs.writeFileSync(path.join(dir, 'tls.key'), privateKeyPem(tls.key!.pkcs8), { mode: 0o600 });
  const csrs = Array.from({ length: CLIENTS }, (_, i) => createCsr(generateKey('ec-p256'), `c${i}`));
  // the floor first, on the same CSRs and a token header of the same length; its chain is the TLS
  // one (a leaf and the intermediate, as /sign answers)
  const floorServer = await forkBenchChild(self, ['floor', dir]);
  let floor: Phase;
  try {
    const header = { authorization: `Bearer mcpt_${'0'.repeat(16)}_${'A'.repeat(43)}`, 'content-type': 'application/pkcs10' };
    const agents = Array.from({ length: CLIENTS }, () => new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.rootPem }));
    const floorJob = (i: number) => () => post(agents[i]!, floorServer.port, '/sign', header, csrs[i]);
    await forSeconds(WARMUP, floorJob);
    floor = await measuredOn(floorServer, () => forSeconds(SECONDS, floorJob));
    for (const a of agents) a.destroy();
  } finally {
    await floorServer.stop();
  }
  // BENCH_CPU_PROF=DIR: a V8 CPU profile of the ca serve process in DIR/<store>/ (node --cpu-prof)
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(process.env.BENCH_CPU_PROF, s.kind)}`] : [];
  const server = await forkBenchChild(self, ['child', dir, JSON.stringify(s)], [...prof, ...(process.env.BENCH_NODE_ARGS?.split(' ') ?? [])]);
  const port = server.port;
  const measured = (fn: () => Promise<Phase>) => measuredOn(server, fn);
  try {
    // POST /sign: tokens and CSRs made beforehand (not measured)
    const secrets: string[] = [];
    for (let i = 0; i < tokens; i++) secrets.push((await createEnrollmentToken(ca, { kind: 'service', id: `bot${i}`, teams: ['ci'], roles: [], ttlMs: 3_600_000 })).secret);
    const signAgents = Array.from({ length: CLIENTS }, () => new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.rootPem }));
    // untimed: one enrollment per client, as the in-process side issues once before timing
    const warm: string[] = [];
    for (let i = 0; i < CLIENTS; i++) warm.push((await createEnrollmentToken(ca, { kind: 'service', id: `warm${i}`, teams: ['ci'], roles: [], ttlMs: 3_600_000 })).secret);
    const warmed = await Promise.all(warm.map((secret, i) => post(signAgents[i]!, port, '/sign', { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, csrs[i])));
    if (warmed.some((s) => s !== 200)) throw new Error(`the untimed first enrollments answered ${warmed.join(', ')}`);
    let t = 0;
    let ranOut = false;
    const signJob = (i: number) => {
      const secret = secrets[t++];
      if (!secret) ranOut = true;
      return secret ? () => post(signAgents[i]!, port, '/sign', { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, csrs[i]) : undefined;
    };
    await forSeconds(WARMUP, signJob);
    const signStart = performance.now();
    const sign = await measured(() => forSeconds(SECONDS, signJob));
    if (ranOut) sign.short = (performance.now() - signStart) / 1000;
    for (const a of signAgents) a.destroy();

    // POST /renew: one certificate per client, empty body (same key)
    const renewAgents = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const c = await ca.issueClient({ kind: 'user', id: `renewer${i}`, teams: ['sre'], roles: ['admin'] });
        return new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.rootPem, cert: c.chainPem, key: privateKeyPem(c.key!.pkcs8) });
      }),
    );
    const renewJob = (i: number) => () => post(renewAgents[i]!, port, '/renew', {});
    await forSeconds(WARMUP, renewJob);
    const renew = await measured(() => forSeconds(SECONDS, renewJob));
    for (const a of renewAgents) a.destroy();
    return { sign, renew, floor };
  } finally {
    await server.stop();
    await store?.close();
  }
}

async function main(): Promise<void> {
  const kinds: { label: string; store: StoreKind; stop?: () => Promise<void> }[] = STORES && !STORES.includes('folder') ? [] : [{ label: 'folder', store: { kind: 'folder' } }];
  let pgNote = '';
  if (STORES && !STORES.includes('postgres')) pgNote = 'PostgreSQL: not measured (BENCH_STORES)';
  else if (fs.existsSync(path.join(path.dirname(self), '..', 'src', 'ca', 'store', 'postgres-store.ts'))) {
    try {
      const { startPostgres } = await import('../test/support/postgres.js');
      const pg = await startPostgres();
      kinds.push({ label: 'postgres', store: { kind: 'postgres', url: pg.url }, stop: pg.stop });
      const second = await pg.newDatabase();
      (kinds[kinds.length - 1] as { inProcessUrl?: string }).inProcessUrl = second;
    } catch (e) {
      pgNote = `PostgreSQL: not measured (${(e as Error).message.split('\n')[0]})`;
    }
  } else pgNote = 'PostgreSQL: not measured (no src/ca/store/postgres-store.ts in this tree)';

  console.log(`bench/ca-serve: ${CLIENTS} concurrent keep-alive HTTPS clients, ${SECONDS} s per timed phase, ${TOKENS ?? 'in-process rate x 1.2 x seconds'} tokens, ${os.cpus().length} cores`);
  const rows: string[][] = [];
  const ceilings: string[] = [];
  for (const k of kinds) {
    const base = await inProcess(k.store.kind === 'postgres' ? { kind: 'postgres', url: (k as { inProcessUrl?: string }).inProcessUrl as string } : k.store);
    const r = await online(k.store, TOKENS ?? Math.ceil(base.perSec * (SECONDS + WARMUP) * 1.2));
    const f = (n: number) => n.toFixed(0);
    const ms = (p: Phase) => `p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms${p.failed ? `, ${p.failed} failed` : ''}${p.short !== undefined ? `, tokens used up at ${p.short.toFixed(1)} s` : ''}`;
    rows.push([k.label, 'in-process issue', f(base.perSec), '1.00', base.cpuMs.toFixed(2), '1.00', '']);
    for (const [what, p] of [['POST /sign', r.sign], ['POST /renew', r.renew], ['floor', r.floor]] as const) {
      rows.push([k.label, what, f(p.perSec), (p.perSec / base.perSec).toFixed(2), (p.cpuMs ?? 0).toFixed(2), ((p.cpuMs ?? 0) / base.cpuMs).toFixed(2), ms(p)]);
    }
    // the costs add on one machine: the rate of in-process issuance and the floor in one request
    const ceiling = 1 / (1 / base.perSec + 1 / r.floor.perSec);
    ceilings.push(`${k.label}: /sign at most ${f(ceiling)}/s = ${(ceiling / base.perSec).toFixed(2)}x in-process (its floor and issuance added); /sign reached ${(r.sign.perSec / ceiling).toFixed(2)}x of that`);
    await k.stop?.();
  }
  const widths = [8, 17, 6, 6, 7, 6];
  console.log(['store', 'what', 'per s', 'ratio', 'cpu ms', 'ratio', 'latency'].map((h, i) => h.padEnd(widths[i] ?? 0)).join('  '));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '));
  for (const c of ceilings) console.log(c);
  if (pgNote) console.log(pgNote);
  console.log('per s ratio: the route\'s rate over the in-process issuance rate of the same store (1.00 = HTTP, TLS, token and record checks cost nothing)');
  console.log('cpu ms: CPU time of the issuing process per certificate (the server process for the routes); its ratio is steadier than rates on a busy machine');
}
