/**
 * A POST's body on its way to the upstream: read (bounded), decided by the JSON-RPC gate
 * shared with the SDK adapters, and rewritten: forwarded as the gate decided it (resource
 * URIs canonical), each message carrying the verified identity (identity-meta.ts).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Identity } from '../identity/identity.js';
import type { Policy } from '../policy/compile.js';
import type { AuditSink } from '../mtls/audit.js';
import { readJsonBody } from '../mcp/http-body.js';
import { gateMcpBody } from '../mcp/gate.js';
import { hiddenAnswerFor } from '../mcp/hidden-targets.js';
import type { GatewayMetrics } from './metrics.js';
import { askedLists, type AskedLists } from './answer-filter.js';
import { delegationFields, withIdentity, type RpcMessage } from './identity-meta.js';

export interface RequestBodyContext {
  readonly identity: Identity;
  readonly policy: Policy;
  readonly headers: IncomingHttpHeaders;
  readonly remote: string | undefined;
  readonly audit?: AuditSink;
  readonly metrics?: GatewayMetrics;
  readonly maxBodyBytes?: number;
}

export type GatedRequestBody =
  /** answered by the gateway itself: a refused body, or the gate's answer */
  | { readonly kind: 'respond'; readonly status: number; readonly body: unknown }
  /**
   * `body`: the JSON to forward; `requestIds`: the answers this POST may receive (response.ts);
   * `asked`: its list requests, whose answers are filtered; `mcpName`: the `Mcp-Name` header
   * the rewritten body needs, when the gate changed it
   */
  | { readonly kind: 'forward'; readonly body: string; readonly requestIds: ReadonlySet<unknown>; readonly asked: AskedLists; readonly mcpName?: string; /** it opens a 2026-07-28 listen stream (open as long as the client wants) */ readonly listens: boolean };

/** Reads, gates and rewrites a POST body. */
export async function gateRequestBody(req: IncomingMessage, ctx: RequestBodyContext): Promise<GatedRequestBody> {
  const { identity, remote } = ctx;
  const read = await readJsonBody(req, ctx.maxBodyBytes);
  if (!read.ok) {
    ctx.audit?.write({ event: 'decision', principal: identity.principal, ...delegationFields(identity), fingerprint: identity.fingerprint, allowed: false, ruleId: null, reason: `refused body: HTTP ${read.status}`, remote });
    return { kind: 'respond', status: read.status, body: read.body };
  }
  const metrics = ctx.metrics;
  const gate = gateMcpBody(read.value, {
    policy: ctx.policy,
    identity,
    headers: ctx.headers,
    hiddenAnswer: hiddenAnswerFor('gateway'),
    // an upstream may read keys ignoring case (Go's encoding/json): two keys equal but for case are refused too
    foldedKeys: true,
    ...(ctx.audit ? { audit: ctx.audit } : {}),
    ...(remote ? { remote } : {}),
    ...(metrics ? { onDecision: (d) => metrics.decision(d.ruleId, d.allowed) } : {}),
  });
  if (gate.kind === 'respond') return gate;
  // forwarded as decided: resource URIs in canonical form (mcp/gate.ts)
  const messages = (Array.isArray(gate.body) ? gate.body : [gate.body]) as RpcMessage[];
  const requestIds = new Set<unknown>();
  for (const m of messages) if (typeof m?.method === 'string' && m.id !== undefined) requestIds.add(m.id);
  const forwarded = messages.map((m) => withIdentity(m, identity, gate.scopes));
  return {
    kind: 'forward',
    body: JSON.stringify(Array.isArray(gate.body) ? forwarded : forwarded[0]),
    requestIds,
    asked: askedLists(messages),
    listens: messages.some((m) => m?.method === 'subscriptions/listen'),
    ...(gate.mcpName !== undefined ? { mcpName: gate.mcpName } : {}),
  };
}
