/**
 * The gateway's decision on each message the upstream sends to the client, wherever it comes
 * (a POST's JSON or SSE answer, a GET stream): the client sees only messages the gateway
 * understood and allowed, never one it merely passed along.
 *
 * - a response to a request of this POST: kept, a list result filtered for the caller;
 * - a response with any other id, and any response on a GET stream: dropped (Streamable HTTP
 *   answers on the POST that asked; a response elsewhere is one the gateway cannot tie to a
 *   request, so could not filter: the legacy HTTP+SSE transport delivers every answer so);
 *   an error with id null (a transport-level error) is kept;
 * - server notifications and requests: the known methods of MCP (progress, logging,
 *   list_changed, sampling, elicitation, roots, ping...) are kept, `notifications/resources/
 *   updated` only for a resource the caller may read; any other method is dropped;
 * - anything that is not a JSON-RPC 2.0 message is dropped.
 */

/** What the caller's request and policy say about the messages of one upstream answer. */
export interface ServerMessageContext {
  /** ids of the requests this POST forwarded (empty for a GET stream) */
  readonly requestIds: ReadonlySet<unknown>;
  /** a result for request `id`, filtered for the caller (the same object when nothing changes) */
  readonly filterResult: (id: unknown, result: Record<string, unknown>) => Record<string, unknown>;
  /** whether the caller may read this resource (for `notifications/resources/updated`) */
  readonly mayRead: (uri: string) => boolean;
}

export type ServerMessageDecision = { readonly keep: true; readonly message: unknown; readonly changed: boolean; readonly answers?: unknown } | { readonly keep: false; readonly reason: string };

/** Notifications that carry nothing the policy decides (or only refer to the caller's own requests). */
const NOTIFICATIONS = new Set([
  'notifications/progress',
  'notifications/message',
  'notifications/cancelled',
  'notifications/tools/list_changed',
  'notifications/prompts/list_changed',
  'notifications/resources/list_changed',
  'notifications/elicitation/complete',
  'notifications/tasks/status',
  // 2026-07-28: the first message of a subscriptions/listen stream, naming what the server
  // agreed to send (the resource URIs in it are the ones the gate decided on the listen)
  'notifications/subscriptions/acknowledged',
]);

/** Requests a server may make of the client (the client's own consent applies to them). */
const REQUESTS = new Set(['ping', 'sampling/createMessage', 'elicitation/create', 'roots/list']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** The decision on one server-to-client message. */
export function decideServerMessage(m: unknown, ctx: ServerMessageContext): ServerMessageDecision {
  if (!isObject(m) || m.jsonrpc !== '2.0') return { keep: false, reason: 'not a JSON-RPC 2.0 message' };
  if (typeof m.method === 'string') {
    if ('id' in m) {
      if (!isId(m.id)) return { keep: false, reason: `request ${m.method} without a valid id` };
      return REQUESTS.has(m.method) ? { keep: true, message: m, changed: false } : { keep: false, reason: `server request ${m.method} is not one the gateway forwards` };
    }
    if (m.method === 'notifications/resources/updated') {
      const uri = isObject(m.params) ? m.params.uri : undefined;
      if (typeof uri !== 'string') return { keep: false, reason: 'notifications/resources/updated without a uri' };
      return ctx.mayRead(uri) ? { keep: true, message: m, changed: false } : { keep: false, reason: 'notifications/resources/updated for a resource the caller may not read' };
    }
    return NOTIFICATIONS.has(m.method) ? { keep: true, message: m, changed: false } : { keep: false, reason: `server notification ${m.method} is not one the gateway forwards` };
  }
  // a response: exactly one of result and error
  const hasResult = 'result' in m;
  const hasError = 'error' in m;
  if (hasResult === hasError) return { keep: false, reason: 'neither a request, a notification nor a response' };
  if (hasError) {
    if (!isObject(m.error)) return { keep: false, reason: 'an error response without an error object' };
    if (m.id === null) return { keep: true, message: m, changed: false };
  } else if (!isObject(m.result)) return { keep: false, reason: 'a response whose result is not an object' };
  if (!isId(m.id)) return { keep: false, reason: 'a response without a valid id' };
  if (!ctx.requestIds.has(m.id)) {
    return { keep: false, reason: ctx.requestIds.size === 0 ? 'a response on a GET stream (responses belong on the POST that asked: cannot be tied to a request, so cannot be filtered)' : `a response to id ${JSON.stringify(m.id)}, which this request did not send` };
  }
  if (hasError) return { keep: true, message: m, changed: false, answers: m.id };
  const result = ctx.filterResult(m.id, m.result as Record<string, unknown>);
  return result === m.result ? { keep: true, message: m, changed: false, answers: m.id } : { keep: true, message: { ...m, result }, changed: true, answers: m.id };
}
