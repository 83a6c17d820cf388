/**
 * Authorization of MCP traffic at the JSON-RPC level, shared by the SDK adapters and the
 * gateway: one decision per request message, before the MCP server sees it.
 *
 * - A request the policy allows passes, with the scopes the caller holds.
 * - A target the caller may not see is answered exactly as an unknown one (tools/list and
 *   tools/call agree): by the SDK, whose per-caller server does not have it, or here, as the
 *   listener's row of the decision table in hidden-targets.ts says.
 * - A visible target whose condition fails is answered here, naming the rule: a tool error
 *   for tools/call, a JSON-RPC error for resources and prompts.
 * - A method the policy does not cover is refused as "method not found"; a resource URI
 *   without a canonical form (policy/uri.ts) as invalid params, naming the problem.
 * - A resource URI is passed on in the canonical form it was decided in (`body` of the
 *   result), so the handler reads what the policy allowed, not another spelling of it.
 * - Batches are refused as a whole when any element is not allowed (no smuggling), or when two
 *   of its requests share an id (answers are matched and filtered by id).
 * - A request method without an id (a "notification" of `tools/call`) is refused: a server may
 *   run it, and no decision covers it. Client notifications are `notifications/*`.
 * - 2026-07-28 `Mcp-Method` / `Mcp-Name` headers must agree with the body.
 * - What the gate answers itself follows the request's protocol revision (protocol-era.ts), as
 *   the SDK answers it: on 2026-07-28 an unknown method is HTTP 404 (-32601), a header that
 *   disagrees with the body -32020 (HeaderMismatch, HTTP 400), a tool result carries
 *   `resultType`; on 2025-11-25 the -32601 stays in-band (HTTP 200) and a mismatch is -32600.
 * Every decision on a target is audited; tool arguments only when the sink allows it.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../identity/identity.js';
import type { Decision, Policy, PolicyTarget } from '../policy/compile.js';
import { authorizationFor } from '../policy/mcp.js';
import type { AuditSink } from '../mtls/audit.js';
import { unknownTargetAnswer, unknownTargetAnswerSdk2, type HiddenAnswer } from './hidden-targets.js';
import { protocolEra, type ProtocolEra } from './protocol-era.js';

export const POLICY_DENIED = -32003;

export type GateResult =
  /**
   * `body`: what to hand on, the request with its resource URIs in canonical form; `mcpName`:
   * set when that changed the URI of a request sent with an `Mcp-Name` header, the value that
   * header must now have (2026-07-28 servers check that it mirrors the body)
   */
  | { readonly kind: 'pass'; readonly scopes: readonly string[]; readonly hidden: readonly PolicyTarget[]; readonly body: unknown; readonly mcpName?: string }
  | { readonly kind: 'respond'; readonly status: number; readonly body: unknown };

interface Message {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

export interface GateContext {
  readonly policy: Policy;
  readonly identity: Identity;
  readonly headers: IncomingHttpHeaders;
  readonly audit?: AuditSink;
  readonly remote?: string;
  /**
   * How to answer a target the caller may not see; undefined (or unset): pass it on, the
   * per-caller server does not have it. Each listener takes its answer from the one decision
   * table, `hiddenAnswerFor` (mcp/hidden-targets.ts).
   */
  readonly hiddenAnswer?: HiddenAnswer;
  /** every decision, for metrics */
  readonly onDecision?: (d: Decision) => void;
  /**
   * The messages go on to a server that may read keys ignoring case (the gateway's upstreams):
   * two keys of one object equal but for case, anywhere in a message (tool arguments too), are
   * refused as well. A JSON-RPC or MCP member in another case is refused always.
   */
  readonly foldedKeys?: boolean;
}

// kept here too for the callers that import it from the gate
export { unknownTargetAnswer };

/**
 * Keys a server may read other than the gate does (review 2 of issue 23): Go's encoding/json
 * (Go MCP servers behind the gateway) and C# with its web defaults match a key to a field
 * ignoring case, Unicode-folded (`paramſ` is `params`), the last match winning, where the gate
 * reads exact keys and the gateway forwards every key: `{"method":"ping","Method":"tools/call"}`
 * was decided as a ping and run as a call. Refused: a JSON-RPC member (top level), an MCP member
 * the gate reads (params, params.ref) in another case, and, for a server that may fold keys
 * (`foldedKeys`: the gateway), two keys of one object (anywhere in the message) equal but for
 * case (a JavaScript tool may well take both `x` and `X`).
 */
const TOP_MEMBERS = ['jsonrpc', 'id', 'method', 'params', 'result', 'error'];
const PARAMS_MEMBERS = ['name', 'uri', 'arguments', 'ref', '_meta'];
const REF_MEMBERS = ['type', 'name', 'uri'];
// a superset of Go's and .NET's folding (simple folds such as U+017F to s, U+212A to k): refusing more is safe
const fold = (k: string): string => k.toUpperCase().toLowerCase();

// each member list by its folded form: a key that is a member itself (the usual case) costs one
// lookup and no folding; only another key is folded to see whether it is a member in another case
const byFold = (members: readonly string[]): ReadonlyMap<string, string> => new Map(members.map((m) => [fold(m), m]));
const TOP = byFold(TOP_MEMBERS);
const PARAMS = byFold(PARAMS_MEMBERS);
const REF = byFold(REF_MEMBERS);

/** The path of the object a problem is in, as the message names it (`params.arguments[0]`), from the segments walked. */
function pathOf(trail: readonly (string | number)[]): string {
  let path = '';
  for (const s of trail) path = typeof s === 'number' ? `${path}[${s}]` : path ? `${path}.${s.slice(0, 40)}` : s.slice(0, 40);
  return path;
}

// `trail`: the keys and indexes walked to `v`, turned into a path only for a message (nothing is
// allocated per key of a message that passes)
function keyCaseProblem(v: unknown, members: ReadonlyMap<string, string> | undefined, trail: (string | number)[], pairs: boolean): string | undefined {
  if (v === null || typeof v !== 'object' || trail.length > 64 || (!pairs && !members)) return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      trail.push(i);
      const p = keyCaseProblem(v[i], undefined, trail, pairs);
      trail.pop();
      if (p) return p;
    }
    return undefined;
  }
  const keys = Object.keys(v);
  const seen = pairs ? new Map<string, string>() : undefined;
  for (const k of keys) {
    if (!seen && members!.get(k) === k) continue; // a member, as written
    const f = fold(k);
    const member = members?.get(f);
    if (member !== undefined && member !== k) {
      const path = pathOf(trail);
      return `key "${k.slice(0, 40)}"${path ? ` in ${path}` : ''} is "${member}" in another case: refused, since a server may read it as that`;
    }
    const other = seen?.get(f);
    if (other !== undefined) {
      const path = pathOf(trail);
      return `keys "${other.slice(0, 40)}" and "${k.slice(0, 40)}"${path ? ` in ${path}` : ''} are equal but for case: refused, since a server may read either`;
    }
    seen?.set(f, k);
  }
  const o = v as Record<string, unknown>;
  for (const k of keys) {
    const sub = members === TOP && k === 'params' ? PARAMS : members === PARAMS && k === 'ref' ? REF : undefined;
    if (!pairs && !sub) continue;
    trail.push(k);
    const p = keyCaseProblem(o[k], sub, trail, pairs);
    trail.pop();
    if (p) return p;
  }
  return undefined;
}

// a message with a method and an id key is a request, `id: null` included: servers differ in
// how they treat one, so it is decided here like any other
const isRequest = (m: Message): boolean => m !== null && typeof m === 'object' && typeof m.method === 'string' && 'id' in m;

/**
 * A request method sent without an id (`{"method":"tools/call"}`): JSON-RPC servers run a
 * notification, they only do not answer it, and nothing here decides one. Client
 * notifications are `notifications/*`; anything else without an id is refused (found in
 * review, issue 16: the gateway passed `tools/call` of a hidden tool on undecided).
 */
const isRequestWithoutId = (m: Message): boolean =>
  m !== null && typeof m === 'object' && typeof m.method === 'string' && !('id' in m) && !m.method.startsWith('notifications/');

/** The first id two requests of a batch share (the gateway tells their answers apart by id), or undefined. */
function sharedId(messages: readonly Message[]): unknown {
  const seen = new Set<string>();
  for (const m of messages) {
    if (!isRequest(m)) continue;
    const key = JSON.stringify(m.id) ?? String(m.id);
    if (seen.has(key)) return m.id ?? null;
    seen.add(key);
  }
  return undefined;
}

function targetName(t: PolicyTarget): string {
  return t.kind === 'resource' ? t.uri : t.name;
}

function rpcError(id: unknown, code: number, message: string, data?: unknown) {
  return { jsonrpc: '2.0', id: id ?? null, error: { code, message, ...(data === undefined ? {} : { data }) } };
}

/** The answer to a visible target whose policy condition failed (2026-07-28 results name their `resultType`). */
function deniedAnswer(m: Message, t: PolicyTarget, d: Decision, era: ProtocolEra) {
  const text = `Denied by policy rule "${d.ruleId}": ${d.reason}`;
  if (t.kind === 'tool') return { jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text }], isError: true, ...(era === 'modern' ? { resultType: 'complete' } : {}) } };
  return rpcError(m.id, POLICY_DENIED, text, { ruleId: d.ruleId });
}

/** Any JSON value as text for a message (arrays of null-prototype objects included). */
function describe(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return '(unprintable)';
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A 2026-07-28 header value as its sender meant it: values that are not plain visible ASCII
 * (a URI with `é`) are sent as `=?base64?<UTF-8 in base64>?=`. undefined for a sentinel whose
 * payload is not base64 of UTF-8 (servers must refuse those).
 */
function headerValue(raw: string): string | undefined {
  if (!raw.startsWith('=?base64?') || !raw.endsWith('?=')) return raw;
  const m = SENTINEL.exec(raw);
  if (!m || (m[1] as string).length % 4 !== 0) return undefined;
  try {
    return utf8.decode(Buffer.from(m[1] as string, 'base64'));
  } catch {
    return undefined;
  }
}

/** -32020 HeaderMismatch (2026-07-28, SEP-2243): HTTP 400, in the SDK 2.x server's words. */
export const HEADER_MISMATCH = -32020;

/** The answer to a routing header that disagrees with the body: -32020 on 2026-07-28, -32600 (invalid request) before. */
function mismatchAnswer(id: unknown, { reason, header }: { reason: string; header: string }, era: ProtocolEra) {
  if (era === 'legacy') return rpcError(id, -32600, reason);
  return rpcError(id, HEADER_MISMATCH, `Bad Request: the request headers and body disagree: ${reason}`, { mismatch: { header, body: reason } });
}

/** The 2026-07-28 routing headers, when present, must name what the body does. */
function headerMismatch(m: Message, headers: IncomingHttpHeaders): { reason: string; header: string } | undefined {
  const method = header(headers, 'mcp-method');
  if (method !== undefined && method !== m.method) return { header: method, reason: `the Mcp-Method header says "${method}" but the body calls "${describe(m.method)}"` };
  const sent = header(headers, 'mcp-name');
  const name = sent === undefined ? undefined : headerValue(sent);
  if (sent !== undefined && name === undefined) return { header: sent, reason: `the Mcp-Name header "${sent}" is not valid base64 of UTF-8` };
  if (sent !== undefined && name !== undefined) {
    const p = (m.params ?? {}) as Record<string, unknown>;
    const bodyName = m.method === 'resources/read' ? p.uri : p.name;
    if (name !== bodyName) return { header: sent, reason: `the Mcp-Name header says "${name}" but the body names "${describe(bodyName)}"` };
  }
  return undefined;
}

export function gateMcpBody(body: unknown, ctx: GateContext): GateResult {
  const messages: Message[] = Array.isArray(body) ? (body as Message[]) : [body as Message];
  const scopes = ctx.policy.scopesOf(ctx.identity);
  const id = ctx.identity;
  const era = protocolEra(body, ctx.headers);
  const audit = (m: Message, t: PolicyTarget | undefined, d: { allowed: boolean; ruleId: string | null; reason: string }) =>
    ctx.audit?.write({
      event: 'decision',
      principal: id.principal,
      teams: id.teams,
      roles: id.roles,
      // a delegated call: who it is for (the policy decided on that), and the actor chain
      ...(id.actingFor ? { actingFor: { principal: id.actingFor.principal, teams: id.actingFor.teams, roles: id.actingFor.roles, ...(id.actingFor.tools ? { tools: id.actingFor.tools } : {}) }, actors: id.actors } : {}),
      method: m.method,
      ...(t ? { target: targetName(t) } : {}),
      allowed: d.allowed,
      ruleId: d.ruleId,
      reason: d.reason,
      fingerprint: id.fingerprint,
      remote: ctx.remote,
      ...(ctx.audit.includeArgs && t && t.kind !== 'resource' ? { args: t.args } : {}),
    });

  for (const m of messages) {
    const reason = keyCaseProblem(m, TOP, [], ctx.foldedKeys === true);
    if (reason) {
      audit(m, undefined, { allowed: false, ruleId: null, reason });
      return { kind: 'respond', status: 400, body: rpcError(null, -32600, reason) };
    }
  }
  const withoutId = messages.find(isRequestWithoutId);
  if (withoutId) {
    const reason = `${describe(withoutId.method).slice(0, 100)} is a request method, sent without an id (as a notification): refused, since a server may run it`;
    audit(withoutId, undefined, { allowed: false, ruleId: null, reason });
    return { kind: 'respond', status: 400, body: rpcError(null, -32600, reason) };
  }
  if (Array.isArray(body)) {
    const shared = sharedId(messages);
    if (shared !== undefined) {
      const reason = `batch refused: two requests share the id ${describe(shared).slice(0, 100)}`;
      audit(messages.find(isRequest) as Message, undefined, { allowed: false, ruleId: null, reason });
      return { kind: 'respond', status: 400, body: rpcError(null, -32600, reason) };
    }
  }

  if (!Array.isArray(body)) {
    const m = messages[0] as Message;
    if (!isRequest(m)) return { kind: 'pass', scopes, hidden: [], body };
    const mismatch = headerMismatch(m, ctx.headers);
    if (mismatch) {
      audit(m, undefined, { allowed: false, ruleId: null, reason: mismatch.reason });
      return { kind: 'respond', status: 400, body: mismatchAnswer(m.id, mismatch, era) };
    }
  }

  const hidden: PolicyTarget[] = [];
  const answers: unknown[] = [];
  const passed: Message[] = [];
  let refuse = false;
  let status = 200;
  for (const m of messages) {
    passed.push(m);
    if (!isRequest(m)) continue;
    const a = authorizationFor(m.method as string, m.params);
    if (a.kind === 'always' && m.method === 'subscriptions/listen') {
      const listen = listenSubscriptions(m, ctx, audit, era);
      if ('answer' in listen) {
        refuse = true;
        answers.push(listen.answer);
      } else passed[passed.length - 1] = listen.message;
      continue;
    }
    if (a.kind === 'always' || a.kind === 'list') continue;
    if (a.kind === 'invalid') {
      audit(m, undefined, { allowed: false, ruleId: null, reason: a.reason });
      refuse = true;
      answers.push(rpcError(m.id, -32602, a.reason, { code: a.code, hint: a.hint }));
      continue;
    }
    if (a.kind === 'unknown') {
      audit(m, undefined, { allowed: false, ruleId: null, reason: a.reason });
      refuse = true;
      answers.push(rpcError(m.id, -32601, 'Method not found'));
      // 2026-07-28: the SDK answers an unknown method with HTTP 404 (it is not in-band there)
      if (era === 'modern') status = 404;
      continue;
    }
    const d = ctx.policy.decide(id, a.target);
    audit(m, a.target, d);
    ctx.onDecision?.(d);
    if (d.allowed) {
      passed[passed.length - 1] = withCanonicalUri(m, a.target);
      continue;
    }
    refuse = true;
    if (!d.visible) {
      hidden.push(a.target);
      const answer = ctx.hiddenAnswer?.(m.id, a.target, era);
      if (answer !== undefined) answers.push(answer);
    } else answers.push(deniedAnswer(m, a.target, d, era));
  }
  if (Array.isArray(body)) {
    if (!refuse) return { kind: 'pass', scopes, hidden: [], body: passed };
    const reason = 'batch refused: it contains a request this caller may not make';
    return { kind: 'respond', status: 200, body: messages.filter(isRequest).map((m) => rpcError(m.id, -32600, reason)) };
  }
  if (answers.length > 0) return { kind: 'respond', status, body: answers[0] };
  const out = passed[0] as Message;
  const renamed = out !== messages[0] && header(ctx.headers, 'mcp-name') !== undefined;
  return { kind: 'pass', scopes, hidden, body: out, ...(renamed ? { mcpName: (out.params as { uri: string }).uri } : {}) };
}

/**
 * `subscriptions/listen` (2026-07-28) replaces `resources/subscribe`: each URI of its
 * `notifications.resourceSubscriptions` is decided as a subscription would be, and handed on in
 * canonical form; one not allowed answers the request as a refused subscription (found in
 * review, issue 16: the listen was always allowed, so its updates were the only gate).
 */
function listenSubscriptions(m: Message, ctx: GateContext, audit: (m: Message, t: PolicyTarget | undefined, d: { allowed: boolean; ruleId: string | null; reason: string }) => void, era: ProtocolEra): { answer: unknown } | { message: Message } {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  const p = isObj(m.params) ? m.params : undefined;
  const n = p && isObj(p.notifications) ? p.notifications : undefined;
  const uris = n?.resourceSubscriptions;
  if (uris === undefined) return { message: m };
  if (!Array.isArray(uris)) return { answer: rpcError(m.id, -32602, 'subscriptions/listen: notifications.resourceSubscriptions is not a list of URIs') };
  const canonical: string[] = [];
  for (const uri of uris) {
    const a = authorizationFor('resources/subscribe', { uri });
    if (a.kind === 'invalid') {
      audit(m, undefined, { allowed: false, ruleId: null, reason: a.reason });
      return { answer: rpcError(m.id, -32602, a.reason, { code: a.code, hint: a.hint }) };
    }
    if (a.kind !== 'target') {
      const reason = a.kind === 'unknown' ? a.reason : 'subscriptions/listen: a resource subscription without a URI';
      audit(m, undefined, { allowed: false, ruleId: null, reason });
      return { answer: rpcError(m.id, -32602, reason) };
    }
    const d = ctx.policy.decide(ctx.identity, a.target);
    audit(m, a.target, d);
    ctx.onDecision?.(d);
    // a 2026-07-28 method: a hidden URI as the listener says, else as SDK 2.x says it
    if (!d.allowed) return { answer: d.visible ? deniedAnswer(m, a.target, d, era) : (ctx.hiddenAnswer?.(m.id, a.target, era) ?? unknownTargetAnswerSdk2(m.id, a.target)) };
    canonical.push((a.target as { uri: string }).uri);
  }
  const same = canonical.every((u, i) => u === uris[i]);
  return { message: same ? m : { ...m, params: { ...p, notifications: { ...n, resourceSubscriptions: canonical } } } };
}

/** The request with the URI it names replaced by the canonical form it was decided in. */
function withCanonicalUri(m: Message, t: PolicyTarget): Message {
  if (t.kind !== 'resource' || (m.method !== 'resources/read' && m.method !== 'resources/subscribe' && m.method !== 'resources/unsubscribe')) return m;
  const p = m.params as Record<string, unknown>;
  return p.uri === t.uri ? m : { ...m, params: { ...p, uri: t.uri } };
}
