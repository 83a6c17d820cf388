/**
 * The conformance target on `@modelcontextprotocol/sdk` 1.x (protocol 2025-11-25): every server
 * scenario of the suite 0.1.16, written from the scenarios' requirements. `buildSdk1` registers
 * it on an McpServer (so the 1.x adapter can mount the very same server); `startDirectSdk1` serves
 * it stateful on plain http, as the suite expects of a bare server (sessions, an event store so
 * streams can resume, DNS rebinding protection).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import type { ServerOptions } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { EventStore } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { CreateMessageResultSchema, ElicitResultSchema, SubscribeRequestSchema, UnsubscribeRequestSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { PNG, WAV, TEXT, mixedContent, userSchema, defaultsSchema, enumsSchema, schema2020Meta, sleep, loopbackOnly } from './content.js';

/** the SSE reconnection delay the bare server announces (the 1.x adapter is given the same) */
export const SDK1_RETRY_MS = 500;

export const SDK1_SERVER_OPTIONS: ServerOptions = { capabilities: { logging: {}, resources: { subscribe: true, listChanged: true }, completions: {} } };

// schemas built once (zod compiles a schema on its first parse)
const promptArg = { prompt: z.string() };
const messageArg = { message: z.string() };
const schema2020 = z.object({ name: z.string().optional(), address: z.any().meta({ $ref: '#/$defs/address' }) }).strict().meta(schema2020Meta);
const promptArgs = { arg1: completable(z.string(), (v) => ['paris', 'park', 'party'].filter((c) => c.startsWith(v ?? ''))), arg2: z.string() };
const resourceUriArg = { resourceUri: z.string() };

const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });

/** Registers every tool, resource and prompt the 2025-11-25 server scenarios call. */
export function buildSdk1(server: McpServer): void {
  server.registerTool('test_simple_text', { description: 'returns simple text' }, async () => text(TEXT.simple));
  server.registerTool('test_image_content', { description: 'returns an image' }, async () => ({ content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] }));
  server.registerTool('test_audio_content', { description: 'returns audio' }, async () => ({ content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }));
  server.registerTool('test_embedded_resource', { description: 'returns an embedded resource' }, async () => ({
    content: [{ type: 'resource', resource: { uri: TEXT.embeddedUri, mimeType: 'text/plain', text: TEXT.embedded } }],
  }));
  server.registerTool('test_multiple_content_types', { description: 'returns text, image and resource' }, async () => ({ content: mixedContent }));
  server.registerTool('test_tool_with_logging', { description: 'logs three messages while it runs' }, async (extra) => {
    const log = (data: string) => extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data } });
    await log('Tool execution started');
    await sleep(50);
    await log('Tool processing data');
    await sleep(50);
    await log('Tool execution completed');
    return text('Logging tool completed');
  });
  server.registerTool('test_error_handling', { description: 'always fails' }, async () => {
    throw new Error(TEXT.error);
  });
  server.registerTool('test_tool_with_progress', { description: 'reports progress' }, async (extra) => {
    const token = extra._meta?.progressToken;
    for (const progress of [0, 50, 100]) {
      if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
      if (progress < 100) await sleep(50);
    }
    return text('Progress tool completed');
  });
  server.registerTool('test_sampling', { description: 'asks the client for a completion', inputSchema: promptArg }, async ({ prompt }, extra) => {
    const r = await extra.sendRequest({ method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 } }, CreateMessageResultSchema);
    const content = r.content as { type: string; text?: string };
    return text(`LLM response: ${content.type === 'text' ? content.text : JSON.stringify(content)}`);
  });
  server.registerTool('test_elicitation', { description: 'asks the user', inputSchema: messageArg }, async ({ message }, extra) => {
    const r = await extra.sendRequest({ method: 'elicitation/create', params: { message, requestedSchema: userSchema } }, ElicitResultSchema);
    return text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  });
  server.registerTool('test_elicitation_sep1034_defaults', { description: 'elicitation with defaults' }, async (extra) => {
    const r = await extra.sendRequest({ method: 'elicitation/create', params: { message: 'Please review the defaults', requestedSchema: defaultsSchema } }, ElicitResultSchema);
    return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  });
  server.registerTool('test_elicitation_sep1330_enums', { description: 'elicitation with enums' }, async (extra) => {
    const r = await extra.sendRequest({ method: 'elicitation/create', params: { message: 'Please choose', requestedSchema: enumsSchema as never } }, ElicitResultSchema);
    return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  });
  server.registerTool('json_schema_2020_12_tool', { description: 'Tool with JSON Schema 2020-12 features', inputSchema: schema2020 }, async () => text('ok'));
  server.registerTool('test_reconnection', { description: 'closes its SSE stream mid-call, then answers' }, async (extra) => {
    await sleep(100);
    extra.closeSSEStream?.();
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
    contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }],
  }));
  const subscriptions = new Set<string>();
  server.server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });

  server.registerPrompt('test_simple_prompt', { description: 'a simple prompt' }, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: TEXT.simplePrompt } }] }));
  server.registerPrompt('test_prompt_with_arguments', { description: 'a prompt with arguments', argsSchema: promptArgs }, async ({ arg1, arg2 }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }],
  }));
  server.registerPrompt('test_prompt_with_embedded_resource', { description: 'a prompt embedding a resource', argsSchema: resourceUriArg }, async ({ resourceUri }) => ({
    messages: [
      { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: TEXT.promptResource } } },
      { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
    ],
  }));
  server.registerPrompt('test_prompt_with_image', { description: 'a prompt with an image' }, async () => ({
    messages: [
      { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
      { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
    ],
  }));
}

/** Remembers each stream's messages so a client can resume after the stream closed (Last-Event-ID); bounded. */
export function memoryEventStore(max = 10_000): EventStore {
  const events = new Map<string, { streamId: string; message: JSONRPCMessage }>();
  return {
    async storeEvent(streamId, message) {
      const id = `${streamId}_${Date.now()}_${randomUUID().slice(0, 8)}`;
      events.set(id, { streamId, message });
      if (events.size > max) events.delete(events.keys().next().value as string);
      return id;
    },
    async getStreamIdForEventId(eventId) {
      return events.get(eventId)?.streamId;
    },
    async replayEventsAfter(lastEventId, { send }) {
      const streamId = events.get(lastEventId)?.streamId;
      if (!streamId) throw new Error(`unknown event ${lastEventId}`);
      let after = false;
      for (const [id, e] of events) {
        if (id === lastEventId) after = true;
        else if (after && e.streamId === streamId) await send(id, e.message);
      }
      return streamId;
    },
  };
}

export interface DirectServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The bare SDK 1.x server: stateful sessions, event store and retry interval, loopback Host/Origin only. */
export async function startDirectSdk1(): Promise<DirectServer> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const readBody = async (req: http.IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
  };
  const server = http.createServer(async (req, res) => {
    try {
      if (!loopbackOnly(req.headers)) {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Forbidden: Host or Origin is not a loopback name' } }));
        return;
      }
      const body = req.method === 'POST' ? await readBody(req) : undefined;
      const sid = req.headers['mcp-session-id'] as string | undefined;
      if (sid) {
        const t = sessions.get(sid);
        if (!t) {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
          return;
        }
        return await t.handleRequest(req, res, body);
      }
      if (req.method !== 'POST') {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' } }));
        return;
      }
      const mcp = new McpServer({ name: 'mcp-mtls-conformance-sdk1', version: '1.0.0' }, SDK1_SERVER_OPTIONS);
      buildSdk1(mcp);
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: memoryEventStore(),
        retryInterval: SDK1_RETRY_MS,
        onsessioninitialized: (id) => void sessions.set(id, transport),
        onsessionclosed: (id) => void sessions.delete(id),
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: (e as Error).message } }));
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
