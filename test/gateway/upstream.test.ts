/**
 * The upstream answer as upstream.ts reads it (undici's dispatch API, no body stream for a JSON
 * answer): a JSON answer that comes in many chunks arrives whole and decided; one the upstream
 * cuts short is not forwarded; an SSE answer sent slowly, event by event, still streams through.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { policyFromText } from '../../src/policy/compile.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const POLICY = 'version: 1\nrules:\n  - id: dev\n    subjects: { teams: [dev] }\n    tools: ["*"]\n';
// 2 MB of text in one tool result: many TCP reads, so many chunks reach the gateway
const BIG = 'x'.repeat(2 * 1024 * 1024);
const answer = (id: unknown, text: string) => JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }] } });

let upstream: http.Server;
let gateway: MtlsServer;
let gw: ReturnType<typeof createGatewayHandler>;
let bob: { cert: string; key: string; ca: string };
const audit = memoryAudit();
const logged: string[] = [];

before(async () => {
  upstream = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const id = (JSON.parse(body) as { id?: unknown }).id;
      const mode = req.url!.split('/')[1];
      if (mode === 'big') {
        // written in 64 KiB pieces, each its own write
        const whole = Buffer.from(answer(id, BIG));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(whole.length) });
        for (let i = 0; i < whole.length; i += 65536) res.write(whole.subarray(i, i + 65536));
        return res.end();
      }
      if (mode === 'cut') {
        // declares the whole answer, sends half of it, and closes the connection
        const whole = Buffer.from(answer(id, 'y'.repeat(200_000)));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(whole.length) });
        res.write(whole.subarray(0, whole.length / 2), () => res.socket?.destroy());
        return;
      }
      if (mode === 'slow-sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const note = (n: number) => `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: n } })}\n\n`;
        res.write(note(1));
        setTimeout(() => res.write(note(2)), 100);
        setTimeout(() => res.end(`data: ${answer(id, 'done')}\n\n`), 200);
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const r = await pki.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
  bob = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  const policy = policyFromText(POLICY);
  gw = createGatewayHandler({
    routes: ['big', 'cut', 'slow-sse'].map((m) => ({ prefix: `/${m}`, upstream: new URL(`${base}/${m}`), policy: () => policy })),
    audit,
    upstreamTimeoutMs: 5000,
    log: (line) => logged.push(line),
  });
  gateway = createMtlsServer({ ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), audit, log: () => undefined }, gw);
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
});

after(async () => {
  await gw.close();
  gateway.closeAllConnections();
  await new Promise((r) => gateway.close(r));
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

async function call(route: string): Promise<Response> {
  const agent = createMtlsAgent(bundleOf(bob));
  const res = await createMtlsFetch(agent)(`https://localhost:${(gateway.address() as AddressInfo).port}/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: {} } }),
    signal: AbortSignal.timeout(10_000),
  });
  return res;
}

test('a JSON answer that arrives in many chunks is forwarded whole', async () => {
  const res = await call('big');
  assert.equal(res.status, 200);
  const got = (await res.json()) as { id: unknown; result: { content: { text: string }[] } };
  assert.equal(got.id, 7);
  assert.equal(got.result.content[0]!.text.length, BIG.length);
  assert.equal(got.result.content[0]!.text, BIG);
});

test('a JSON answer the upstream cuts short is not forwarded, and the failure is logged', async () => {
  const before = logged.length;
  const outcome = await call('cut').then(
    async (res) => ({ status: res.status, body: await res.text().catch((e: Error) => `cut: ${e.message}`) }),
    (e: Error) => ({ status: 0, body: `failed: ${e.message}` }),
  );
  // never half an answer: the connection is cut (no status), or the answer is an error
  assert.ok(!outcome.body.includes('"result"'), `half an answer reached the client: ${outcome.status} ${outcome.body.slice(0, 120)}`);
  for (let i = 0; i < 50 && logged.length === before; i++) await new Promise((r) => setTimeout(r, 20));
  // as a failed stream from the upstream (proxy.ts), not as an answer the gateway read and refused
  assert.ok(logged.slice(before).some((l) => /^streaming from http:\/\/127\.0\.0\.1:\d+\/cut: /.test(l)), `not logged as a cut answer: ${logged.slice(before).join(' | ')}`);
});

test('an SSE answer sent slowly streams through event by event, the result last', async () => {
  const res = await call('slow-sse');
  assert.equal(res.status, 200);
  assert.match(String(res.headers.get('content-type')), /text\/event-stream/);
  const text = await res.text();
  const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as { method?: string; id?: unknown });
  assert.deepEqual(data.map((d) => d.method ?? `answer ${String(d.id)}`), ['notifications/progress', 'notifications/progress', 'answer 7']);
});
