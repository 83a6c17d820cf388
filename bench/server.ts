/**
 * bench/server: what mTLS identity and per-tool policy cost an MCP server, measured in one run.
 *
 * 1. tools/call over keep-alive connections, the same SDK 1.x tools in every case, median of
 *    BENCH_ROUNDS rounds (default 5), cases interleaved:
 *      (a) tls          TLS without client certificates, the server built per request as the adapter does
 *      (b) mtls         createMtlsServer + createMcpSdk1Handler: identity per connection, policy, audit
 *      (c) sdk-default  the SDK's own stateless example (validator and schemas made per request), no auth
 *    Throughput, and server CPU per request (the server runs in its own process).
 * 2. Full TLS handshakes per second with a client certificate: the mTLS server next to bare
 *    node:https and to nginx (when installed) on the same certificates; with session resumption; and the mTLS server's
 *    CPU per full handshake with a 100,000-entry CRL loaded, next to none.
 * 3. Behind nginx ending TLS (when installed): tools/call through nginx, which forwards the client
 *    certificate (`$ssl_client_escaped_cert`) to createMtlsServer with trustedProxies, next to
 *    nginx in front of the same adapter without authentication; the server's CPU per request.
 * `npm run bench:server`; BENCH_SECONDS=0.3 BENCH_ROUNDS=1 is the smoke run the tests do.
 * BENCH_CPU_PROF=DIR writes a V8 CPU profile of each server process to DIR/<mode>/ (node --cpu-prof).
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { intermediateSigner } from '../src/ca/ca-keys.js';
import { signCrl } from '../src/x509/crl.js';
import { pemEncode } from '../src/x509/pem.js';
import { benchPki } from './bench-pki.js';
import { forkBenchChild, type BenchChild } from './child-ipc.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
// the forwarded-certificate bound is 3% of ~200 µs: a round's ratio on 2 cores varies by ±10%, so it
// takes more rounds than the others for the median to settle
const FWD_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const HANDSHAKES = Number(process.env.BENCH_HANDSHAKES ?? 1500);
const CRL_ENTRIES = Number(process.env.BENCH_CRL_ENTRIES ?? 100_000);
const here = path.dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------- certificates
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-server-'));
const pki = path.join(dir, 'pki');
const { ca, clientCtx } = await benchPki(dir); // server.crt, server.key, root.crt
const write = (name: string, data: string | Buffer) => fs.writeFileSync(path.join(dir, name), data);
write('intermediate.crt', pemEncode('CERTIFICATE', ca.intermediateDer));
write('root.crl', fs.readFileSync(path.join(pki, 'crl', 'root.crl')));
const now = new Date();
const bigCrl = signCrl(
  {
    issuerName: ca.issuer.subjectName,
    issuerKeyId: ca.issuer.keyId,
    number: 2n,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + 7 * 86_400_000),
    entries: Array.from({ length: CRL_ENTRIES }, () => ({ serial: crypto.randomBytes(16).toString('hex').replace(/^./, '4'), revokedAt: now, reason: 'keyCompromise' as const })),
  },
  await intermediateSigner(ca),
);
write('big.crl', pemEncode('X509 CRL', bigCrl));
const plainCtx = tls.createSecureContext({ ca: ca.rootPem });

// ---------------------------------------------------------------- server processes
function startChild(mode: string): Promise<BenchChild> {
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(process.env.BENCH_CPU_PROF, mode)}`] : [];
  return forkBenchChild(path.join(here, 'server-child.ts'), [mode, dir], prof);
}

const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } });

/** tools/call for `ms` with 32 requests in flight over 8 keep-alive connections. */
async function load(port: number, mtls: boolean, ms: number): Promise<number> {
  const agent = new Agent({ connections: 8, connect: { secureContext: mtls ? clientCtx : plainCtx, servername: 'localhost' } as Agent.Options['connect'] });
  const deadline = performance.now() + ms;
  let done = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      const res = await request(`https://localhost:${port}/mcp`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        body,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.includes('hello')) throw new Error(`bad answer ${res.statusCode}: ${text.slice(0, 200)}`);
      done++;
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  await agent.close();
  return done;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
/** each round's ratio x[i]/y[i] (the two ran back to back), their median and spread */
const roundRatios = (x: number[], y: number[]) => {
  const rs = x.map((v, i) => v / (y[i] as number));
  return { median: median(rs), text: `median of ${rs.length} rounds ${median(rs).toFixed(3)}x (${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)})` };
};

// BENCH_CASES=forwarded runs the behind-nginx cases only
// BENCH_CASES=handshakes the handshake section only
const only = process.env.BENCH_CASES?.split(',');
const cases = (only ? only.filter((c) => c !== 'forwarded' && c !== 'handshakes') : ['tls', 'mtls', 'sdk-default']) as ['tls', 'mtls', 'sdk-default'];
const children = Object.fromEntries(await Promise.all(cases.map(async (c) => [c, await startChild(c)] as const))) as Record<(typeof cases)[number], BenchChild>;
const results: Record<string, { rps: number[]; cpuPerReq: number[] }> = Object.fromEntries(cases.map((c) => [c, { rps: [], cpuPerReq: [] }]));
for (const c of cases) await load(children[c].port, c === 'mtls', 300); // warm up
for (let r = 0; r < ROUNDS; r++) {
  // ABBA order: the case measured second in a round meets a warmer machine (or a busier one)
  for (const c of r % 2 === 0 ? cases : [...cases].reverse()) {
    const cpu0 = await children[c].cpuMs();
    const t0 = performance.now();
    const n = await load(children[c].port, c === 'mtls', SECONDS * 1000);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = (await children[c].cpuMs()) - cpu0;
    results[c]!.rps.push(n / seconds);
    results[c]!.cpuPerReq.push((cpu * 1000) / n);
  }
}
for (const c of cases) children[c].stop();

// ---------------------------------------------------------------- behind nginx ending TLS
async function nginxInFront(backends: number[]): Promise<{ ports: number[]; stop(): void } | undefined> {
  const bin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((b) => fs.existsSync(b));
  if (!bin) return undefined;
  const ports = await Promise.all(backends.map(() => freePort()));
  const ngx = path.join(dir, 'nginx-front');
  fs.mkdirSync(ngx, { recursive: true });
  const servers = backends
    .map((b, i) => `upstream b${i} { server 127.0.0.1:${b}; keepalive 16; }\n server { listen 127.0.0.1:${ports[i]} ssl; ssl_certificate ${dir}/server.crt; ssl_certificate_key ${dir}/server.key; ssl_client_certificate ${dir}/root.crt; ssl_verify_client on; ssl_verify_depth 2; keepalive_requests 100000; location / { proxy_pass https://b${i}; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host localhost; proxy_ssl_trusted_certificate ${dir}/root.crt; proxy_ssl_verify on; proxy_ssl_name localhost; proxy_ssl_server_name on; proxy_ssl_session_reuse on; proxy_set_header ssl-client-cert $ssl_client_escaped_cert; } }`)
    .join('\n');
  fs.writeFileSync(path.join(ngx, 'nginx.conf'), `daemon off; master_process off; worker_processes 1; pid ${ngx}/nginx.pid; error_log ${ngx}/error.log;\nevents { worker_connections 256; }\nhttp { access_log off; client_body_temp_path ${ngx}; proxy_temp_path ${ngx}; fastcgi_temp_path ${ngx}; uwsgi_temp_path ${ngx}; scgi_temp_path ${ngx};\n ${servers} }\n`);
  const proc = spawn(bin, ['-p', ngx, '-c', path.join(ngx, 'nginx.conf'), '-e', path.join(ngx, 'error.log')], { stdio: 'ignore' });
  process.once('exit', () => proc.kill('SIGTERM')); // stopped however the bench ends
  for (const port of ports) {
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((r) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false)));
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { ports, stop: () => proc.kill('SIGTERM') };
}
const fwdCases = ['adapter-tls', 'mtls-forwarded'] as const;
const fwd: Record<string, { rps: number[]; cpuPerReq: number[] }> = { 'adapter-tls': { rps: [], cpuPerReq: [] }, 'mtls-forwarded': { rps: [], cpuPerReq: [] } };
const fwdChildren = !only || only.includes('forwarded') ? await Promise.all(fwdCases.map((c) => startChild(c))) : [];
const front = fwdChildren.length ? await nginxInFront(fwdChildren.map((c) => c.port)) : undefined;
if (front) {
  for (const port of front.ports) await load(port, true, 300); // warm up
  for (let r = 0; r < FWD_ROUNDS; r++) {
    // ABBA order: whichever case runs second in a round meets a warmer (or more fragmented) heap,
    // so the order alternates and neither case is always second
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const child = fwdChildren[i] as BenchChild;
      const cpu0 = await child.cpuMs();
      const t0 = performance.now();
      const n = await load(front.ports[i] as number, true, SECONDS * 1000);
      const seconds = (performance.now() - t0) / 1000;
      const cpu = (await child.cpuMs()) - cpu0;
      fwd[fwdCases[i] as string]!.rps.push(n / seconds);
      fwd[fwdCases[i] as string]!.cpuPerReq.push((cpu * 1000) / n);
    }
  }
  front.stop();
}
for (const c of fwdChildren) c.stop();

const reportForwarded = () => {
  if (front) {
    const plain = fwd['adapter-tls']!;
    const f = fwd['mtls-forwarded']!;
    console.log(`behind nginx ending TLS (tools/call; nginx's own CPU not counted):`);
    console.log(`  (d) nginx -> adapter, no authentication        ${median(plain.rps).toFixed(0).padStart(7)} req/s    ${median(plain.cpuPerReq).toFixed(0).padStart(6)} µs/req`);
    console.log(`  (e) nginx -> trustedProxies, forwarded cert    ${median(f.rps).toFixed(0).padStart(7)} req/s    ${median(f.cpuPerReq).toFixed(0).padStart(6)} µs/req`);
    // each round's two cases ran back to back: their ratio is steadier than the ratio of medians on a loaded machine
    console.log(`per-round ratios (e)/(d) of server CPU per request: ${f.cpuPerReq.map((x, i) => (x / plain.cpuPerReq[i]!).toFixed(3)).join(' ')}; median ${median(f.cpuPerReq.map((x, i) => x / plain.cpuPerReq[i]!)).toFixed(3)}x`);
    console.log(`ratio (e)/(d): server CPU per request ${median(f.cpuPerReq.map((x, i) => x / plain.cpuPerReq[i]!)).toFixed(3)}x (median of the rounds' ratios; of the medians ${(median(f.cpuPerReq) / median(plain.cpuPerReq)).toFixed(3)}x), throughput ${(median(f.rps) / median(plain.rps)).toFixed(2)}x`);
  } else if (fwdChildren.length) console.log('behind nginx: not installed, no forwarded-certificate case');
};

// ---------------------------------------------------------------- handshakes
function handshakes(port: number, count: number, resume: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    let left = count;
    const t0 = performance.now();
    const one = () => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: clientCtx, ...(resume && session ? { session } : {}) });
      s.once('session', (sess) => {
        session = sess;
      });
      s.once('secureConnect', () => {
        s.end();
      });
      s.once('close', () => {
        if (--left === 0) resolve(count / ((performance.now() - t0) / 1000));
        else one();
      });
      s.once('error', reject);
    };
    one();
  });
}

async function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => r(port));
    });
  });
}

async function nginxServer(): Promise<{ port: number; pid: number; stop(): void } | undefined> {
  const bin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((b) => fs.existsSync(b));
  if (!bin) return undefined;
  const port = await freePort();
  const ngx = path.join(dir, 'nginx');
  fs.mkdirSync(path.join(ngx, 'logs'), { recursive: true });
  fs.writeFileSync(
    path.join(ngx, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${ngx}/nginx.pid; error_log ${ngx}/logs/error.log;\nevents {}\nhttp { access_log off; client_body_temp_path ${ngx}; proxy_temp_path ${ngx}; fastcgi_temp_path ${ngx}; uwsgi_temp_path ${ngx}; scgi_temp_path ${ngx};\n server { listen 127.0.0.1:${port} ssl; ssl_certificate ${dir}/server.crt; ssl_certificate_key ${dir}/server.key; ssl_client_certificate ${dir}/root.crt; ssl_verify_client on; ssl_verify_depth 2; ssl_session_tickets on; ssl_session_cache shared:s:1m; location / { return 200 "ok"; } } }\n`,
  );
  const proc = spawn(bin, ['-p', ngx, '-c', path.join(ngx, 'nginx.conf')], { stdio: 'ignore' });
  process.once('exit', () => proc.kill('SIGTERM')); // stopped however the bench ends
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((r) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false)));
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, pid: proc.pid as number, stop: () => proc.kill('SIGTERM') };
}

if (only && !only.includes('handshakes')) {
  for (const c of cases) console.log(c, median(results[c]!.rps).toFixed(0), 'req/s', median(results[c]!.cpuPerReq).toFixed(0), 'µs/req');
  if (results.tls && results.mtls) console.log(`ratio (b)/(a) per round: throughput ${roundRatios(results.mtls.rps, results.tls.rps).text}, CPU per request ${roundRatios(results.mtls.cpuPerReq, results.tls.cpuPerReq).text}`);
  reportForwarded();
  process.exit(0);
}
const mtlsChild = await startChild('mtls');
const crlChild = await startChild('mtls-crl');
const bareChild = await startChild('node-mtls');
const hs: Record<string, number[]> = { mtls: [], 'mtls resumed': [], 'bare node mTLS': [], 'bare node resumed': [], nginx: [], 'nginx resumed': [] };
const cpuPerHs: Record<string, number[]> = { none: [], crl: [] };
const nginx = await nginxServer();
await handshakes(mtlsChild.port, 100, false);
await handshakes(crlChild.port, 100, false);
await handshakes(bareChild.port, 100, false);
// nginx's CPU: its worker processes' utime + stime (/proc, clock ticks of 10 ms)
const nginxCpuMs = async (): Promise<number> => {
  if (!nginx) return 0;
  try {
    const kids = fs.readFileSync(`/proc/${nginx.pid}/task/${nginx.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return [nginx.pid, ...kids.map(Number)].reduce((sum, pid) => {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return sum + ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    }, 0);
  } catch {
    return Number.NaN;
  }
};
const hsServers = [['mtls', mtlsChild.port, mtlsChild.cpuMs], ['bare node mTLS', bareChild.port, bareChild.cpuMs], ...(nginx ? [['nginx', nginx.port, nginxCpuMs]] : [])] as [string, number, () => Promise<number>][];
// server CPU per handshake (µs), which the load of other processes on the machine moves less than handshakes per second
const hsCpu: Record<string, number[]> = Object.fromEntries(Object.keys(hs).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  // ABBA order, as above: the servers in turn, reversed every other round
  for (const [name, port, cpuMs] of r % 2 === 0 ? hsServers : [...hsServers].reverse()) {
    for (const resume of [false, true]) {
      const key = !resume ? name : name === 'bare node mTLS' ? 'bare node resumed' : `${name} resumed`;
      const c0 = await cpuMs();
      hs[key]!.push(await handshakes(port, HANDSHAKES, resume));
      hsCpu[key]!.push((((await cpuMs()) - c0) * 1000) / HANDSHAKES);
    }
  }
  for (const [name, child] of [['none', mtlsChild], ['crl', crlChild]] as const) {
    const c0 = await child.cpuMs();
    await handshakes(child.port, HANDSHAKES, false);
    cpuPerHs[name]!.push((((await child.cpuMs()) - c0) * 1000) / HANDSHAKES);
  }
}
mtlsChild.stop();
crlChild.stop();
bareChild.stop();
nginx?.stop();

// ---------------------------------------------------------------- report
const a = results.tls;
const b = results.mtls;
const c = results['sdk-default'];
console.log(`bench/server: tools/call, ${ROUNDS} rounds of ${SECONDS}s, medians (node ${process.version}, ${os.cpus().length} cores)`);
console.log(`case                                   req/s    server CPU µs/req`);
for (const [label, r] of [['(a) TLS, no client auth', a], ['(b) mTLS + identity + policy', b], ['(c) SDK default stateless, no auth', c]] as const) {
  if (r) console.log(`${label.padEnd(36)} ${median(r.rps).toFixed(0).padStart(7)}    ${median(r.cpuPerReq).toFixed(0).padStart(6)}`);
}
if (a && b) {
  console.log(`ratio (b)/(a): throughput ${(median(b.rps) / median(a.rps)).toFixed(2)}x, CPU per request ${(median(b.cpuPerReq) / median(a.cpuPerReq)).toFixed(2)}x (of the medians)`);
  console.log(`ratio (b)/(a) per round: throughput ${roundRatios(b.rps, a.rps).text}, CPU per request ${roundRatios(b.cpuPerReq, a.cpuPerReq).text}`);
}
if (b && c) console.log(`ratio (b)/(c): throughput ${(median(b.rps) / median(c.rps)).toFixed(2)}x`);
console.log(`full handshakes/s with a client certificate (${HANDSHAKES} per round, one at a time):`);
for (const [k, v] of Object.entries(hs)) if (v.length) console.log(`  ${k.padEnd(16)} ${median(v).toFixed(0).padStart(6)}/s`);
console.log(`ratio mTLS server / bare node:https with client certificates: full ${(median(hs.mtls!) / median(hs['bare node mTLS']!)).toFixed(2)}x, resumed ${(median(hs['mtls resumed']!) / median(hs['bare node resumed']!)).toFixed(2)}x`);
console.log(`  per round: full ${roundRatios(hs.mtls!, hs['bare node mTLS']!).text}, resumed ${roundRatios(hs['mtls resumed']!, hs['bare node resumed']!).text}`);
console.log(`server CPU per handshake (µs): ${Object.entries(hsCpu).filter(([, v]) => v.length).map(([k, v]) => `${k} ${median(v).toFixed(0)}`).join(', ')}`);
console.log(`ratio of server CPU per handshake, mTLS server / bare node:https: full ${roundRatios(hsCpu.mtls!, hsCpu['bare node mTLS']!).text}, resumed ${roundRatios(hsCpu['mtls resumed']!, hsCpu['bare node resumed']!).text}`);
if (hs.nginx!.length) {
  console.log(`ratio mTLS server / nginx: full ${(median(hs.mtls!) / median(hs.nginx!)).toFixed(2)}x, resumed ${(median(hs['mtls resumed']!) / median(hs['nginx resumed']!)).toFixed(2)}x`);
  console.log(`  per round: full ${roundRatios(hs.mtls!, hs.nginx!).text}, resumed ${roundRatios(hs['mtls resumed']!, hs['nginx resumed']!).text}; bare node / nginx: full ${roundRatios(hs['bare node mTLS']!, hs.nginx!).text}, resumed ${roundRatios(hs['bare node resumed']!, hs['nginx resumed']!).text}`);
}
else console.log('nginx: not installed (apt-get install nginx-light), no comparison');
reportForwarded();
console.log(`server CPU per full handshake: ${median(cpuPerHs.none!).toFixed(0)} µs with no CRL, ${median(cpuPerHs.crl!).toFixed(0)} µs with ${CRL_ENTRIES} revoked serials loaded: ratio ${(median(cpuPerHs.crl!) / median(cpuPerHs.none!)).toFixed(2)}x`);
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
