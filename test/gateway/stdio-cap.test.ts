/**
 * The total process cap across stdio routes and the queue at it (issue 21, stdio-budget.ts):
 * 100 concurrent callers over 20 principals on two per-principal routes with the total cap at
 * 8, the fixture's tiny stdio server (real processes, real TLS, SDK 1.x clients). Every call is
 * answered for its own principal, the processes alive (sampled from /proc during the run) never
 * pass 8, and the queue is used. Then the refusals: a full queue and a wait too long are 503
 * with Retry-After and a JSON-RPC error that says why. CAP_CALLERS=N runs fewer callers, CAP_LOG=1
 * prints the gateway's log (both for looking into a failure).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { GatewayConfigSchema } from '../../src/gateway/config.js';
import { startGateway, type RunningGateway } from '../../src/gateway/run.js';
import { ROOT } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const TINY = path.join(ROOT, 'test/fixtures/stdio/tiny-server.mjs');
const PRINCIPALS = Array.from({ length: 20 }, (_, i) => `user-${String(i + 1).padStart(2, '0')}`);
const POLICY = 'version: 1\nrules:\n  - id: dev\n    subjects: { teams: [dev] }\n    tools: ["*"]\n';

type Files = { cert: string; key: string; ca: string };
const clients: Record<string, Files> = {};
let base: string;
let gwFiles: { cert: string; key: string; pki: string };
const running: RunningGateway[] = [];

before(async () => {
  const pki = await makePki();
  base = pki.base;
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  gwFiles = { cert: srv.files.cert, key: srv.files.key as string, pki: pki.pki };
  for (let i = 0; i < PRINCIPALS.length; i += 5) {
    await Promise.all(
      PRINCIPALS.slice(i, i + 5).map(async (who) => {
        const r = await pki.issue(['issue', 'client', '--user', who, '--team', 'dev']);
        clients[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
      }),
    );
  }
  fs.writeFileSync(path.join(base, 'policy.yaml'), POLICY);
});

after(async () => {
  await Promise.all(running.map((g) => g.stop()));
});

async function gateway(marker: string, limits: Record<string, unknown>, routes: string[], extra: Record<string, unknown> = {}, log: (l: string) => void = () => undefined) {
  const policy = path.join(base, 'policy.yaml');
  const gw = await startGateway(
    GatewayConfigSchema.parse({
      listen: '127.0.0.1:0',
      tls: gwFiles,
      upstreamTimeout: '30s',
      stdioLimits: limits,
      // the marker argument lets the test find exactly these processes in /proc
      routes: routes.map((r) => ({ path: r, policy, stdio: { command: process.execPath, args: [TINY, marker], env: { TINY_WHO: '{principal.id}' }, processModel: 'per-principal', maxProcesses: 6, idleTimeout: '1h' } })),
      ...extra,
    }),
    log,
    { env: process.env },
  );
  running.push(gw);
  return { gw, url: `https://localhost:${gw.address.port}` };
}

async function connect(url: string, who: string, shared?: ReturnType<typeof createMtlsAgent>) {
  const agent = shared ?? createMtlsAgent(bundleOf(clients[who]!));
  const client = new Client({ name: `${who}-client`, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: createMtlsFetch(agent) as typeof fetch }));
  return { client, close: async () => { await client.close().catch(() => undefined); if (!shared) await agent.close(); } };
}

const text = (r: unknown) => ((r as { content: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');

/** This process's children (the gateway runs here) alive whose command line carries the marker (exited ones, zombies, have none). */
function alive(marker: string): number {
  let n = 0;
  const children = fs.readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  for (const pid of children) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(marker)) n++;
    } catch {
      // gone while scanning
    }
  }
  return n;
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca: fs.readFileSync(path.join(gwFiles.pki, 'root.crt')) }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
}

test('100 concurrent callers over 20 principals, two routes, total cap 8: every call answered for its own principal, never more than 8 processes, the queue used', { timeout: 120_000 }, async () => {
  const marker = `--cap-test-${crypto.randomUUID()}`;
  const { gw, url } = await gateway(marker, { maxProcesses: 8, queueLength: 200, queueTimeout: '25s' }, ['/mcp/a', '/mcp/b'], {}, process.env.CAP_LOG ? (l) => console.error(new Date().toISOString().slice(14, 23), l) : undefined);
  let most = 0;
  let samples = 0;
  const sampler = setInterval(() => {
    most = Math.max(most, alive(marker));
    samples++;
  }, 10);
  // one connection pool per principal: its five callers are five MCP sessions over it
  const agents = Object.fromEntries(PRINCIPALS.map((p) => [p, createMtlsAgent(bundleOf(clients[p]!))]));
  const started = Date.now();
  const wrong: string[] = [];
  try {
    await Promise.all(
      Array.from({ length: Number(process.env.CAP_CALLERS ?? 100) }, async (_, i) => {
        const who = PRINCIPALS[i % PRINCIPALS.length]!;
        const route = (i % PRINCIPALS.length) % 2 ? '/mcp/a' : '/mcp/b';
        // all 100 are in flight together (the run takes far longer than this), but their TLS handshakes are spread over 1 s:
        // 100 at once, with the processes starting, passed undici's 10 s connect timeout at load ~20 on 2 cores
        await new Promise((r) => setTimeout(r, i * 10));
        const c = await connect(`${url}${route}`, who, agents[who]);
        try {
          for (let k = 0; k < 2; k++) {
            const env = JSON.parse(text(await c.client.callTool({ name: 'env', arguments: {} }))) as { TINY_WHO?: string };
            if (env.TINY_WHO !== who) wrong.push(`caller ${i} (${who}) got ${env.TINY_WHO}`);
          }
        } finally {
          await c.close();
        }
      }),
    );
  } finally {
    clearInterval(sampler);
    await Promise.all(Object.values(agents).map((a) => a.close()));
  }
  const seconds = (Date.now() - started) / 1000;
  most = Math.max(most, alive(marker));
  assert.deepEqual(wrong, [], 'a call answered for another principal');
  assert.ok(most <= 8, `at most 8 processes alive, sampled ${most} (${samples} samples)`);
  assert.ok(most >= 2 && samples > 20, `the sampler saw the processes (${most} at most, ${samples} samples)`);
  const metrics = await get(`${url}/metrics`);
  const event = (name: string) => Number(new RegExp(`^mcp_mtls_gateway_stdio_cap_events_total\\{event="${name}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
  assert.ok(event('queued') > 0, `the queue was used:\n${metrics}`);
  assert.ok(event('evicted') > 0, `idle processes were stopped to make room:\n${metrics}`);
  assert.equal(event('refused_timeout') + event('refused_queue_full'), 0);
  assert.match(metrics, /^mcp_mtls_gateway_stdio_processes_total_max 8$/m);
  const health = JSON.parse(await get(`${url}/healthz`)) as { processesTotal: { running: number; max: number; queued: number } };
  assert.equal(health.processesTotal.max, 8);
  assert.ok(health.processesTotal.running <= 8);
  assert.equal(health.processesTotal.queued, 0);
  console.log(`# ${process.env.CAP_CALLERS ?? 100} callers x 2 calls, 20 principals, cap 8: ${seconds.toFixed(1)} s, at most ${most} processes alive (${samples} samples), queued ${event('queued')}, evicted ${event('evicted')}`);
  assert.ok(seconds < 60, `bounded in time: ${seconds} s`);
  await gw.stop();
  running.splice(running.indexOf(gw), 1);
  for (let i = 0; i < 100 && alive(marker) > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(marker), 0, 'stop() left processes behind');
});

test('at the cap with every process busy: a request waits, then 503 with Retry-After; a full queue is refused at once', { timeout: 60_000 }, async () => {
  const marker = `--cap-test-${crypto.randomUUID()}`;
  const logged: string[] = [];
  const { url } = await gateway(marker, { maxProcesses: 1, queueLength: 1, queueTimeout: '1s' }, ['/mcp'], { upstreamTimeout: '6s' }, (l) => void logged.push(l));
  const alice = await connect(`${url}/mcp`, PRINCIPALS[0]!);
  try {
    // alice's process is busy (a call it never answers) and the only one allowed
    const busy = alice.client.callTool({ name: 'hang', arguments: {} }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 200));
    const init = (who: string) =>
      createMtlsFetch(createMtlsAgent(bundleOf(clients[who]!)))(`${url}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: who, version: '1' } } }),
      });
    const waited = init(PRINCIPALS[1]!);
    await new Promise((r) => setTimeout(r, 100));
    const full = await init(PRINCIPALS[2]!);
    assert.equal(full.status, 503);
    assert.equal(full.headers.get('retry-after'), '1');
    assert.match(((await full.json()) as { error: { message: string } }).error.message, /at most 1 stdio upstream processes run in total; 1 requests wait for a process already: try again later/);
    const slow = await waited;
    assert.equal(slow.status, 503);
    assert.equal(slow.headers.get('retry-after'), '1');
    const body = (await slow.json()) as { id: number; error: { message: string } };
    assert.equal(body.id, 7);
    assert.match(body.error.message, /at most 1 stdio upstream processes run in total, each with a request in flight, and none was free within 1000 ms/);
    assert.ok(alive(marker) <= 1);
    const metrics = await get(`${url}/metrics`);
    assert.match(metrics, /^mcp_mtls_gateway_stdio_cap_events_total\{event="refused_queue_full"\} 1$/m);
    assert.match(metrics, /^mcp_mtls_gateway_stdio_cap_events_total\{event="refused_timeout"\} 1$/m);
    await busy;
  } finally {
    await alice.close();
  }
});
