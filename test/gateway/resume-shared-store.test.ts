/**
 * SSE resumption through the gateway in front of an upstream that keeps ONE event store for
 * every session, one that knows each event's stream (getStreamIdForEventId, as a store in a
 * database would; found reviewing #19 as an attacker): every session's standalone GET stream
 * has the same stream id in the SDK ('_GET_stream'), so bob resuming his own GET stream with
 * his own event id is replayed alice's GET-stream messages too (her server-to-client requests,
 * log messages). The gateway drops a replayed event it wrote to another caller's stream.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport, type EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { LoggingMessageNotificationSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const POLICY = `
version: 1
rules:
  - id: everyone
    subjects: { any: true }
    tools: ["*"]
`;

/** one store for every session, by event id, knowing each event's stream */
class SharedStore implements EventStore {
  readonly events = new Map<string, { streamId: string; message: JSONRPCMessage }>();
  #seq = 0;
  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `e${String(++this.#seq).padStart(6, '0')}`;
    this.events.set(id, { streamId, message });
    return id;
  }
  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.get(eventId)?.streamId;
  }
  async replayEventsAfter(lastEventId: string, { send }: { send: (id: string, m: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const last = this.events.get(lastEventId);
    if (!last) return '';
    let after = false;
    for (const [id, e] of this.events) {
      if (id === lastEventId) after = true;
      else if (after && e.streamId === last.streamId && Object.keys(e.message).length > 0) await send(id, e.message);
    }
    return last.streamId;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const shared = new SharedStore();
const transports = new Map<string, StreamableHTTPServerTransport>();
const servers = new Map<string, McpServer>();
let upstream: http.Server;
let gateway: MtlsServer;
let gw: ReturnType<typeof createGatewayHandler>;
const audit = memoryAudit();
const clients: Record<string, { cert: string; key: string; ca: string }> = {};

before(async () => {
  upstream = http.createServer(async (req, res) => {
    const sid = req.headers['mcp-session-id'] as string | undefined;
    const known = sid ? transports.get(sid) : undefined;
    if (known) return known.handleRequest(req, res);
    if (sid) return void res.writeHead(404).end();
    const server = new McpServer({ name: 'shared-store', version: '1' }, { capabilities: { logging: {} } });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      eventStore: shared,
      onsessioninitialized: (id) => {
        transports.set(id, transport);
        servers.set(id, server);
      },
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  for (const who of ['alice', 'bob']) {
    const r = await pki.issue(['issue', 'client', '--user', who, '--team', 'dev']);
    clients[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  }
  const policy = policyFromText(POLICY);
  gw = createGatewayHandler({ routes: [{ prefix: '/mcp', upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`), policy: () => policy }], audit, log: () => undefined });
  gateway = createMtlsServer({ ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), audit, log: () => undefined }, gw);
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
});

after(async () => {
  for (const t of transports.values()) await t.close();
  upstream.closeAllConnections();
  upstream.close();
  gateway.closeAllConnections();
  gateway.close();
  await gw.close();
});

const url = () => `https://localhost:${(gateway.address() as AddressInfo).port}/mcp`;
const say = (sid: string, data: string) => servers.get(sid)!.server.sendLoggingMessage({ level: 'info', data });

/** reads SSE events from a stream until `until` matches one, or the time runs out */
async function readEvents(body: ReadableStream<Uint8Array>, until: (e: string) => boolean, ms: number): Promise<string[]> {
  const reader = body.getReader();
  const events: string[] = [];
  let buf = '';
  const deadline = Date.now() + ms;
  try {
    while (Date.now() < deadline) {
      const r = await Promise.race([reader.read(), sleep(deadline - Date.now()).then(() => undefined)]);
      if (!r || r.done) break;
      buf += new TextDecoder().decode(r.value);
      const parts = buf.split('\n\n');
      buf = parts.pop()!;
      events.push(...parts);
      if (parts.some(until)) break;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return events;
}

test("resuming one's own GET stream does not replay another caller's GET-stream messages from a shared event store", async () => {
  // alice: the real SDK client, with its GET stream open
  const aliceAgent = createMtlsAgent(bundleOf(clients.alice!));
  const alice = new Client({ name: 'alice', version: '1' });
  const heard: string[] = [];
  alice.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void heard.push(String(n.params.data)));
  const aliceTransport = new StreamableHTTPClientTransport(new URL(url()), { fetch: createMtlsFetch(aliceAgent) });
  await alice.connect(aliceTransport);
  // bob: an MCP session of his own, by hand
  const bobAgent = createMtlsAgent(bundleOf(clients.bob!));
  const f = createMtlsFetch(bobAgent);
  try {
    const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    const init = await f(url(), { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bob', version: '1' } } }) });
    await init.text();
    const bobSid = init.headers.get('mcp-session-id')!;
    const sh = { ...h, 'mcp-session-id': bobSid };
    await (await f(url(), { method: 'POST', headers: sh, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
    // bob's GET stream, one message on it: an event id of his own
    const get = await f(url(), { headers: { accept: 'text/event-stream', 'mcp-session-id': bobSid, 'mcp-protocol-version': '2025-11-25' } });
    assert.equal(get.status, 200);
    await sleep(200);
    await say(bobSid, 'hello bob');
    const mine = await readEvents(get.body!, (e) => e.includes('hello bob'), 5000);
    const myId = mine.find((e) => e.includes('hello bob'))!.split('\n').find((l) => l.startsWith('id:'))!.slice(3).trim();
    await sleep(300); // the upstream notices bob's stream closed
    // alice is told something on her GET stream, and hears it
    const aliceSid = aliceTransport.sessionId!;
    for (let i = 0; i < 50 && !transports.get(aliceSid); i++) await sleep(50);
    await say(aliceSid, 'for alice only');
    for (let i = 0; i < 100 && !heard.includes('for alice only'); i++) await sleep(50);
    assert.deepEqual(heard, ['for alice only']);
    // bob resumes his own stream from his own event id
    const resumed = await f(url(), { headers: { accept: 'text/event-stream', 'mcp-session-id': bobSid, 'mcp-protocol-version': '2025-11-25', 'last-event-id': myId } });
    assert.equal(resumed.status, 200);
    const replayed = await readEvents(resumed.body!, (e) => e.includes('for alice only'), 2000);
    assert.deepEqual(replayed.filter((e) => e.includes('for alice only')), [], `bob was replayed alice's message: ${JSON.stringify(replayed)}`);
  } finally {
    await alice.close();
    await aliceAgent.close();
    await bobAgent.close();
  }
});
