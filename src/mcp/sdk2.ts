/** The adapter for the MCP SDK 2.x packages: see {@link createMcpSdk2Handler}. */
import type { ServerResponse } from 'node:http';
import { createMcpHandler, McpServer, type ServerOptions } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import type { Identity } from '../identity/identity.js';
import type { Policy, PolicyTarget } from '../policy/compile.js';
import type { AuditSink } from '../mtls/audit.js';
import { keepPrivate, readJsonBody, sendJson } from './http-body.js';
import { gateMcpBody, unknownTargetAnswer } from './gate.js';
import { buildForCaller, whoamiReport } from './surface.js';
import type { MtlsHandler, MtlsRequest } from '../mtls/mtls-server.js';

/** Options of {@link createMcpSdk2Handler}. */
export interface McpSdk2Options {
  /** The server's name and version, as the SDK's McpServer takes them. */
  readonly serverInfo: { name: string; version: string };
  /** Passed to the SDK's McpServer (its JSON Schema validator is replaced by a shared one). */
  readonly serverOptions?: ServerOptions;
  /**
   * Registers tools, resources and prompts on a fresh McpServer for this caller; called for
   * every request. Define tool schemas outside it: a schema made here is compiled each time.
   */
  readonly build: (server: McpServer, identity: Identity) => void | Promise<void>;
  /** The policy in force, or a function returning it (so a {@link PolicyWatcher} can swap it: `() => watcher.current()`). */
  readonly policy: Policy | (() => Policy);
  /** Receives a `decision` event per tool, resource or prompt request (and per unknown method). */
  readonly audit?: AuditSink;
  /** Adds a tool that tells callers who they are and what they may use: `true` names it "whoami", a string names it so; default none. */
  readonly whoami?: boolean | string;
  /** Larger POST bodies are answered 413; default 4 MiB (also passed to the SDK when set). */
  readonly maxBodyBytes?: number;
  /** Passed to the SDK: reports out-of-band errors and rejected requests; it does not change the response. */
  readonly onerror?: (error: Error) => void;
}

const sharedValidator = new AjvJsonSchemaValidator();

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
 * ```ts
 * const handler = createMcpSdk2Handler({ serverInfo, policy, build: (server) => { server.registerTool(...) } });
 * createMtlsServer(tls, handler).listen(8443);
 * ```
 *
 * The handler needs `req.auth` as {@link createMtlsServer} (or the middleware) sets it, and
 * throws a plain Error without it.
 *
 * @returns the handler, with `close()` (closes the SDK handler)
 */
export function createMcpSdk2Handler(options: McpSdk2Options): MtlsHandler & { close(): Promise<void> } {
  const currentPolicy = typeof options.policy === 'function' ? options.policy : () => options.policy as Policy;
  const whoamiName = options.whoami === true ? 'whoami' : typeof options.whoami === 'string' ? options.whoami : undefined;
  const mcp = createMcpHandler(
    async (ctx) => {
      const identity = (ctx.authInfo?.extra as { identity?: Identity } | undefined)?.identity;
      if (!identity) throw new Error('createMcpSdk2Handler needs createMtlsServer (no identity in authInfo)');
      const policy = currentPolicy();
      const server = new McpServer(options.serverInfo, { ...options.serverOptions, jsonSchemaValidator: sharedValidator });
      const surface = await buildForCaller(server, identity, policy, options.build);
      if (whoamiName) {
        server.registerTool(whoamiName, { description: 'Who is calling, as the server sees it from the client certificate, and what the caller may use' }, async () => ({
          content: [{ type: 'text' as const, text: JSON.stringify(whoamiReport(identity, policy, { ...surface, tools: [...surface.tools, whoamiName] }), null, 2) }],
        }));
      }
      return server;
    },
    { legacy: 'stateless', ...(options.onerror ? { onerror: options.onerror } : {}), ...(options.maxBodyBytes ? { maxRequestBodySize: options.maxBodyBytes } : {}) },
  );
  const node = toNodeHandler(mcp, { ...(options.maxBodyBytes ? { maxRequestBodySize: options.maxBodyBytes } : {}), ...(options.onerror ? { onerror: options.onerror } : {}) });

  const handler = async (req: MtlsRequest, res: ServerResponse) => {
    const auth = req.auth;
    if (!auth) throw new Error('createMcpSdk2Handler needs createMtlsServer (req.auth is not set)');
    const identity = auth.extra.identity;
    const policy = currentPolicy();
    auth.scopes = [...policy.scopesOf(identity)];
    keepPrivate(res); // answers differ per caller
    if (req.method !== 'POST') return node(req as never, res as never);
    const read = await readJsonBody(req, options.maxBodyBytes);
    if (!read.ok) return sendJson(res, read.status, read.body);
    // a hidden resource can still match a visible template: answered here (see mcp-sdk1.ts)
    const hiddenAnswer = (id: unknown, t: PolicyTarget) => (t.kind === 'resource' ? unknownTargetAnswer(id, t) : undefined);
    const gate = gateMcpBody(read.value, { policy, identity, headers: req.headers, hiddenAnswer, ...(options.audit ? { audit: options.audit } : {}), ...(req.socket.remoteAddress ? { remote: req.socket.remoteAddress } : {}) });
    if (gate.kind === 'respond') return sendJson(res, gate.status, gate.body);
    // the SDK reads what was decided: resource URIs in canonical form (mcp-gate.ts)
    if (gate.mcpName !== undefined) req.headers['mcp-name'] = gate.mcpName;
    return node(req as never, res as never, gate.body);
  };
  return Object.assign(handler, { close: () => mcp.close() });
}
