/**
 * bench/gateway-stdio: tools/call (server-everything's `echo`) through the gateway to a stdio
 * upstream, next to the same server driven directly by the SDK's stdio client, in one run:
 * calls per second at concurrency 8 and CPU per call of this process plus the server process
 * (the gateway runs in this process, so its CPU includes the client's TLS and SDK work: an
 * upper bound). And the first call of a per-principal process (spawn + initialize) against the
 * next one. `node --import tsx bench/gateway-stdio.ts` (BENCH_SECONDS, default 3).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Authority } from '../src/ca/authority.js';
import { initCa } from '../src/ca/init.js';
import { pemEncode, readCertificates } from '../src/x509/pem.js';
import { createMtlsAgent, createMtlsFetch } from '../src/client/agent.js';
import { GatewayConfigSchema } from '../src/gateway/config.js';
import { startGateway } from '../src/gateway/run.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const EVERYTHING = path.resolve('node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-gateway-stdio-'));
initCa({ dir: path.join(dir, 'pki'), trustDomain: 'bench.test', rootTtlMs: 10 * 365 * 86_400_000, intermediateTtlMs: 5 * 365 * 86_400_000 });
const ca = Authority.open(path.join(dir, 'pki'));
const srv = await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] });
fs.writeFileSync(path.join(dir, 'server.crt'), srv.chainPem);
fs.writeFileSync(path.join(dir, 'server.key'), pemEncode('PRIVATE KEY', srv.key!.pkcs8));
fs.writeFileSync(path.join(dir, 'policy.yaml'), 'version: 1\nrules:\n  - id: all\n    subjects: { any: true }\n    tools: ["*"]\n');
// the same server over Streamable HTTP behind the same gateway: what the gateway's path costs either way
const net = await import('node:net');
const { spawn } = await import('node:child_process');
const httpPort = await new Promise<number>((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => resolve(p));
  });
});
const httpUp = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { ...process.env, PORT: String(httpPort) }, stdio: 'ignore' });
for (let up = false; !up; ) {
  up = await new Promise<boolean>((r) => net.connect(httpPort, '127.0.0.1').once('connect', function (this: import('node:net').Socket) { this.destroy(); r(true); }).once('error', () => setTimeout(() => r(false), 100)));
}
const gw = await startGateway(
  GatewayConfigSchema.parse({
    listen: '127.0.0.1:0',
    tls: { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key'), pki: path.join(dir, 'pki') },
    routes: [
      { path: '/http', policy: path.join(dir, 'policy.yaml'), upstream: `http://127.0.0.1:${httpPort}/mcp` },
      { path: '/shared', policy: path.join(dir, 'policy.yaml'), stdio: { command: process.execPath, args: [EVERYTHING, 'stdio'] } },
      { path: '/own', policy: path.join(dir, 'policy.yaml'), stdio: { command: process.execPath, args: [EVERYTHING, 'stdio'], processModel: 'per-principal' } },
    ],
  }),
  () => undefined,
  { env: process.env },
);

async function viaGateway(route: string, id: string): Promise<Client> {
  const c = await ca.issueClient({ kind: 'user', id, teams: ['bench'], roles: [] });
  const agent = createMtlsAgent({ chain: readCertificates(Buffer.from(c.chainPem)), key: crypto.createPrivateKey(pemEncode('PRIVATE KEY', c.key!.pkcs8)), ca: readCertificates(Buffer.from(ca.rootPem)) });
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`https://localhost:${gw.address.port}${route}`), { fetch: createMtlsFetch(agent) as typeof fetch }));
  return client;
}

/** ns this thread ran, and waited runnable for a CPU (Linux /proc/self/schedstat; zeros elsewhere) */
function schedstat(): [number, number] {
  try {
    const [run, wait] = fs.readFileSync('/proc/self/schedstat', 'utf8').split(' ').map(Number);
    return [run!, wait!];
  } catch {
    return [0, 0];
  }
}

async function run(client: Client): Promise<{ perSecond: number; calls: number; cpuMs: number; busy: number; runQueue: number }> {
  const end = Date.now() + SECONDS * 1000;
  let calls = 0;
  const cpu0 = process.cpuUsage();
  const sched0 = schedstat();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (Date.now() < end) {
      await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
      calls++;
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  const sched = schedstat();
  // busy: this process's CPU over the wall time (near 1: the gateway path is CPU-bound); runQueue:
  // the share of the wall time its thread was ready to run but waited for a CPU other programs
  // held. What is neither is sleep: waiting on the upstream, a timer or a socket
  return { perSecond: calls / (wallMs / 1000), calls, cpuMs: (cpu.user + cpu.system) / 1000, busy: (cpu.user + cpu.system) / 1000 / wallMs, runQueue: (sched[1] - sched0[1]) / 1e6 / wallMs };
}

const direct = new Client({ name: 'bench', version: '1' });
await direct.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' }));
await run(direct); // warm up
const d = await run(direct);
const shared = await viaGateway('/shared', 'bench');
await run(shared);
const g = await run(shared);
const http = await viaGateway('/http', 'bench');
await run(http);
const hr = await run(http);
const seq = async (c: Client) => {
  const t = performance.now();
  for (let i = 0; i < 50; i++) await c.callTool({ name: 'echo', arguments: { message: 'hi' } });
  return (performance.now() - t) / 50;
};
const sequential = { directMs: +(await seq(direct)).toFixed(2), gatewayStdioMs: +(await seq(shared)).toFixed(2), gatewayHttpMs: +(await seq(http)).toFixed(2) };
const second: number[] = [];
for (let i = 0; i < 5; i++) {
  const c = await viaGateway('/own', `u${i}`);
  await c.callTool({ name: 'echo', arguments: { message: 'hi' } });
  const t = performance.now();
  await c.callTool({ name: 'echo', arguments: { message: 'hi' } });
  second.push(performance.now() - t);
  await c.close();
}
// the first call of a per-principal process is its initialize (spawn + initialize): timed as connect
const spawnMs: number[] = [];
for (let i = 5; i < 10; i++) {
  const t = performance.now();
  const c = await viaGateway('/own', `u${i}`);
  spawnMs.push(performance.now() - t);
  await c.close();
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log(JSON.stringify({
  direct: { callsPerSecond: Math.round(d.perSecond), cpuMsPerCallThisProcess: +(d.cpuMs / d.calls).toFixed(3), busy: +d.busy.toFixed(2), runQueue: +d.runQueue.toFixed(2) },
  gateway: { callsPerSecond: Math.round(g.perSecond), cpuMsPerCallThisProcess: +(g.cpuMs / g.calls).toFixed(3), busy: +g.busy.toFixed(2), runQueue: +g.runQueue.toFixed(2) },
  gatewayToHttpUpstream: { callsPerSecond: Math.round(hr.perSecond), cpuMsPerCallThisProcess: +(hr.cpuMs / hr.calls).toFixed(3), busy: +hr.busy.toFixed(2), runQueue: +hr.runQueue.toFixed(2) },
  loadAverage1m: +os.loadavg()[0]!.toFixed(2),
  ratio: { throughputStdioVsDirect: +(g.perSecond / d.perSecond).toFixed(3), throughputStdioVsHttpUpstream: +(g.perSecond / hr.perSecond).toFixed(2) },
  sequential,
  perPrincipal: { connectWithSpawnMsMedian: +med(spawnMs).toFixed(1), callOnRunningProcessMsMedian: +med(second).toFixed(2) },
}, null, 1));
await shared.close();
await http.close();
httpUp.kill();
await direct.close();
await gw.stop();
fs.rmSync(dir, { recursive: true, force: true });
