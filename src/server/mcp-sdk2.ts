/**
 * The adapter for the MCP SDK 2.x packages: `createMcpHandler` with a per-request factory
 * (which receives the caller's `authInfo`), served on Node through
 * `@modelcontextprotocol/node`'s `toNodeHandler`. Serves 2026-07-28 traffic and, through the
 * SDK's stateless fallback, 2025-era clients.
 *
 *   const handler = createMcpSdk2Handler({ serverInfo, policy, build: (server) => { server.registerTool(...) } });
 *   createMtlsServer(tls, handler).listen(8443);
 *
 * The same gate and per-caller surface as the 1.x adapter; tools read the caller from
 * `ctx.http.authInfo` (clientId = principal, scopes, extra.identity).
 */
import type { ServerResponse } from 'node:http';
import { createMcpHandler, McpServer, type ServerOptions } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import type { Identity } from '../identity/identity.js';
import type { Policy, PolicyTarget } from '../policy/compile.js';
import type { AuditSink } from './audit.js';
import { keepPrivate, readJsonBody, sendJson } from './http-body.js';
import { gateMcpBody, unknownTargetAnswer } from './mcp-gate.js';
import { buildForCaller, whoamiReport } from './mcp-surface.js';
import type { MtlsHandler, MtlsRequest } from './mtls-server.js';

export interface McpSdk2Options {
  readonly serverInfo: { name: string; version: string };
  readonly serverOptions?: ServerOptions;
  /** registers tools, resources and prompts; called for every request */
  readonly build: (server: McpServer, identity: Identity) => void | Promise<void>;
  readonly policy: Policy | (() => Policy);
  readonly audit?: AuditSink;
  readonly whoami?: boolean | string;
  readonly maxBodyBytes?: number;
  readonly onerror?: (error: Error) => void;
}

const sharedValidator = new AjvJsonSchemaValidator();

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
    return node(req as never, res as never, read.value);
  };
  return Object.assign(handler, { close: () => mcp.close() });
}
