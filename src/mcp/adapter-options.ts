/**
 * The options both SDK adapters take (mcp/sdk1.ts, mcp/sdk2.ts), declared once so that they
 * mean the same in both; each adapter adds its SDK's `serverOptions` and `build`, and its own.
 */
import type { Policy } from '../policy/compile.js';
import type { AuditSink } from '../mtls/audit.js';

/** Options common to {@link createMcpSdk1Handler} and {@link createMcpSdk2Handler}. */
export interface McpAdapterOptions {
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
}

/** The policy option as a function returning the policy in force now. */
export function currentPolicyOf(options: Pick<McpAdapterOptions, 'policy'>): () => Policy {
  return typeof options.policy === 'function' ? options.policy : () => options.policy as Policy;
}
