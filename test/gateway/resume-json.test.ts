/**
 * A resumed stream answered with JSON instead of SSE (an upstream may): the gateway decides it
 * as the stream it resumes, a second answer to a request already answered included (found
 * reviewing #19 as an attacker: the JSON path ignored what the stream had answered, so a
 * resumption could deliver a second answer to one request id).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const POLICY = 'version: 1\nrules:\n  - id: dev-poll\n    subjects: { teams: [dev] }\n    tools: [poll]\n';
const ALL_TOOLS = [{ name: 'poll', inputSchema: { type: 'object' } }, { name: 'admin_secret', inputSchema: { type: 'object' } }];
let crafted: http.Server;
let gateway: MtlsServer;
let gw: ReturnType<typeof createGatewayHandler>;
let files: { cert: string; key: string; ca: string };

before(async () => {
  // its POST stream: a priming event and the answer; its replay: the same answer again, as JSON
  crafted = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.method === 'POST') {
        const m = JSON.parse(body) as { id: unknown; method: string };
        res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'crafted-session' });
        if (m.method === 'initialize') return res.end(`id: init\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'c', version: '1' } } })}\n\n`);
        return res.end(`id: p1\nretry: 50\ndata: \n\nid: p2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { tools: ALL_TOOLS } })}\n\n`);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify([{ jsonrpc: '2.0', id: 7, result: { tools: ALL_TOOLS } }]));
    });
  });
  await new Promise<void>((r) => crafted.listen(0, '127.0.0.1', r));
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const r = await pki.issue(['issue', 'client', '--user', 'bob', '--team', 'dev']);
  files = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  const policy = policyFromText(POLICY);
  gw = createGatewayHandler({ routes: [{ prefix: '/mcp', upstream: new URL(`http://127.0.0.1:${(crafted.address() as AddressInfo).port}/mcp`), policy: () => policy }], log: () => undefined });
  gateway = createMtlsServer({ ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), log: () => undefined }, gw);
  await new Promise<void>((res) => gateway.listen(0, '127.0.0.1', res));
});
after(async () => {
  crafted.closeAllConnections();
  crafted.close();
  gateway.closeAllConnections();
  gateway.close();
  await gw.close();
});

test('a resumption answered with JSON carries no second answer to a request its stream answered', async () => {
  const agent = createMtlsAgent(bundleOf(files));
  const f = createMtlsFetch(agent);
  const url = `https://localhost:${(gateway.address() as AddressInfo).port}/mcp`;
  try {
    const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    const init = await f(url, { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) });
    await init.text();
    const sid = init.headers.get('mcp-session-id')!;
    const live = await (await f(url, { method: 'POST', headers: { ...h, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }) })).text();
    assert.match(live, /"id":7/);
    assert.doesNotMatch(live, /admin_secret/);
    const replay = await f(url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', 'last-event-id': 'p1' } });
    const text = await replay.text();
    assert.doesNotMatch(text, /admin_secret/);
    assert.doesNotMatch(text, /"tools"/, `a second answer to id 7 on the resumption: ${replay.status} ${text}`);
  } finally {
    await agent.close();
  }
});
