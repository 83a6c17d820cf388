/** The adapter for the MCP SDK 2.x packages: see {@link createMcpSdk2Handler}. */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { createMcpHandler, isLegacyRequest, McpServer, type EventStore, type ServerOptions } from '@modelcontextprotocol/server';
import { NodeStreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import type { Identity } from '../identity/identity.js';
import type { Policy } from '../policy/compile.js';
import { AdapterSessions, eventStoreOf, type McpStatefulOptions } from './sessions.js';
import { currentPolicyOf, refusedByEndpoint, type McpAdapterOptions } from './adapter-options.js';
import { hostCheck } from './host-check.js';
import { keepPrivate, readJsonBody, sendJson } from './http-body.js';
import { callerBus, type CallerNotifier } from './sdk2-listen.js';
import { gateMcpBody } from './gate.js';
import { hiddenAnswerFor } from './hidden-targets.js';
import { PER_CALLER_CACHEABLE } from './results.js';
import { buildForCaller } from './surface.js';
import { registerWhoami, whoamiToolName } from './whoami.js';
import { unknownToolsWarning } from './unknown-tools-warning.js';
import type { MtlsHandler, MtlsRequest } from '../mtls/mtls-server.js';

/** Options of {@link createMcpSdk2Handler}. */
export interface McpSdk2Options extends McpAdapterOptions, McpStatefulOptions {
  /** Passed to the SDK's McpServer (its JSON Schema validator is replaced by a shared one). */
  readonly serverOptions?: ServerOptions;
  /**
   * Registers tools, resources and prompts on a fresh McpServer for this caller; called for
   * every request (and, stateful, once per 2025-era session). Define tool schemas outside it:
   * a schema made here is compiled each time.
   */
  readonly build: (server: McpServer, identity: Identity) => void | Promise<void>;
  /** Passed to the SDK: reports out-of-band errors and rejected requests; it does not change the response. */
  readonly onerror?: (error: Error) => void;
}

const sharedValidator = new AjvJsonSchemaValidator();

/**
 * The server's caching hints (2026-07-28, SEP-2549) with `cacheScope: 'private'` on every
 * per-caller result (results.ts, PER_CALLER_CACHEABLE): each caller's server lists what that
 * caller may see, so a `public` hint would let a shared cache give one caller's list to
 * another. The author's `ttlMs` stays.
 */
function privateCacheHints(hints: ServerOptions['cacheHints']): ServerOptions['cacheHints'] {
  const out: NonNullable<ServerOptions['cacheHints']> = { ...hints };
  for (const method of PER_CALLER_CACHEABLE) out[method as keyof typeof out] = { ...hints?.[method as keyof typeof out], cacheScope: 'private' };
  return out;
}

/**
 * The request handler for {@link createMtlsServer} that serves an MCP server built with the
 * MCP SDK 2.x packages (`createMcpHandler` with a per-request factory, on Node through
 * `@modelcontextprotocol/node`'s `toNodeHandler`), under the policy. Serves 2026-07-28
 * traffic and, through the SDK's stateless fallback, 2025-era clients.
 *
 * The same gate and per-caller surface as {@link createMcpSdk1Handler}: each request is
 * decided before the SDK sees it, and `build` runs per request with what the caller may not
 * see removed afterwards. Tools read the caller from `ctx.http.authInfo` (`clientId` =
 * principal, `scopes`, `extra.identity`).
 *
 * `stateful: true` serves 2025-era clients with sessions, as the SDK documents for a
 * sessionful legacy wiring next to a strict modern endpoint: `isLegacyRequest` routes each
 * request; 2026-07-28 requests go to `createMcpHandler` (`legacy: 'reject'`), 2025-era ones to
 * a per-caller McpServer over the SDK's `NodeStreamableHTTPServerTransport`, one per session,
 * bound to the certificate that opened it (another certificate naming it gets 404). So
 * server-to-client requests work for 2025-era clients (`ctx.mcpReq.elicitInput`,
 * `ctx.mcpReq.requestSampling`: the stateless fallback has no channel for them), and so do
 * resumable streams (`eventStore`, `retryInterval`, as the 1.x adapter). A session keeps the
 * surface it was built with; a target a policy reload hid since is answered as unknown by the
 * gate (hidden-targets.ts, `sdk2-stateful`).
 *
 * ```ts
 * const handler = createMcpSdk2Handler({ serverInfo, policy, build: (server) => { server.registerTool(...) } });
 * createMtlsServer(tls, handler).listen(8443);
 * ```
 *
 * The handler needs `req.auth` as {@link createMtlsServer} (or the middleware) sets it, and
 * throws a plain Error without it.
 *
 * Tools, prompts and resources that change publish it with `notify` (2026-07-28 clients
 * receive it on their `subscriptions/listen` stream), per caller: `notify.toolsChanged(['deploy'])`
 * reaches only callers who may see `deploy` (see {@link CallerNotifier}).
 *
 * @returns the handler, with `notify` (list_changed and resource updates, per caller), `sessions()` (stateful: how many are open) and `close()` (closes the SDK handler and every session)
 */
export function createMcpSdk2Handler(options: McpSdk2Options): MtlsHandler & { close(): Promise<void>; notify: CallerNotifier; sessions(): number } {
  const currentPolicy = currentPolicyOf(options);
  const whoamiName = whoamiToolName(options.whoami);
  const toolCheck = unknownToolsWarning(options);
  const listen = callerBus(currentPolicy, options.onerror);
  const newServer = async (identity: Identity, policy: Policy) => {
    const server = new McpServer(options.serverInfo, { ...options.serverOptions, jsonSchemaValidator: sharedValidator, cacheHints: privateCacheHints(options.serverOptions?.cacheHints) });
    const surface = await buildForCaller(server, identity, policy, options.build, currentPolicy, 'sdk2');
    toolCheck(policy, surface);
    // the policy in force when whoami answers, not the one this server was built under
    if (whoamiName) registerWhoami(server, whoamiName, identity, currentPolicy, surface);
    return server;
  };
  const mcp = createMcpHandler(
    async (ctx) => {
      const identity = (ctx.authInfo?.extra as { identity?: Identity } | undefined)?.identity;
      if (!identity) throw new Error('createMcpSdk2Handler needs createMtlsServer (no identity in authInfo)');
      return newServer(identity, currentPolicy());
    },
    // stateful: 2025-era requests never reach it (they are routed to the sessions below)
    { legacy: options.stateful ? 'reject' : 'stateless', bus: listen.bus, ...(options.onerror ? { onerror: options.onerror } : {}), ...(options.maxBodyBytes ? { maxRequestBodySize: options.maxBodyBytes } : {}) },
  );
  const hiddenAnswer = hiddenAnswerFor('sdk2');
  const sessions = options.stateful ? new AdapterSessions<NodeStreamableHTTPServerTransport>(options, options.audit) : undefined;
  const sessionHiddenAnswer = hiddenAnswerFor('sdk2-stateful');

  const openSession = async (req: MtlsRequest, res: ServerResponse, identity: Identity, policy: Policy, body: unknown) => {
    const server = await newServer(identity, policy);
    const eventStore = eventStoreOf(options) as EventStore | undefined;
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      ...(eventStore ? { eventStore } : {}),
      ...(options.retryInterval !== undefined ? { retryInterval: options.retryInterval } : {}),
      onsessioninitialized: (sid) => sessions!.opened(sid, transport, identity),
    });
    // notify reaches 2025-era sessions too, on their GET stream, per caller as on listen streams
    const unsubscribe = listen.run(identity, () =>
      listen.bus.subscribe((event) => {
        if (event.kind === 'tools_list_changed') server.sendToolListChanged();
        else if (event.kind === 'prompts_list_changed') server.sendPromptListChanged();
        else if (event.kind === 'resources_list_changed') server.sendResourceListChanged();
      }),
    );
    transport.onclose = () => {
      unsubscribe();
      sessions!.closed(transport.sessionId);
      void server.close();
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
    // not an initialize request (the SDK answered 400 'Server not initialized'), or one it
    // refused: no session was opened, so nothing may stay subscribed to the bus
    if (transport.sessionId === undefined) await transport.close();
  };
  const node = toNodeHandler(mcp, { ...(options.maxBodyBytes ? { maxRequestBodySize: options.maxBodyBytes } : {}), ...(options.onerror ? { onerror: options.onerror } : {}) });

  const refused = refusedByEndpoint(options, hostCheck(options));
  const handler = async (req: MtlsRequest, res: ServerResponse) => {
    const auth = req.auth;
    if (!auth) throw new Error('createMcpSdk2Handler needs createMtlsServer (req.auth is not set)');
    // the configured path only; a foreign Host or Origin is refused (DNS rebinding: host-check.ts)
    if (refused(req, res)) return;
    const identity = auth.extra.identity;
    const policy = currentPolicy();
    auth.scopes = [...policy.scopesOf(identity)];
    keepPrivate(res); // answers differ per caller
    if (req.method !== 'POST') {
      if (!sessions) return listen.run(identity, () => node(req as never, res as never));
      // stateful: GET and DELETE are 2025-era session operations
      const session = sessions.find(req, res, identity);
      if (session === null) return;
      if (!session) return sendJson(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' } });
      return session.handleRequest(req, res);
    }
    const read = await readJsonBody(req, options.maxBodyBytes);
    if (!read.ok) return sendJson(res, read.status, read.body);
    // stateful: the SDK's own routing decides the era; a 2025-era request goes to its session,
    // one named by someone else's certificate is refused before anything else is said
    const legacy = sessions !== undefined && (await isLegacyRequest(probeRequest(req), read.value));
    const session = legacy ? sessions!.find(req, res, identity) : undefined;
    if (session === null) return;
    // who answers a hidden target: the decision table (hidden-targets.ts)
    const gate = gateMcpBody(read.value, { policy, identity, headers: req.headers, hiddenAnswer: legacy ? sessionHiddenAnswer : hiddenAnswer, ...(options.audit ? { audit: options.audit } : {}), ...(req.socket.remoteAddress ? { remote: req.socket.remoteAddress } : {}) });
    if (gate.kind === 'respond') return sendJson(res, gate.status, gate.body);
    // the SDK reads what was decided: resource URIs in canonical form (mcp-gate.ts)
    if (gate.mcpName !== undefined) req.headers['mcp-name'] = gate.mcpName;
    if (legacy) return session ? session.handleRequest(req, res, gate.body) : openSession(req, res, identity, policy, gate.body);
    // a listen stream opened by this request belongs to this caller (sdk2-listen.ts)
    return listen.run(identity, () => node(req as never, res as never, gate.body));
  };
  return Object.assign(handler, {
    close: async () => {
      await mcp.close();
      await sessions?.closeAll();
    },
    notify: listen.notify,
    sessions: () => sessions?.size ?? 0,
  });
}

/** The headers the SDK's era routing reads (`isLegacyRequest`), as a web Request; the body is passed parsed. */
function probeRequest(req: MtlsRequest): Request {
  const headers = new Headers();
  for (const name of ['content-type', 'accept', 'mcp-protocol-version', 'mcp-method', 'mcp-name']) {
    const v = req.headers[name];
    if (v !== undefined) headers.set(name, Array.isArray(v) ? v.join(', ') : v);
  }
  return new Request(new URL(req.url ?? '/', 'https://localhost'), { method: 'POST', headers });
}
