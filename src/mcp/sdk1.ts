/**
 * The adapter for `@modelcontextprotocol/sdk` 1.x: see {@link createMcpSdk1Handler}. Per
 * request, the gate (mcp-gate.ts) decides on the JSON-RPC message before the SDK sees it.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerOptions } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport, type EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import type { Identity } from '../identity/identity.js';
import type { Policy } from '../policy/compile.js';
import { currentPolicyOf, refusedByEndpoint, type McpAdapterOptions } from './adapter-options.js';
import { hostCheck } from './host-check.js';
import { keepPrivate, readJsonBody, sendJson } from './http-body.js';
import { AdapterSessions, eventStoreOf, type McpStatefulOptions } from './sessions.js';
import { gateMcpBody } from './gate.js';
import { hiddenAnswerFor } from './hidden-targets.js';
import { buildForCaller } from './surface.js';
import { registerWhoami, whoamiToolName } from './whoami.js';
import { unknownToolsWarning } from './unknown-tools-warning.js';
import type { MtlsHandler, MtlsRequest } from '../mtls/mtls-server.js';

/** Options of {@link createMcpSdk1Handler}. */
export interface McpSdk1Options extends McpAdapterOptions, McpStatefulOptions {
  /** Passed to the SDK's McpServer (its JSON Schema validator is replaced by a shared one). */
  readonly serverOptions?: ServerOptions;
  /**
   * Registers tools, resources and prompts on a fresh McpServer for this caller; called per
   * request (stateless) or per session. Define tool schemas outside it: a schema made here is
   * compiled again each time.
   */
  readonly build: (server: McpServer, identity: Identity) => void | Promise<void>;
  /** answers with JSON instead of SSE streams where the SDK allows it */
  readonly enableJsonResponse?: boolean;
}

// one validator for every per-request server: building Ajv per request halves throughput
const sharedValidator = new AjvJsonSchemaValidator();
// the stateless transport's options, made once (the transport copies what it reads)
const STATELESS = Object.freeze({ sessionIdGenerator: undefined });
const STATELESS_JSON = Object.freeze({ sessionIdGenerator: undefined, enableJsonResponse: true });

/**
 * Closes a per-request transport and server. The SDK's close makes a "Connection closed"
 * McpError (for the responses still awaited: none, once a stateless request is answered)
 * synchronously, and capturing its stack trace was ~10 µs of every request's ~150 in the
 * profile: the synchronous part of the close runs with no stack captured (an error it makes
 * keeps its message and code). The limit is put back before anything else runs.
 *
 * Only once the request was answered (`answered`) and nothing of the tool's is called by the
 * close (no `onclose` of the server's own): the same close aborts the request handlers still in
 * flight, synchronously, so a client gone mid-call would run the tool's abort listeners with
 * no stack traces (found in review: test/mcp/sdk1-close-stack.test.ts). Otherwise it closes as
 * the SDK does.
 */
function closeQuietly(transport: { close(): Promise<void> }, server: McpServer, answered: boolean): void {
  if (!answered || server.server.onclose !== undefined) {
    void transport.close();
    void server.close();
    return;
  }
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    void transport.close();
    void server.close();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * The request handler for {@link createMtlsServer} that serves an MCP server built with
 * `@modelcontextprotocol/sdk` 1.x (McpServer over StreamableHTTPServerTransport), under the
 * policy: stateless (a server per request, the default) or stateful (a server per session,
 * bound to the certificate that opened it; another certificate naming it gets 404).
 *
 * Each request is decided by the policy before the SDK sees it; `build` registers
 * everything on a fresh McpServer, and what the caller may not see is removed, so to them a
 * hidden tool is an unknown tool. Tools receive `extra.authInfo` = `{ clientId: principal,
 * scopes, token: fingerprint, extra: { identity } }`.
 *
 * ```ts
 * const handler = createMcpSdk1Handler({ serverInfo, policy, build: (server) => { server.registerTool(...) } });
 * createMtlsServer(tls, handler).listen(8443);
 * ```
 *
 * The handler needs `req.auth` as {@link createMtlsServer} (or the middleware) sets it, and
 * throws a plain Error without it.
 *
 * @returns the handler, with `sessions()` (how many are open) and `close()` (closes every session)
 */
export function createMcpSdk1Handler(options: McpSdk1Options): MtlsHandler & { close(): Promise<void>; sessions(): number } {
  const currentPolicy = currentPolicyOf(options);
  const whoamiName = whoamiToolName(options.whoami);
  const toolCheck = unknownToolsWarning(options);
  const hiddenAnswer = hiddenAnswerFor(options.stateful ? 'sdk1-stateful' : 'sdk1-stateless');
  const sessions = new AdapterSessions<StreamableHTTPServerTransport>(options, options.audit);

  // made once: the SDK keeps the options' values, never the object (a spread per request was one more allocation)
  const serverOptions: ServerOptions = { ...options.serverOptions, jsonSchemaValidator: sharedValidator };
  const newServer = async (identity: Identity, policy: Policy) => {
    const server = new McpServer(options.serverInfo, serverOptions);
    const surface = await buildForCaller(server, identity, policy, options.build, currentPolicy);
    toolCheck(policy, surface);
    if (whoamiName) registerWhoami(server, whoamiName, identity, currentPolicy, surface);
    return server;
  };

  const refused = refusedByEndpoint(options, hostCheck(options));
  const handler = async (req: MtlsRequest, res: ServerResponse) => {
    const auth = req.auth;
    if (!auth) throw new Error('createMcpSdk1Handler needs createMtlsServer (req.auth is not set)');
    // the configured path only; a foreign Host or Origin is refused (DNS rebinding: host-check.ts)
    if (refused(req, res)) return;
    const identity = auth.extra.identity;
    const policy = currentPolicy();
    keepPrivate(res); // answers differ per caller
    let body: unknown;
    if (req.method === 'POST') {
      const read = await readJsonBody(req, options.maxBodyBytes);
      if (!read.ok) return sendJson(res, read.status, read.body);
      body = read.value;
      // a session named by someone else's certificate is refused before anything else is said
      const session = options.stateful ? sessions.find(req, res, identity) : undefined;
      if (session === null) return;
      // who answers a hidden target: the decision table (hidden-targets.ts)
      const gate = gateMcpBody(body, { policy, identity, headers: req.headers, hiddenAnswer, audit: options.audit, remote: req.socket.remoteAddress });
      if (gate.kind === 'respond') return sendJson(res, gate.status, gate.body);
      auth.scopes = [...gate.scopes];
      // the SDK reads what was decided: resource URIs in canonical form (mcp-gate.ts)
      body = gate.body;
      if (gate.mcpName !== undefined) req.headers['mcp-name'] = gate.mcpName;
      if (options.stateful) {
        if (session) return session.handleRequest(req, res, body);
        return openSession(req, res, identity, policy, body);
      }
    } else if (options.stateful) {
      auth.scopes = [...policy.scopesOf(identity)];
      const session = sessions.find(req, res, identity);
      if (!session) {
        if (session === undefined) sendJson(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' } });
        return;
      }
      return session.handleRequest(req, res);
    }
    // stateless: a server for this request only
    const server = await newServer(identity, policy);
    const transport = new StreamableHTTPServerTransport(options.enableJsonResponse ? STATELESS_JSON : STATELESS);
    res.on('close', () => closeQuietly(transport, server, res.writableFinished));
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const openSession = async (req: MtlsRequest, res: ServerResponse, identity: Identity, policy: Policy, body: unknown) => {
    const server = await newServer(identity, policy);
    const eventStore = eventStoreOf(options) as EventStore | undefined;
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      ...(options.enableJsonResponse ? { enableJsonResponse: true } : {}),
      ...(eventStore ? { eventStore } : {}),
      ...(options.retryInterval !== undefined ? { retryInterval: options.retryInterval } : {}),
      onsessioninitialized: (sid) => sessions.opened(sid, transport, identity),
    });
    transport.onclose = () => {
      sessions.closed(transport.sessionId);
      void server.close();
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  return Object.assign(handler, {
    sessions: () => sessions.size,
    close: () => sessions.closeAll(),
  });
}
