/**
 * Bare MCP SDK servers (1.x and 2.x, plain HTTP on 127.0.0.1:0) and raw requests for each
 * protocol revision: the reference an mcp-mtls listener is compared with (what the SDK
 * itself answers), for the per-revision tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpHandler, McpServer as McpServer2, type ServerOptions as ServerOptions2 } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { McpServer as McpServer1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Dispatcher } from 'undici';
import { request } from 'undici';

/** Registers on an SDK 1.x or 2.x McpServer (the same public API). */
export type Build = (server: McpServer1 | McpServer2) => void;

export interface BareServer {
  readonly url: string;
  close(): Promise<void>;
}

const listen = async (server: http.Server): Promise<string> => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
};

/** A stateless SDK 1.x server (a server per request, JSON answers). */
export async function bareSdk1(build: Build): Promise<BareServer> {
  const server = http.createServer(async (req, res) => {
    const s = new McpServer1({ name: 'bare1', version: '1' });
    build(s);
    const t = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void s.close());
    await s.connect(t);
    await t.handleRequest(req, res);
  });
  const url = await listen(server);
  return { url, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

/** An SDK 2.x server (createMcpHandler, per-request factory, stateless fallback for 2025 clients). */
export async function bareSdk2(build: Build, options: ServerOptions2 = {}): Promise<BareServer> {
  const mcp = createMcpHandler(async () => {
    const s = new McpServer2({ name: 'bare2', version: '1' }, options);
    build(s);
    return s;
  }, { legacy: 'stateless' });
  const node = toNodeHandler(mcp);
  const server = http.createServer((req, res) => void node(req as never, res as never));
  const url = await listen(server);
  return { url, close: async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); await mcp.close(); } };
}

export type Revision = '2025-11-25' | '2026-07-28';

const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };

/** A request as a client of `revision` sends it: body and headers (2026-07-28: envelope, Mcp-Method, Mcp-Name). */
export function rawRequest(revision: Revision, id: number, method: string, params: Record<string, unknown> = {}): { body: unknown; headers: Record<string, string> } {
  if (revision === '2025-11-25') return { body: { jsonrpc: '2.0', id, method, params }, headers: { 'mcp-protocol-version': revision } };
  const name = method === 'resources/read' ? params.uri : method === 'tools/call' || method === 'prompts/get' ? params.name : undefined;
  return {
    body: { jsonrpc: '2.0', id, method, params: { ...params, _meta: ENVELOPE } },
    headers: { 'mcp-protocol-version': revision, 'mcp-method': method, ...(typeof name === 'string' ? { 'mcp-name': name } : {}) },
  };
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  /** the JSON-RPC answer: the JSON body, or the first SSE message with an id */
  readonly message: unknown;
}

/** POSTs a request and reads its answer, JSON or SSE alike. */
export async function post(url: string, req: { body: unknown; headers: Record<string, string> }, dispatcher?: Dispatcher, extra: Record<string, string> = {}): Promise<RawAnswer> {
  const r = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...req.headers, ...extra },
    body: JSON.stringify(req.body),
    ...(dispatcher ? { dispatcher } : {}),
  });
  const text = await r.body.text();
  let message: unknown = undefined;
  if (String(r.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    for (const line of text.split('\n')) {
      // a priming event (2025-11-25 resumable streams) has empty data
      if (!line.startsWith('data:') || line.slice(5).trim() === '') continue;
      const m = JSON.parse(line.slice(5));
      if (m && typeof m === 'object' && 'id' in m) {
        message = m;
        break;
      }
    }
  } else message = text === '' ? undefined : JSON.parse(text);
  return { status: r.statusCode, headers: r.headers, message };
}
