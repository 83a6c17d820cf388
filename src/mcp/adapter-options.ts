/**
 * The options both SDK adapters take (mcp/sdk1.ts, mcp/sdk2.ts), declared once so that they
 * mean the same in both; each adapter adds its SDK's `serverOptions` and `build`, and its own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Policy } from '../policy/compile.js';
import { sendJson } from './http-body.js';
import type { AuditSink } from '../mtls/audit.js';
import { refuseHost, type HostCheckOptions } from './host-check.js';

/** Options common to {@link createMcpSdk1Handler} and {@link createMcpSdk2Handler}. */
export interface McpAdapterOptions extends HostCheckOptions {
  /** The server's name and version, as the SDK's McpServer takes them. */
  readonly serverInfo: { name: string; version: string };
  /** The policy in force, or a function returning it (so a {@link PolicyWatcher} can swap it: `() => watcher.current()`). */
  readonly policy: Policy | (() => Policy);
  /** Receives a `decision` event per tool, resource or prompt request (and per unknown method); the 1.x adapter in stateful mode also `session.refused` events. */
  readonly audit?: AuditSink;
  /** Adds a tool that tells callers who they are and what they may use: `true` names it "whoami", a string names it so; default none. */
  readonly whoami?: boolean | string;
  /** Larger POST bodies are answered 413; default 4 MiB (the 2.x adapter also passes it to the SDK when set). */
  readonly maxBodyBytes?: number;
  /**
   * The path MCP is served on (the query string aside); any other path is answered 404.
   * Default `/mcp`; `"*"` serves every path (a handler mounted below a router prefix, whose
   * `req.url` no longer starts with it).
   */
  readonly path?: string;
  /**
   * Receives warnings, one line each: once per policy (a reloaded one again), the tool names
   * and patterns of the policy that match none of the tools `build` registers (typos such as
   * `restart_servce`), judged at the first build under that policy. Default: stderr, after `mcp-mtls: `.
   */
  readonly log?: (line: string) => void;
}

/**
 * What both adapters refuse before the gate: a path other than `path` (404) and a foreign
 * `Host` / `Origin` (403, DNS rebinding: host-check.ts). True when the request was answered.
 */
export function refusedByEndpoint(options: Pick<McpAdapterOptions, 'path'>, hosts: (req: IncomingMessage) => string | undefined): (req: IncomingMessage, res: ServerResponse) => boolean {
  const path = options.path ?? '/mcp';
  return (req, res) => {
    if (path !== '*') {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      if ((q === -1 ? url : url.slice(0, q)) !== path) {
        sendJson(res, 404, { jsonrpc: '2.0', id: null, error: { code: -32000, message: `Not found: MCP is served on ${path}` } });
        return true;
      }
    }
    const refused = hosts(req);
    if (refused !== undefined) {
      refuseHost(res, refused);
      return true;
    }
    return false;
  };
}

/** The policy option as a function returning the policy in force now. */
export function currentPolicyOf(options: Pick<McpAdapterOptions, 'policy'>): () => Policy {
  return typeof options.policy === 'function' ? options.policy : () => options.policy as Policy;
}
