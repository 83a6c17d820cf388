/**
 * bench/connections: server memory per open idle connection, and per stateful MCP session, next
 * to bare `node:https` with client certificates measured in the same run.
 *
 * Each server runs in its own process (node --expose-gc); a client process opens connections over
 * loopback, each a full TLS handshake with a client certificate followed by one keep-alive request
 * (so the server holds what an idle keep-alive client costs: socket, TLS state, HTTP parser, and for
 * createMtlsServer its per-connection identity), then leaves them idle. After each step the server
 * runs gc() twice and reports process.memoryUsage(). Servers:
 *
 *   node:https    https.createServer({ requestCert, rejectUnauthorized }) answering "ok" (the baseline)
 *   mtls          createMtlsServer (src/mtls/mtls-server.ts) with a handler answering "ok"
 *   mcp session   createMtlsServer + createMcpSdk1Handler({ stateful: true }): each connection sends
 *                 initialize and notifications/initialized, so it holds one open MCP session
 *
 * Steps BENCH_CONN_N (default "1000,10000") connections open at once; the slope is the memory
 * added per connection from the step before (bytes; "heap+ext" = heapUsed + external after gc,
 * "rss" = resident set). Printed next to the baseline's slope and their difference (target: under
 * 50 KB per idle connection beyond bare Node's own). RSS is noisy (allocator pages are not given
 * back); heap+ext is the steadier figure. Needs about N+100 file descriptors in each process:
 * `ulimit -n` must allow it (checked; raise it with `ulimit -n 20000` before the run).
 *
 * `npm run bench:connections`; BENCH_CONN_N=200 is the smoke run. The whole run gives up after
 * BENCH_CONN_TIMEOUT_S (default 1800) seconds.
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

const STEPS = (process.env.BENCH_CONN_N ?? '1000,10000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const PARALLEL = Number(process.env.BENCH_CONN_PARALLEL ?? 32);
const self = fileURLToPath(import.meta.url);
type Mode = 'node' | 'mtls' | 'mcp';

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
const INITIALIZED = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });

// ---------------------------------------------------------------- server process
async function serve(mode: Mode, dir: string): Promise<void> {
  const read = (f: string) => fs.readFileSync(path.join(dir, f));
  const material = { cert: read('server.crt'), key: read('server.key'), ca: read('root.crt') };
  let server: https.Server;
  if (mode === 'node') {
    server = https.createServer({ ...material, requestCert: true, rejectUnauthorized: true }, (_req, res) => void res.end('ok'));
  } else {
    const { createMtlsServer } = await import('../src/mtls/mtls-server.js');
    if (mode === 'mtls') server = createMtlsServer({ ...material, log: () => undefined }, (_req, res) => void res.end('ok'));
    else {
      const { createMcpSdk1Handler } = await import('../src/mcp/sdk1.js');
      const { policyFromText } = await import('../src/policy/compile.js');
      const policy = policyFromText('version: 1\nrules:\n  - id: all\n    subjects: { teams: [bench] }\n    tools: ["*"]\n');
      const handler = createMcpSdk1Handler({
        serverInfo: { name: 'bench', version: '1' },
        build: () => undefined,
        policy,
        stateful: true,
        enableJsonResponse: true,
        maxSessions: 1e6,
        maxSessionsPerCertificate: 1e6,
        audit: { includeArgs: false, write: () => undefined },
      });
      server = createMtlsServer({ ...material, log: () => undefined }, handler);
    }
  }
  server.keepAliveTimeout = 3_600_000; // idle connections stay open for the whole run
  server.headersTimeout = 3_600_000 + 1000;
  server.maxConnections = 1e6;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the server process needs --expose-gc');
  server.listen(0, '127.0.0.1', 4096, () => {
    if (process.connected) process.send?.({ port: (server.address() as AddressInfo).port });
  });
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (m) => {
    if (m === 'mem') {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setImmediate(r));
      }
      server.getConnections((_e, connections) => process.send?.({ mem: process.memoryUsage(), connections }));
    }
  });
}

// ---------------------------------------------------------------- client process
interface Response {
  status: number;
  sessionId?: string;
}

/** one HTTP/1.1 request on an open TLS socket, waiting for the whole response (content-length or chunked) */
function request(socket: tls.TLSSocket, head: string, body = ''): Promise<Response> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headers = buf.subarray(0, end).toString('latin1');
      const rest = buf.subarray(end + 4);
      const length = /\r\ncontent-length: *(\d+)/i.exec(headers);
      const complete = length ? rest.length >= Number(length[1]) : /\r\ntransfer-encoding: *chunked/i.test(headers) ? rest.includes('0\r\n\r\n') : true;
      if (!complete) return;
      socket.off('data', onData);
      socket.off('error', reject);
      const sid = /\r\nmcp-session-id: *([^\r]+)/i.exec(headers)?.[1];
      resolve({ status: Number(headers.split(' ')[1]), ...(sid ? { sessionId: sid } : {}) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`${head}host: localhost\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

async function client(): Promise<void> {
  const [dir, portArg, modeArg] = process.argv.slice(3) as [string, string, Mode];
  const port = Number(portArg);
  const read = (f: string) => fs.readFileSync(path.join(dir, f));
  const context = tls.createSecureContext({ cert: read('client.crt'), key: read('client.key'), ca: read('root.crt') });
  const sockets: tls.TLSSocket[] = [];
  const open = async (): Promise<void> => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: context });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    sockets.push(socket);
    if (modeArg !== 'mcp') {
      const r = await request(socket, 'GET / HTTP/1.1\r\n');
      if (r.status !== 200) throw new Error(`GET / answered ${r.status}`);
      return;
    }
    const mcp = 'content-type: application/json\r\naccept: application/json, text/event-stream\r\n';
    const init = await request(socket, `POST /mcp HTTP/1.1\r\n${mcp}`, INIT);
    if (init.status !== 200 || !init.sessionId) throw new Error(`initialize answered ${init.status}${init.sessionId ? '' : ' without mcp-session-id'}`);
    const done = await request(socket, `POST /mcp HTTP/1.1\r\n${mcp}mcp-session-id: ${init.sessionId}\r\nmcp-protocol-version: 2025-06-18\r\n`, INITIALIZED);
    if (done.status !== 202) throw new Error(`notifications/initialized answered ${done.status}`);
  };
  process.on('message', async (m) => {
    const want = (m as { open?: number }).open;
    if (want === undefined) return;
    try {
      let started = sockets.length;
      await Promise.all(
        Array.from({ length: PARALLEL }, async () => {
          while (started < want) {
            started++;
            await open();
          }
        }),
      );
      process.send?.({ open: sockets.length });
    } catch (e) {
      process.send?.({ error: (e as Error).message });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ ready: true });
}

// ---------------------------------------------------------------- the measuring side
function ask<T>(child: ChildProcess, message: unknown, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Record<string, unknown>) => {
      if ('error' in m) return done(() => reject(new Error(String(m.error))));
      if (key in m) done(() => resolve(m as T));
    };
    const onExit = (code: number | null) => done(() => reject(new Error(`a bench process exited (${code})`)));
    const done = (f: () => void) => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      f();
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (message !== undefined) child.send(message as string);
  });
}

interface Step {
  n: number;
  heap: number;
  rss: number;
}

async function measureMode(mode: Mode, dir: string): Promise<Step[]> {
  const server = fork(self, ['server', mode, dir], { execArgv: ['--expose-gc', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const clients: ChildProcess[] = [];
  try {
    const { port } = await ask<{ port: number }>(server, undefined, 'port');
    const mem = async () => {
      const r = await ask<{ mem: NodeJS.MemoryUsage; connections: number }>(server, 'mem', 'mem');
      return { heap: r.mem.heapUsed + r.mem.external, rss: r.mem.rss, connections: r.connections };
    };
    const newClient = async () => {
      const c = fork(self, ['client', dir, String(port), mode], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      clients.push(c);
      await ask(c, undefined, 'ready');
      return c;
    };
    // warm-up: code paths loaded and JIT-compiled, then closed again (not counted)
    const warm = await newClient();
    await ask(warm, { open: 20 }, 'open');
    warm.kill();
    await new Promise((r) => setTimeout(r, 500));
    const base = await mem();
    const steps: Step[] = [{ n: 0, heap: base.heap, rss: base.rss }];
    const c = await newClient();
    for (const n of STEPS) {
      const t0 = performance.now();
      await ask(c, { open: n }, 'open');
      const m = await mem();
      if (m.connections < n) throw new Error(`${mode}: the server holds ${m.connections} connections, ${n} were opened (did it close idle ones?)`);
      steps.push({ n, heap: m.heap, rss: m.rss });
      console.log(`  ${mode}: ${n} open (${((performance.now() - t0) / 1000).toFixed(1)} s), heap+ext ${(m.heap / 1048576).toFixed(1)} MB, rss ${(m.rss / 1048576).toFixed(1)} MB`);
    }
    return steps;
  } finally {
    for (const c of clients) c.kill();
    server.kill();
  }
}

async function main(): Promise<void> {
  // bounded: a handshake that never completes must not hold the run (and the suite) for ever
  const limitMs = Number(process.env.BENCH_CONN_TIMEOUT_S ?? 1800) * 1000;
  setTimeout(() => {
    console.error(`bench/connections: not done after ${limitMs / 1000} s (BENCH_CONN_TIMEOUT_S), giving up`);
    process.exit(1); // the children see the IPC channel close and exit
  }, limitMs).unref();
  const need = (STEPS.at(-1) ?? 0) + 100;
  const limit = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
  if (Number.isFinite(limit) && limit < need) {
    console.error(`bench/connections: ${need} file descriptors needed per process, ulimit -n is ${limit}: run \`ulimit -n ${need}\` first, or fewer connections (BENCH_CONN_N=1000)`);
    process.exit(2);
  }
  const { initCa } = await import('../src/ca/init.js');
  const { Authority } = await import('../src/ca/authority.js');
  const { pemEncode } = await import('../src/x509/pem.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-connections-'));
  const pki = path.join(dir, 'pki');
  initCa({ dir: pki, trustDomain: 'bench.test', rootTtlMs: 10 * 365 * 86_400_000, intermediateTtlMs: 5 * 365 * 86_400_000 });
  const ca = Authority.open(pki);
  const srv = await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] });
  const cli = await ca.issueClient({ kind: 'user', id: 'bench', teams: ['bench'], roles: [] });
  const write = (name: string, data: string | Buffer) => fs.writeFileSync(path.join(dir, name), data);
  write('server.crt', srv.chainPem);
  write('server.key', pemEncode('PRIVATE KEY', srv.key!.pkcs8));
  write('client.crt', cli.chainPem);
  write('client.key', pemEncode('PRIVATE KEY', cli.key!.pkcs8));
  write('root.crt', ca.rootPem);

  console.log(`bench/connections: ${STEPS.join(', ')} idle connections, ${os.cpus().length} cores, load ${os.loadavg()[0]?.toFixed(1)}`);
  const rows: { label: string; steps: Step[] }[] = [];
  try {
    for (const [mode, label] of [['node', 'node:https'], ['mtls', 'mtls'], ['mcp', 'mcp session']] as const) rows.push({ label, steps: await measureMode(mode, dir) });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const kb = (b: number) => (b / 1024).toFixed(1);
  const base = rows[0] as { steps: Step[] };
  const slope = (s: Step[], i: number, k: 'heap' | 'rss') => ((s[i] as Step)[k] - (s[i - 1] as Step)[k]) / ((s[i] as Step).n - (s[i - 1] as Step).n);
  const w = [12, 13, 15, 9, 10, 9];
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i] ?? 0)).join('  ');
  console.log(line(['server', 'connections', 'heap+ext KB/c', 'vs node', 'rss KB/c', 'vs node']));
  for (const { label, steps } of rows) {
    for (let i = 1; i < steps.length; i++) {
      const h = slope(steps, i, 'heap');
      const r = slope(steps, i, 'rss');
      const hb = slope(base.steps, i, 'heap');
      const rb = slope(base.steps, i, 'rss');
      const diff = (x: number, b: number) => (label === 'node:https' ? 'baseline' : `${x - b >= 0 ? '+' : ''}${kb(x - b)}`);
      console.log(line([label, `${(steps[i - 1] as Step).n}->${(steps[i] as Step).n}`, kb(h), diff(h, hb), kb(r), diff(r, rb)]));
    }
  }
  console.log('KB/c: memory added per connection between two steps, after gc; vs node: the difference from bare node:https in the same run (target: under +50 KB for mtls)');
  console.log('mcp session: a connection holding one stateful MCP session; its difference from mtls is the cost of the session itself');
}

if (process.argv[2] === 'server') await serve(process.argv[3] as Mode, process.argv[4] as string);
else if (process.argv[2] === 'client') await client();
else await main();
