/** The gateway's request handler: see {@link createGatewayHandler}. */
import type { ServerResponse } from 'node:http';
import { Agent, request, type Dispatcher } from 'undici';
import type { Identity } from '../identity/identity.js';
import type { Policy, PolicySubject } from '../policy/compile.js';
import type { AuditSink } from '../mtls/audit.js';
import { readJsonBody, sendJson } from '../mcp/http-body.js';
import { IdleMap } from '../util/idle-map.js';
import { stderrLog } from '../util/log.js';
import { handshakeCertificate } from '../mtls/handshake-certificate.js';
import { gateMcpBody, unknownTargetAnswer } from '../mcp/gate.js';
import { FILTERED_METHODS, filterResult } from '../mcp/results.js';
import type { MtlsHandler, MtlsRequest } from '../mtls/mtls-server.js';
import type { GatewayMetrics } from './metrics.js';
import { forwardResponse } from './response.js';
import { formatXfcc, XFCC } from '../mtls/xfcc.js';

/**
 * The `_meta` key under which the gateway tells the upstream who is calling: every request
 * and notification it forwards carries `params._meta["mcp-mtls/identity"] = { principal,
 * teams, roles, scopes }`. A value a client wrote under this key is removed first.
 */
export const IDENTITY_META_KEY = 'mcp-mtls/identity';

/** One upstream MCP server behind the gateway; a request goes to the route with the longest matching prefix. */
export interface GatewayRoute {
  /** Path prefix, e.g. `/mcp`; the path below it is appended to the upstream's path. */
  readonly prefix: string;
  /** The upstream's Streamable HTTP endpoint. */
  readonly upstream: URL;
  /** The policy in force for this route, read per request (e.g. `() => watcher.current()`). */
  readonly policy: () => Policy;
  /** For HTTPS upstreams: carries the gateway's own client certificate and trusted CA. Default: the gateway's plain connection pools. */
  readonly dispatcher?: Dispatcher;
}

/** Options of {@link createGatewayHandler}. */
export interface GatewayOptions {
  readonly routes: readonly GatewayRoute[];
  /** Receives `decision` and `session.refused` events. */
  readonly audit?: AuditSink;
  /** Internal: {@link startGateway} passes its Prometheus metrics here. */
  readonly metrics?: GatewayMetrics;
  /** How long to wait for the upstream's response headers, in milliseconds; default 30,000. A timeout is answered 504. */
  readonly upstreamTimeoutMs?: number;
  /** a session unused this long is forgotten (its id then gets 404, and MCP clients start a new one); default 8 h */
  readonly sessionIdleMs?: number;
  /** at most this many sessions are remembered, least recently used forgotten first; default 100,000 */
  readonly maxSessions?: number;
  /** Larger POST bodies are answered 413; default 4 MiB. */
  readonly maxBodyBytes?: number;
  /** Where upstream failures are logged; default stderr. */
  readonly log?: (line: string) => void;
}

/** Request headers never forwarded: hop-by-hop, and identity claims a client could forge. */
const DROP_REQUEST = new Set([
  'host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'proxy-connection', 'te', 'trailer',
  XFCC, 'x-forwarded-user', 'x-remote-user', 'x-mcp-user', 'x-mcp-identity', 'x-user', 'x-auth-request-user', 'forwarded',
  // the client-certificate headers other TLS proxies set (Traefik, nginx setups, AWS ALB, Azure),
  // which an upstream written for one of them trusts (found in review, issue 16)
  'x-forwarded-tls-client-cert', 'x-forwarded-tls-client-cert-info', 'x-ssl-client-cert', 'ssl-client-cert', 'x-client-cert', 'x-client-dn',
  'x-ssl-client-dn', 'x-ssl-client-s-dn', 'x-ssl-client-verify', 'x-client-verify', 'x-amzn-mtls-clientcert', 'x-amzn-mtls-clientcert-leaf', 'x-arr-clientcert',
]);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'trailer']);

/** What a request asked, by id, for the answers to filter (lists and completions). */
type Filtered = Map<unknown, { readonly method: string; readonly params: unknown }>;

interface Message {
  id?: unknown;
  method?: unknown;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
}

/** List and completion results filtered for the caller, as the SDK adapters filter theirs (mcp-results.ts). */
function rewriteMessages(value: unknown, lists: Filtered, policy: Policy, who: PolicySubject): unknown {
  const one = (m: Message): Message => {
    const asked = m && m.id !== undefined ? lists.get(m.id) : undefined;
    return asked && m.result ? { ...m, result: filterResult(asked.method, asked.params, m.result, policy, who) as Record<string, unknown> } : m;
  };
  return Array.isArray(value) ? value.map(one) : one(value as Message);
}

/** Every message loses a client-written identity key; requests and notifications get the verified one. */
function withIdentity(m: Message, identity: Identity, scopes: readonly string[]): Message {
  if (!m || typeof m !== 'object') return m;
  const stripped = { ...m } as Message & { result?: Record<string, unknown> };
  if (stripped.result && typeof stripped.result === 'object' && stripped.result._meta && typeof stripped.result._meta === 'object') {
    const meta = { ...(stripped.result._meta as Record<string, unknown>) };
    delete meta[IDENTITY_META_KEY];
    stripped.result = { ...stripped.result, _meta: meta };
  }
  if (typeof m.method !== 'string') return stripped;
  const params = m.params && typeof m.params === 'object' ? { ...m.params } : {};
  const meta = params._meta && typeof params._meta === 'object' ? { ...(params._meta as Record<string, unknown>) } : {};
  delete meta[IDENTITY_META_KEY]; // a client never speaks for itself here
  meta[IDENTITY_META_KEY] = { principal: identity.principal, teams: identity.teams, roles: identity.roles, scopes };
  return { ...stripped, params: { ...params, _meta: meta } };
}

/**
 * The request path below the route, or undefined when it tries to leave it: dot segments
 * (plain or percent-encoded), encoded slashes and empty segments are refused, so the upstream
 * URL can never name another path or host (found in review: `//host` and `/../`).
 */
function pathBelowRoute(url: string, prefix: string): string | undefined {
  const rest = url.slice(prefix.length);
  const [pathPart] = rest.split('?', 1) as [string];
  const segments = pathPart.split('/');
  if (/%2e|%2f|%5c|\\/i.test(pathPart) || segments.some((seg, i) => seg === '..' || seg === '.' || (seg === '' && i > 0 && i < segments.length - 1))) return undefined;
  if (pathPart.startsWith('//')) return undefined;
  return rest;
}

function rpcFailure(res: ServerResponse, status: number, message: string): void {
  if (!res.headersSent) sendJson(res, status, { jsonrpc: '2.0', id: null, error: { code: -32603, message } });
  else res.destroy();
}

/**
 * The gateway as a request handler for {@link createMtlsServer}: mTLS identity and per-tool
 * policy in front of any Streamable HTTP MCP server, without changing it. Per request:
 *
 * 1. authentication (done by createMtlsServer: the same reasons and modes as the server adapter);
 * 2. the route (longest path prefix) and, for POST, the JSON-RPC gate shared with the
 *    adapters (policy per message, batches, Mcp-Method headers, audit); a hidden target is
 *    answered here as an SDK server answers an unknown one, since the upstream still has it;
 * 3. identity to the upstream: `x-forwarded-client-cert` (Envoy format) and
 *    `params._meta["mcp-mtls/identity"]` in every request message; any such header or key
 *    sent by the client is removed first;
 * 4. the response, fail closed (response.ts): only JSON and SSE bodies of JSON-RPC messages
 *    are forwarded (asked for unencoded), each message decided (server-messages.ts): list
 *    results filtered per caller, in JSON and in SSE streams (event by event, never buffered
 *    whole), on POST answers and GET streams alike; responses on GET streams, unknown server
 *    methods, undecodable events and other bodies (the legacy HTTP+SSE transport's included)
 *    are not forwarded, each with a `response.refused` audit line;
 * 5. sessions bound to the certificate that opened them.
 *
 * An unreachable upstream is a 502 JSON-RPC error, a slow one a 504; the gateway stays up.
 * Paths with dot segments, encoded slashes or empty segments are refused (400); at most 8
 * GET streams are open per certificate (then 429).
 *
 * @returns the handler, with `inFlight()` (requests being served) and `close()` (closes the
 *   gateway's own upstream connection pools, not the routes' dispatchers)
 */
export function createGatewayHandler(options: GatewayOptions): MtlsHandler & { close(): Promise<void>; inFlight(): number } {
  const routes = [...options.routes].sort((a, b) => b.prefix.length - a.prefix.length);
  // requests and long-lived GET streams in separate pools, so streams can never starve calls;
  // streams are also capped per certificate
  const dispatcher = new Agent({ keepAliveTimeout: 30_000 });
  const streamDispatcher = new Agent({ keepAliveTimeout: 30_000 });
  const streamsPer = new Map<string, number>();
  const MAX_STREAMS_PER_CERT = 8;
  // route+session id -> certificate fingerprint
  const sessions = new IdleMap<string, string>({ idleMs: options.sessionIdleMs ?? 8 * 3_600_000, max: options.maxSessions ?? 100_000 });
  const timeout = options.upstreamTimeoutMs ?? 30_000;
  // the header is the same for every request of a connection's certificate: build it once
  const xfccOf = new WeakMap<Identity, string>();
  const log = options.log ?? stderrLog('mcp-mtls gateway');
  let inFlight = 0;

  const handler = async (req: MtlsRequest, res: ServerResponse) => {
    const url = req.url ?? '/';
    const route = routes.find((r) => url === r.prefix || url.startsWith(r.prefix.endsWith('/') ? r.prefix : `${r.prefix}/`) || url.startsWith(`${r.prefix}?`));
    if (!route) return sendJson(res, 404, { error: 'not_found', message: `no route for ${url}` });
    if (req.method !== 'GET' && req.method !== 'POST' && req.method !== 'DELETE') return sendJson(res, 405, { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Method not allowed' } });
    const below = pathBelowRoute(url, route.prefix);
    if (below === undefined) return sendJson(res, 400, { error: 'bad_path', message: 'the path may not contain dot segments, encoded slashes or empty segments' });
    const identity = (req.auth as NonNullable<MtlsRequest['auth']>).extra.identity;
    const policy = route.policy();
    const remote = req.socket.remoteAddress;
    inFlight++;
    res.once('close', () => inFlight--);
    res.once('finish', () => options.metrics?.request(route.prefix, res.statusCode));

    // sessions: bound to the certificate that opened them
    const sidHeader = req.headers['mcp-session-id'];
    const sid = Array.isArray(sidHeader) ? sidHeader[0] : sidHeader;
    if (sid !== undefined && sessions.get(`${route.prefix} ${sid}`) !== identity.fingerprint) {
      options.audit?.write({ event: 'session.refused', principal: identity.principal, fingerprint: identity.fingerprint, route: route.prefix, reason: sessions.has(`${route.prefix} ${sid}`) ? 'the session belongs to another certificate' : 'unknown session' });
      return sendJson(res, 404, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
    }

    let body: string | undefined;
    const lists: Filtered = new Map();
    const requestIds = new Set<unknown>(); // the answers this POST may receive (response.ts)
    if (req.method === 'POST') {
      const read = await readJsonBody(req, options.maxBodyBytes);
      if (!read.ok) {
        options.audit?.write({ event: 'decision', principal: identity.principal, fingerprint: identity.fingerprint, allowed: false, ruleId: null, reason: `refused body: HTTP ${read.status}`, remote });
        return sendJson(res, read.status, read.body);
      }
      const gate = gateMcpBody(read.value, {
        policy,
        identity,
        headers: req.headers,
        hiddenAnswer: unknownTargetAnswer,
        ...(options.audit ? { audit: options.audit } : {}),
        ...(remote ? { remote } : {}),
        ...(options.metrics ? { onDecision: (d) => options.metrics!.decision(d.ruleId, d.allowed) } : {}),
      });
      if (gate.kind === 'respond') return sendJson(res, gate.status, gate.body);
      // forwarded as decided: resource URIs in canonical form (mcp-gate.ts)
      const messages = (Array.isArray(gate.body) ? gate.body : [gate.body]) as Message[];
      for (const m of messages) {
        if (typeof m?.method === 'string' && FILTERED_METHODS.has(m.method) && m.id !== undefined) lists.set(m.id, { method: m.method, params: m.params });
      }
      for (const m of messages) if (typeof m?.method === 'string' && m.id !== undefined) requestIds.add(m.id);
      const forwarded = messages.map((m) => withIdentity(m, identity, gate.scopes));
      body = JSON.stringify(Array.isArray(gate.body) ? forwarded : forwarded[0]);
      if (gate.mcpName !== undefined) req.headers['mcp-name'] = gate.mcpName;
    }

    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || DROP_REQUEST.has(k)) continue;
      headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    let xfcc = xfccOf.get(identity);
    // the certificate of the verified handshake, which the identity was decoded from; a later
    // read of the peer certificate would return what a renegotiation swapped in
    if (!xfcc) xfccOf.set(identity, (xfcc = formatXfcc(identity, handshakeCertificate(req.socket)?.raw ?? Buffer.alloc(0))));
    headers[XFCC] = xfcc;
    headers['x-forwarded-for'] = remote ?? '';
    // an encoded answer could not be read, so could not be filtered (response.ts refuses one)
    headers['accept-encoding'] = 'identity';
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));

    const upstreamUrl = below === '' ? route.upstream : new URL(`${route.upstream.pathname.replace(/\/$/, '')}${below.startsWith('/') || below.startsWith('?') ? '' : '/'}${below}`, route.upstream.origin);
    if (upstreamUrl.origin !== route.upstream.origin || !upstreamUrl.pathname.startsWith(route.upstream.pathname.replace(/\/$/, ''))) {
      return sendJson(res, 400, { error: 'bad_path', message: 'the path leaves the route' });
    }
    const isStream = req.method === 'GET';
    if (isStream) {
      const open = streamsPer.get(identity.fingerprint) ?? 0;
      if (open >= MAX_STREAMS_PER_CERT) return sendJson(res, 429, { jsonrpc: '2.0', id: null, error: { code: -32000, message: `at most ${MAX_STREAMS_PER_CERT} open streams per certificate` } });
      streamsPer.set(identity.fingerprint, open + 1);
      res.once('close', () => {
        const n = (streamsPer.get(identity.fingerprint) ?? 1) - 1;
        if (n > 0) streamsPer.set(identity.fingerprint, n);
        else streamsPer.delete(identity.fingerprint);
      });
      // no replay of earlier events: they were answers to other requests, unfiltered
      delete headers['last-event-id'];
    }
    const started = performance.now();
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await request(upstreamUrl, {
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        headers,
        ...(body !== undefined ? { body } : {}),
        dispatcher: route.dispatcher ?? (isStream ? streamDispatcher : dispatcher),
        headersTimeout: timeout,
        bodyTimeout: 0, // SSE streams stay open as long as they have to
      });
    } catch (e) {
      const code = (e as { code?: string }).code;
      const slow = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
      log(`upstream ${route.upstream.href}: ${code ?? ''} ${(e as Error).message}`);
      return rpcFailure(res, slow ? 504 : 502, slow ? `the upstream MCP server did not answer within ${timeout} ms` : 'the upstream MCP server is unavailable');
    }
    options.metrics?.upstreamLatency(route.prefix, (performance.now() - started) / 1000);

    const outHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upstream.headers)) if (v !== undefined && !DROP_RESPONSE.has(k)) outHeaders[k] = v as string | string[];
    const newSid = upstream.headers['mcp-session-id'];
    if (typeof newSid === 'string' && sid === undefined) sessions.set(`${route.prefix} ${newSid}`, identity.fingerprint);
    if (req.method === 'DELETE' && sid !== undefined && upstream.statusCode < 300) sessions.delete(`${route.prefix} ${sid}`);

    try {
      // only what the gateway parsed and decided reaches the client (fail closed: response.ts)
      await forwardResponse(upstream, res, outHeaders, {
        requestIds,
        filterResult: (id, result) => (rewriteMessages({ id, result }, lists, policy, identity) as Message).result ?? result,
        mayRead: (uri) => policy.filterResources(identity, [{ uri }]).length > 0,
        refused: (reason) => {
          options.audit?.write({ event: 'response.refused', principal: identity.principal, fingerprint: identity.fingerprint, route: route.prefix, method: req.method, reason, remote });
          log(`${route.prefix}: not forwarded to ${identity.principal}: ${reason}`);
        },
      });
    } catch (e) {
      if (!res.writableEnded) log(`streaming from ${route.upstream.href}: ${(e as Error).message}`);
      upstream.body.destroy();
      res.destroy();
    }
  };

  return Object.assign(handler, {
    inFlight: () => inFlight,
    close: async () => {
      await dispatcher.close().catch(() => undefined);
      await streamDispatcher.close().catch(() => undefined);
    },
  });
}
