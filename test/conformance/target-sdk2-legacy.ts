/**
 * The conformance target on the MCP SDK 2.x packages for 2025-11-25 clients (suite 0.1.16): the
 * same scenarios as target-sdk1.ts, written with the 2.x API, served with sessions as the SDK
 * documents a sessionful legacy wiring (`NodeStreamableHTTPServerTransport` per session, an event
 * store, a retry interval). `buildSdk2Legacy` is what the 2.x adapter mounts in stateful mode.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { fromJsonSchema, McpServer, ResourceTemplate, type EventStore, type ServerOptions } from '@modelcontextprotocol/server';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { PNG, WAV, TEXT, mixedContent, userSchema, defaultsSchema, enumsSchema, schema2020Full, sleep, loopbackOnly } from './content.js';
import { registerSuitePrompts } from './prompts-sdk2.js';
import { memoryEventStore, SDK1_RETRY_MS, type DirectServer } from './target-sdk1.js';

export const SDK2_LEGACY_SERVER_OPTIONS: ServerOptions = { capabilities: { logging: {}, completions: {}, resources: { subscribe: true, listChanged: true } } };

const promptArg = { prompt: z.string() };
const messageArg = { message: z.string() };
const schema2020 = fromJsonSchema(schema2020Full as never);
const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
/**
 * SDK 2.4's `ctx.mcpReq.requestSampling` / `elicitInput` send on the session's standalone GET
 * stream unless told which request they belong to: a client that opens its GET stream while the
 * tool runs (the SDK client does, right after initialize) misses the request, and the call times
 * out (1 of 15 calls directly here, most through the gateway's extra hop). Related to the tool
 * call, they travel on its POST stream, as SDK 1.x's `extra.sendRequest` sends them.
 */
const onThisCall = (ctx: { mcpReq: { id: string | number } }) => ({ relatedRequestId: ctx.mcpReq.id });

/** Registers every tool, resource and prompt the 2025-11-25 server scenarios call, on an SDK 2.x McpServer. */
export function buildSdk2Legacy(server: McpServer): void {
  server.registerTool('test_simple_text', { description: 'returns simple text' }, async () => text(TEXT.simple));
  server.registerTool('test_image_content', { description: 'returns an image' }, async () => ({ content: [{ type: 'image' as const, data: PNG, mimeType: 'image/png' }] }));
  server.registerTool('test_audio_content', { description: 'returns audio' }, async () => ({ content: [{ type: 'audio' as const, data: WAV, mimeType: 'audio/wav' }] }));
  server.registerTool('test_embedded_resource', { description: 'returns an embedded resource' }, async () => ({
    content: [{ type: 'resource' as const, resource: { uri: TEXT.embeddedUri, mimeType: 'text/plain', text: TEXT.embedded } }],
  }));
  server.registerTool('test_multiple_content_types', { description: 'returns text, image and resource' }, async () => ({ content: mixedContent }));
  server.registerTool('test_tool_with_logging', { description: 'logs three messages while it runs' }, async (ctx) => {
    await ctx.mcpReq.log('info', 'Tool execution started');
    await sleep(50);
    await ctx.mcpReq.log('info', 'Tool processing data');
    await sleep(50);
    await ctx.mcpReq.log('info', 'Tool execution completed');
    return text('Logging tool completed');
  });
  server.registerTool('test_error_handling', { description: 'always fails' }, async () => {
    throw new Error(TEXT.error);
  });
  server.registerTool('test_tool_with_progress', { description: 'reports progress' }, async (ctx) => {
    const token = ctx.mcpReq._meta?.progressToken;
    for (const progress of [0, 50, 100]) {
      if (token !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
      if (progress < 100) await sleep(50);
    }
    return text('Progress tool completed');
  });
  server.registerTool('test_sampling', { description: 'asks the client for a completion', inputSchema: promptArg }, async ({ prompt }, ctx) => {
    const r = await ctx.mcpReq.requestSampling({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 }, onThisCall(ctx));
    const content = (Array.isArray(r.content) ? r.content[0] : r.content) as { type: string; text?: string };
    return text(`LLM response: ${content.type === 'text' ? content.text : JSON.stringify(content)}`);
  });
  server.registerTool('test_elicitation', { description: 'asks the user', inputSchema: messageArg }, async ({ message }, ctx) => {
    const r = await ctx.mcpReq.elicitInput({ message, requestedSchema: userSchema }, onThisCall(ctx));
    return text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  });
  server.registerTool('test_elicitation_sep1034_defaults', { description: 'elicitation with defaults' }, async (ctx) => {
    const r = await ctx.mcpReq.elicitInput({ message: 'Please review the defaults', requestedSchema: defaultsSchema }, onThisCall(ctx));
    return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  });
  server.registerTool('test_elicitation_sep1330_enums', { description: 'elicitation with enums' }, async (ctx) => {
    const r = await ctx.mcpReq.elicitInput({ message: 'Please choose', requestedSchema: enumsSchema as never }, onThisCall(ctx));
    return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  });
  server.registerTool('json_schema_2020_12_tool', { description: 'Tool with JSON Schema 2020-12 features', inputSchema: schema2020 }, async () => text('ok'));
  server.registerTool('test_reconnection', { description: 'closes its SSE stream mid-call, then answers' }, async (ctx) => {
    await sleep(100);
    ctx.http?.closeSSE?.();
    await sleep(200);
    return text('Reconnection test completed');
  });

  server.registerResource('static-text', 'test://static-text', { description: 'a static text resource', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: TEXT.staticText }],
  }));
  server.registerResource('static-binary', 'test://static-binary', { description: 'a static binary resource', mimeType: 'image/png' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG }],
  }));
  server.registerResource('watched-resource', 'test://watched-resource', { description: 'a resource to subscribe to', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'watched' }],
  }));
  server.registerResource('template', new ResourceTemplate('test://template/{id}/data', { list: undefined }), { description: 'data by id', mimeType: 'application/json' }, async (uri, { id }) => ({
    contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${String(id)}` }) }],
  }));
  const subscriptions = new Set<string>();
  server.server.setRequestHandler('resources/subscribe', async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.server.setRequestHandler('resources/unsubscribe', async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });

  registerSuitePrompts(server);
}

/** The bare SDK 2.x server for 2025-era clients: a session per client (event store, retry interval), loopback Host/Origin only. */
export async function startDirectSdk2Legacy(): Promise<DirectServer> {
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();
  const readBody = async (req: http.IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
  };
  const answer = (res: http.ServerResponse, status: number, code: number, message: string) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }));
  const server = http.createServer(async (req, res) => {
    try {
      if (!loopbackOnly(req.headers)) return answer(res, 403, -32000, 'Forbidden: Host or Origin is not a loopback name');
      const body = req.method === 'POST' ? await readBody(req) : undefined;
      const sid = req.headers['mcp-session-id'] as string | undefined;
      if (sid) {
        const t = sessions.get(sid);
        if (!t) return answer(res, 404, -32001, 'Session not found');
        return await t.handleRequest(req, res, body);
      }
      if (req.method !== 'POST') return answer(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      const mcp = new McpServer({ name: 'mcp-mtls-conformance-sdk2-legacy', version: '1.0.0' }, SDK2_LEGACY_SERVER_OPTIONS);
      buildSdk2Legacy(mcp);
      const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: memoryEventStore() as unknown as EventStore,
        retryInterval: SDK1_RETRY_MS,
        onsessioninitialized: (id) => void sessions.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
        void mcp.close();
      };
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body);
    } catch (e) {
      if (!res.headersSent) answer(res, 500, -32603, (e as Error).message);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://localhost:${port}/mcp`,
    port,
    close: async () => {
      for (const t of sessions.values()) await t.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
