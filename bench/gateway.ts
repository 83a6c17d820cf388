/**
 * bench/gateway: tools/call through the mcp-mtls gateway, next to the same upstream reached
 * directly and behind nginx (mTLS, keep-alive proxy_pass) in the same run; throughput, p99
 * latency and proxy CPU per request, median of BENCH_ROUNDS rounds (default 5). The upstream
 * is an SDK 1.x MCP server. `npm run bench:gateway`; the test suite runs a smoke size.
 * BENCH_CPU_PROF=DIR writes a V8 CPU profile of each child process to DIR/<mode>/ (node --cpu-prof).
 *
 * Also in the same run, the floor of any Node proxy here (gateway-child.ts `floor`: node:https
 * with client certificates, undici, the JSON parsed and written again both ways, nothing else):
 * the gateway's CPU above it is the cost of its own work, the floor's above nginx is Node's.
 * Each case is warmed with BENCH_WARM requests (default 3000; 100 for a smoke run) before
 * the rounds, so that V8 has optimized the proxies' code (300 ms of warm-up left a loaded
 * machine's gateway in baseline code, at several times its CPU per request); the rounds run the
 * cases in ABBA order, and the ratios are printed per round too (median and range).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { benchPki } from './bench-pki.js';
import { forkBenchChild, type BenchChild } from './child-ipc.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WARM = Number(process.env.BENCH_WARM ?? (SECONDS < 1 ? 100 : 3000));
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-gateway-'));
const { clientCtx } = await benchPki(dir);

function child(args: string[]): Promise<BenchChild> {
  // BENCH_CPU_PROF=DIR: a V8 CPU profile of each child process in DIR/<first argument>/ (node --cpu-prof)
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(process.env.BENCH_CPU_PROF, args[0] ?? 'child')}`] : [];
  return forkBenchChild(path.join(here, 'gateway-child.ts'), args, prof);
}

function procCpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
}

async function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => r(port));
    });
  });
}

async function nginxProxy(upstreamPort: number): Promise<{ port: number; workerPid: () => number; stop(): void } | undefined> {
  const bin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((b) => fs.existsSync(b));
  if (!bin) return undefined;
  const port = await freePort();
  const ngx = path.join(dir, 'nginx');
  fs.mkdirSync(path.join(ngx, 'logs'), { recursive: true });
  fs.writeFileSync(
    path.join(ngx, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${ngx}/nginx.pid; error_log ${ngx}/logs/error.log;\nevents {}\nhttp { access_log off; client_body_temp_path ${ngx}; proxy_temp_path ${ngx}; fastcgi_temp_path ${ngx}; uwsgi_temp_path ${ngx}; scgi_temp_path ${ngx};\n upstream mcp { server 127.0.0.1:${upstreamPort}; keepalive 32; }\n server { listen 127.0.0.1:${port} ssl; ssl_certificate ${dir}/server.crt; ssl_certificate_key ${dir}/server.key; ssl_client_certificate ${dir}/root.crt; ssl_verify_client on; ssl_verify_depth 2; keepalive_requests 100000;\n  location / { proxy_pass http://mcp; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; } } }\n`,
  );
  const proc = spawn(bin, ['-p', ngx, '-c', path.join(ngx, 'nginx.conf')], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((r) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false)));
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // a process may exit between readdir and the read (the test runner starts and stops many):
  // that one is not nginx's worker, so it is skipped rather than ending the bench with ENOENT
  const parentOf = (pid: string): string | undefined => {
    try {
      return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1];
    } catch {
      return undefined;
    }
  };
  const workerPid = () => {
    const master = proc.pid as number;
    const kids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && parentOf(p) === String(master));
    return Number(kids[0] ?? master);
  };
  // nginx is no child that exits with us: stopped however the bench ends
  process.once('exit', () => proc.kill('SIGTERM'));
  return { port, workerPid, stop: () => proc.kill('SIGTERM') };
}

const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } });
async function load(url: string, mtls: boolean, ms: number): Promise<{ n: number; p99: number }> {
  const agent = new Agent({ connections: 8, ...(mtls ? { connect: { secureContext: clientCtx, servername: 'localhost' } as Agent.Options['connect'] } : {}) });
  const deadline = performance.now() + ms;
  const lat: number[] = [];
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const res = await request(url, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.includes('hello')) throw new Error(`bad answer ${res.statusCode} ${text.slice(0, 200)}`);
      lat.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  await agent.close();
  lat.sort((a, b) => a - b);
  return { n: lat.length, p99: lat[Math.floor(lat.length * 0.99)] ?? 0 };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const upstream = await child(['upstream', dir]);
const gateway = await child(['gateway', dir, `http://127.0.0.1:${upstream.port}/mcp`]);
const floor = await child(['floor', dir, `http://127.0.0.1:${upstream.port}/mcp`]);
const nginx = await nginxProxy(upstream.port);
const FLOOR = 'node floor (https+undici)';
const cases: { name: string; url: string; mtls: boolean; cpu?: () => Promise<number> }[] = [
  { name: 'direct (plain HTTP)', url: `http://127.0.0.1:${upstream.port}/mcp`, mtls: false },
  { name: 'mcp-mtls gateway', url: `https://localhost:${gateway.port}/mcp`, mtls: true, cpu: () => gateway.cpuMs() },
  { name: FLOOR, url: `https://localhost:${floor.port}/mcp`, mtls: true, cpu: () => floor.cpuMs() },
  ...(nginx ? [{ name: 'nginx (mTLS, proxy_pass)', url: `https://localhost:${nginx.port}/mcp`, mtls: true, cpu: async () => procCpuMs(nginx.workerPid()) }] : []),
];
const stats = Object.fromEntries(cases.map((c) => [c.name, { rps: [] as number[], p99: [] as number[], cpu: [] as number[] }]));
for (const c of cases) for (let n = 0; n < WARM; ) n += (await load(c.url, c.mtls, 1000)).n;
for (let r = 0; r < ROUNDS; r++) {
  for (const c of r % 2 ? [...cases].reverse() : cases) {
    const cpu0 = c.cpu ? await c.cpu() : 0;
    const t0 = performance.now();
    const { n, p99 } = await load(c.url, c.mtls, SECONDS * 1000);
    const s = (performance.now() - t0) / 1000;
    stats[c.name]!.rps.push(n / s);
    stats[c.name]!.p99.push(p99);
    if (c.cpu) stats[c.name]!.cpu.push((((await c.cpu()) - cpu0) * 1000) / n);
  }
}
upstream.stop();
gateway.stop();
floor.stop();
nginx?.stop();
console.log(`bench/gateway: tools/call to an SDK 1.x upstream, ${ROUNDS} rounds of ${SECONDS}s, medians (node ${process.version}, ${os.cpus().length} cores)`);
console.log(`${'path'.padEnd(28)} req/s   p99 ms   proxy CPU µs/req`);
for (const c of cases) {
  const s = stats[c.name]!;
  console.log(`${c.name.padEnd(28)} ${median(s.rps).toFixed(0).padStart(5)}   ${median(s.p99).toFixed(1).padStart(6)}   ${s.cpu.length ? median(s.cpu).toFixed(0).padStart(6) : '     -'}`);
}
// a ratio per round (both measured in the same round, back to back): median [lowest-highest]
const perRound = (a: number[], b: number[]) => {
  const q = a.map((x, i) => x / b[i]!).sort((x, y) => x - y);
  return `${median(q).toFixed(2)}x [${q[0]!.toFixed(2)}-${q[q.length - 1]!.toFixed(2)}]`;
};
const g = stats['mcp-mtls gateway']!;
const f = stats[FLOOR]!;
console.log(`ratio gateway/floor: proxy CPU per request ${(median(g.cpu) / median(f.cpu)).toFixed(2)}x (per round ${perRound(g.cpu, f.cpu)})`);
if (nginx) {
  const n = stats['nginx (mTLS, proxy_pass)']!;
  console.log(`ratio gateway/nginx: throughput ${(median(g.rps) / median(n.rps)).toFixed(2)}x, proxy CPU per request ${(median(g.cpu) / median(n.cpu)).toFixed(2)}x (nginx CPU read from /proc in 10 ms ticks; per round: throughput ${perRound(g.rps, n.rps)}, CPU ${perRound(g.cpu, n.cpu)})`);
  console.log(`ratio floor/nginx: proxy CPU per request ${(median(f.cpu) / median(n.cpu)).toFixed(2)}x (per round ${perRound(f.cpu, n.cpu)})`);
} else console.log('nginx: not installed (apt-get install nginx-light), no comparison');
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
