/**
 * The conformance target on the MCP SDK 2.x packages (protocol 2026-07-28, per-request serving
 * with `createMcpHandler`): the server scenarios of suite 0.2.0-alpha.12 for that revision, written
 * from the scenarios' requirements. `buildSdk2` registers it on an McpServer (the 2.x adapter mounts
 * the same build); `startDirectSdk2` serves it bare on plain http behind a loopback Host/Origin
 * check, as the SDK's documentation asks of a localhost server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CLIENT_CAPABILITIES_META_KEY,
  createMcpHandler,
  createRequestStateCodec,
  fromJsonSchema,
  inputRequired,
  McpServer,
  ResourceTemplate,
  type ServerContext,
  type ServerNotifier,
  type ServerOptions,
} from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { PNG, WAV, TEXT, mixedContent, schema2020Full, sleep, loopbackOnly } from './content.js';
import { registerSuitePrompts } from './prompts-sdk2.js';
import type { DirectServer } from './target-sdk1.js';

/** the part of a list-changed publisher the trigger tools use (createMcpHandler's `notify`, the adapter's per-caller `notify`) */
export type ListNotifier = Pick<ServerNotifier, 'toolsChanged' | 'promptsChanged'>;

const CACHE = { ttlMs: 60_000, cacheScope: 'public' as const };

// integrity-protected requestState (input-required-result-tampered-state)
const stateCodec = createRequestStateCodec<{ round: number; tool: string }>({ key: 'mcp-mtls conformance target: requestState key, 32+ bytes' });

export const SDK2_SERVER_OPTIONS: ServerOptions = {
  capabilities: { logging: {}, completions: {}, tools: { listChanged: true }, prompts: { listChanged: true }, resources: { listChanged: true } },
  cacheHints: { 'tools/list': CACHE, 'prompts/list': CACHE, 'resources/list': CACHE, 'resources/templates/list': CACHE, 'resources/read': CACHE },
  requestState: { verify: (state: string, ctx: ServerContext) => stateCodec.verify(state, ctx) },
};


const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
const schema2020 = fromJsonSchema(schema2020Full as never);
const headerParamSchema = fromJsonSchema({ type: 'object', properties: { region: { type: 'string', 'x-mcp-header': 'Region' } }, required: ['region'] } as never);
const nameSchema = { type: 'object' as const, properties: { name: { type: 'string' as const } }, required: ['name'] };

type Responses = Record<string, unknown> | undefined;
const responses = (ctx: ServerContext): Responses => ctx.mcpReq.inputResponses;
/** the accepted content of an elicitation response, or undefined when absent or malformed */
function elicited(r: Responses, key: string): Record<string, unknown> | undefined {
  const v = r?.[key] as { action?: unknown; content?: unknown } | undefined;
  if (!v || typeof v !== 'object' || v.action !== 'accept' || typeof v.content !== 'object' || v.content === null) return undefined;
  return v.content as Record<string, unknown>;
}
function sampled(r: Responses, key: string): string | undefined {
  const v = r?.[key] as { content?: { type?: string; text?: string } } | undefined;
  return v && typeof v === 'object' && v.content?.type === 'text' ? v.content.text : undefined;
}
function roots(r: Responses, key: string): { uri: string }[] | undefined {
  const v = r?.[key] as { roots?: unknown } | undefined;
  return v && typeof v === 'object' && Array.isArray(v.roots) ? (v.roots as { uri: string }[]) : undefined;
}
const askName = (message = 'What is your name?') => inputRequired.elicit({ message, requestedSchema: nameSchema });
const clientCaps = (ctx: ServerContext) => ((ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[CLIENT_CAPABILITIES_META_KEY] ?? {}) as Record<string, unknown>;

/**
 * Registers every tool, resource and prompt the 2026-07-28 server scenarios call; the
 * test_trigger_*_change tools publish list changes through `notifier()` (the handler serving
 * this server: createMcpHandler's `notify`, or whatever the adapter exposes; none: no-op).
 */
export function buildSdk2(server: McpServer, notifier: () => ListNotifier | undefined = () => undefined): void {
  server.registerTool('test_simple_text', { description: 'returns simple text' }, async () => text(TEXT.simple));
  server.registerTool('test_image_content', { description: 'returns an image' }, async () => ({ content: [{ type: 'image' as const, data: PNG, mimeType: 'image/png' }] }));
  server.registerTool('test_audio_content', { description: 'returns audio' }, async () => ({ content: [{ type: 'audio' as const, data: WAV, mimeType: 'audio/wav' }] }));
  server.registerTool('test_embedded_resource', { description: 'returns an embedded resource' }, async () => ({
    content: [{ type: 'resource' as const, resource: { uri: TEXT.embeddedUri, mimeType: 'text/plain', text: TEXT.embedded } }],
  }));
  server.registerTool('test_multiple_content_types', { description: 'returns text, image and resource' }, async () => ({ content: mixedContent }));
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
  for (const name of ['test_tool_with_logging', 'test_logging_tool']) {
    server.registerTool(name, { description: 'logs three messages while it runs (only when the request asks for a log level)' }, async (ctx) => {
      await ctx.mcpReq.log('info', 'Tool execution started');
      await sleep(50);
      await ctx.mcpReq.log('info', 'Tool processing data');
      await sleep(50);
      await ctx.mcpReq.log('info', 'Tool execution completed');
      return text('Logging tool completed');
    });
  }
  server.registerTool('json_schema_2020_12_tool', { description: 'Tool with JSON Schema 2020-12 features', inputSchema: schema2020 }, async () => text('ok'));
  // asks for a sampling input: the SDK answers -32021 when the request does not declare sampling
  server.registerTool('test_missing_capability', { description: 'needs the client to declare sampling' }, async (ctx) => {
    const answer = sampled(responses(ctx), 'probe');
    if (answer !== undefined) return text(`sampled: ${answer}`);
    return inputRequired({ inputRequests: { probe: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'Say hello' } }], maxTokens: 10 }) } });
  });
  // SEP-2243: a parameter mirrored in an Mcp-Param-Region header, which the SDK checks against the body
  server.registerTool('test_header_param', { description: 'a tool whose region argument travels in a header too', inputSchema: headerParamSchema }, async (args) => text(`region ${String((args as { region?: unknown }).region)}`));
  server.registerTool('test_trigger_tool_change', { description: 'publishes tools/list_changed' }, async () => {
    notifier()?.toolsChanged();
    return text(notifier() ? 'tools changed' : 'no notifier');
  });
  server.registerTool('test_trigger_prompt_change', { description: 'publishes prompts/list_changed' }, async () => {
    notifier()?.promptsChanged();
    return text(notifier() ? 'prompts changed' : 'no notifier');
  });
  server.registerTool('test_streaming_elicitation', { description: 'asks for a name, input-required style' }, async (ctx) => {
    const who = elicited(responses(ctx), 'user_name');
    return who ? text(`Hello, ${String(who.name)}!`) : inputRequired({ inputRequests: { user_name: askName() } });
  });

  // SEP-2322: multi-round-trip input
  server.registerTool('test_input_required_result_elicitation', { description: 'asks for a name' }, async (ctx) => {
    const who = elicited(responses(ctx), 'user_name');
    return who && typeof who.name === 'string' ? text(`Hello, ${who.name}!`) : inputRequired({ inputRequests: { user_name: askName() } });
  });
  server.registerTool('test_input_required_result_sampling', { description: 'asks the client to sample' }, async (ctx) => {
    const answer = sampled(responses(ctx), 'capital_question');
    if (answer !== undefined) return text(`The model said: ${answer}`);
    return inputRequired({ inputRequests: { capital_question: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }], maxTokens: 100 }) } });
  });
  server.registerTool('test_input_required_result_list_roots', { description: 'asks for the client roots' }, async (ctx) => {
    const r = roots(responses(ctx), 'client_roots');
    return r ? text(`Roots: ${r.map((x) => x.uri).join(', ') || '(none)'}`) : inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
  });
  server.registerTool('test_input_required_result_request_state', { description: 'round-trips requestState' }, async (ctx) => {
    const state = ctx.mcpReq.requestState<{ round: number; tool: string }>();
    if (state?.tool === 'request_state' && responses(ctx)?.confirm) return text('state-ok: confirmed');
    return inputRequired({
      inputRequests: { confirm: inputRequired.elicit({ message: 'Please confirm', requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } }) },
      requestState: await stateCodec.mint({ round: 1, tool: 'request_state' }),
    });
  });
  server.registerTool('test_input_required_result_multiple_inputs', { description: 'asks for three inputs at once' }, async (ctx) => {
    const r = responses(ctx);
    const state = ctx.mcpReq.requestState<{ round: number; tool: string }>();
    if (state?.tool === 'multiple' && r?.user_name && r.greeting && r.client_roots) return text(`All inputs received: name=${JSON.stringify(elicited(r, 'user_name') ?? {})}, greeting=${sampled(r, 'greeting') ?? ''}, roots=${roots(r, 'client_roots')?.length ?? 0}`);
    return inputRequired({
      inputRequests: {
        user_name: askName(),
        greeting: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }], maxTokens: 50 }),
        client_roots: inputRequired.listRoots(),
      },
      requestState: await stateCodec.mint({ round: 1, tool: 'multiple' }),
    });
  });
  server.registerTool('test_input_required_result_multi_round', { description: 'asks twice' }, async (ctx) => {
    const r = responses(ctx);
    const state = ctx.mcpReq.requestState<{ round: number; tool: string }>();
    if (state?.tool === 'multi_round' && state.round === 2 && elicited(r, 'step2')) return text(`Done: color=${String(elicited(r, 'step2')!.color)}`);
    if (state?.tool === 'multi_round' && state.round === 1 && elicited(r, 'step1')) {
      return inputRequired({
        inputRequests: { step2: inputRequired.elicit({ message: 'Step 2: What is your favorite color?', requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] } }) },
        requestState: await stateCodec.mint({ round: 2, tool: 'multi_round' }),
      });
    }
    return inputRequired({ inputRequests: { step1: askName('Step 1: What is your name?') }, requestState: await stateCodec.mint({ round: 1, tool: 'multi_round' }) });
  });
  server.registerTool('test_input_required_result_tampered_state', { description: 'rejects a tampered requestState (the codec verifies it)' }, async (ctx) => {
    const state = ctx.mcpReq.requestState<{ round: number; tool: string }>();
    if (state?.tool === 'tampered') return text('state verified');
    return inputRequired({ inputRequests: { confirm: askName() }, requestState: await stateCodec.mint({ round: 1, tool: 'tampered' }) });
  });
  server.registerTool('test_input_required_result_capabilities', { description: 'asks only for what the client declared' }, async (ctx) => {
    const r = responses(ctx);
    if (r && Object.keys(r).length) return text('inputs received');
    const caps = clientCaps(ctx);
    const requests: Record<string, ReturnType<typeof askName>> = {};
    if (caps.elicitation) requests.user_name = askName();
    if (caps.sampling) requests.greeting = inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }], maxTokens: 50 });
    if (caps.roots) requests.client_roots = inputRequired.listRoots();
    if (!Object.keys(requests).length) return text('the client declared nothing to ask');
    return inputRequired({ inputRequests: requests });
  });
  server.registerPrompt('test_input_required_result_prompt', { description: 'a prompt that asks for context first' }, async (ctx) => {
    const c = elicited(responses(ctx), 'user_context');
    if (c) return { messages: [{ role: 'user' as const, content: { type: 'text' as const, text: `Context: ${String(c.context)}` } }] };
    return inputRequired({ inputRequests: { user_context: inputRequired.elicit({ message: 'What context should the prompt use?', requestedSchema: { type: 'object', properties: { context: { type: 'string' } }, required: ['context'] } }) } });
  });

  server.registerResource('static-text', 'test://static-text', { description: 'a static text resource', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: TEXT.staticText }],
  }));
  server.registerResource('static-binary', 'test://static-binary', { description: 'a static binary resource', mimeType: 'image/png' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG }],
  }));
  server.registerResource('template', new ResourceTemplate('test://template/{id}/data', { list: undefined }), { description: 'data by id', mimeType: 'application/json' }, async (uri, { id }) => ({
    contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${String(id)}` }) }],
  }));

  registerSuitePrompts(server);
}

/** The bare SDK 2.x server: createMcpHandler with a per-request factory, loopback Host/Origin only. */
export async function startDirectSdk2(): Promise<DirectServer> {
  const mcp = createMcpHandler(
    () => {
      const server = new McpServer({ name: 'mcp-mtls-conformance-sdk2', version: '1.0.0' }, SDK2_SERVER_OPTIONS);
      buildSdk2(server, () => mcp.notify);
      return server;
    },
    { legacy: 'stateless' },
  );
  const node = toNodeHandler(mcp);
  const server = http.createServer((req, res) => {
    if (!loopbackOnly(req.headers)) {
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Forbidden: Host or Origin is not a loopback name' } }));
      return;
    }
    void node(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://localhost:${port}/mcp`,
    port,
    close: async () => {
      await mcp.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
