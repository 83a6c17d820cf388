/** The gateway's request handler: see {@link createGatewayHandler}. */
import type { ServerResponse } from 'node:http';
import type { AuditSink } from '../mtls/audit.js';
import { sendJson } from '../mcp/http-body.js';
import { hostCheck, refuseHost, type HostCheckOptions } from '../mcp/host-check.js';
import { stderrLog } from '../util/log.js';
import type { MtlsHandler, MtlsRequest } from '../mtls/mtls-server.js';
import type { GatewayMetrics } from './metrics.js';
import { forwardResponse } from './response.js';
import { isTransportMethod, pathBelowRoute, routeFinder, upstreamUrlFor, type GatewayRoute } from './route.js';
import { SessionTable, sessionIdOf } from './sessions.js';
import { gateRequestBody } from './request-body.js';
import { upstreamRequestHeaders, xfccHeaders } from './request-headers.js';
import { filterAnswer, type AskedLists } from './answer-filter.js';
import { MAX_STREAMS_PER_CERT, StreamLimit } from './stream-limit.js';
import { rememberedContext, ResumeTable, type StreamContext } from './resume.js';
import { callUpstream, clientResponseHeaders, UpstreamPools } from './upstream.js';
import { delegationFields } from './identity-meta.js';

export { IDENTITY_META_KEY } from './identity-meta.js';
export type { GatewayRoute } from './route.js';

/** Options of {@link createGatewayHandler}; `allowedHosts` / `allowedOrigins` as the adapters take them (mcp/host-check.ts). */
export interface GatewayOptions extends HostCheckOptions {
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
 * 5. sessions bound to the certificate that opened them, and SSE resumption (`Last-Event-ID`)
 *    only of a stream this certificate was sent in this session, its replay decided as that
 *    stream (resume.ts); any other event id is refused (400) before the upstream sees it.
 *
 * A `Host` or `Origin` naming another server is refused 403 (DNS rebinding; by default the
 * gateway certificate's names and loopback are accepted, plus `allowedHosts` / `allowedOrigins`).
 * An unreachable upstream is a 502 JSON-RPC error, a slow one a 504; the gateway stays up.
 * Paths with dot segments, encoded slashes, empty segments, a fragment, a `;` parameter or
 * percent-encoded letters and digits are refused (400); at most 8
 * streams (GET streams and 2026-07-28 listen streams together) are open per certificate (then 429).
 *
 * @returns the handler, with `inFlight()` (requests being served) and `close()` (closes the
 *   gateway's own upstream connection pools, not the routes' dispatchers)
 */
export function createGatewayHandler(options: GatewayOptions): MtlsHandler & { close(): Promise<void>; inFlight(): number } {
  const findRoute = routeFinder(options.routes);
  const pools = new UpstreamPools();
  const streams = new StreamLimit();
  const sessions = new SessionTable({ ...(options.sessionIdleMs !== undefined ? { idleMs: options.sessionIdleMs } : {}), ...(options.maxSessions !== undefined ? { max: options.maxSessions } : {}) });
  const resumes = new ResumeTable();
  const xfccOf = xfccHeaders();
  const timeoutMs = options.upstreamTimeoutMs ?? 30_000;
  const log = options.log ?? stderrLog('mcp-mtls gateway');
  let inFlight = 0;

  const foreignHost = hostCheck(options);

  const handler = async (req: MtlsRequest, res: ServerResponse) => {
    // a Host or Origin naming another server (DNS rebinding): the gateway sets Host towards the
    // upstream, so the upstream's own check would never see this one
    const refusedHost = foreignHost(req);
    if (refusedHost !== undefined) {
      // said where operators look: a load balancer keeping its own name in Host needs allowedHosts
      log(`refused ${req.method} ${String(req.url).slice(0, 200)} from ${req.socket.remoteAddress}: ${refusedHost} (allowedHosts / allowedOrigins, docs/gateway.md)`);
      return refuseHost(res, refusedHost);
    }
    // 2. the route
    const url = req.url ?? '/';
    const route = findRoute(url);
    if (!route) return sendJson(res, 404, { error: 'not_found', message: `no route for ${url}` });
    if (!isTransportMethod(req.method)) return sendJson(res, 405, { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Method not allowed' } });
    const below = pathBelowRoute(url, route.prefix);
    if (below === undefined) return sendJson(res, 400, { error: 'bad_path', message: 'the path may not contain dot segments, encoded slashes, empty segments, a fragment, a ; parameter or percent-encoded letters and digits' });
    const identity = (req.auth as NonNullable<MtlsRequest['auth']>).extra.identity;
    const policy = route.policy();
    const remote = req.socket.remoteAddress;
    inFlight++;
    res.once('close', () => inFlight--);
    const metrics = options.metrics;
    if (metrics) res.once('finish', () => metrics.request(route.prefix, res.statusCode));

    // 5. sessions: bound to the certificate that opened them
    const sid = sessionIdOf(req.headers);
    const refusal = sid === undefined ? undefined : sessions.refusal(route.prefix, sid, identity.fingerprint);
    if (refusal !== undefined) {
      options.audit?.write({ event: 'session.refused', principal: identity.principal, ...delegationFields(identity), fingerprint: identity.fingerprint, route: route.prefix, reason: refusal });
      return sendJson(res, 404, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
    }

    // the caller's credential for the upstream (upstream-credentials.ts): none for it is a denial, never another's
    const credential = route.credentials?.for(identity);
    if (credential && 'refused' in credential) {
      options.audit?.write({ event: 'credential.refused', principal: identity.principal, ...delegationFields(identity), fingerprint: identity.fingerprint, route: route.prefix, reason: credential.refused, remote });
      return sendJson(res, 403, { jsonrpc: '2.0', id: null, error: { code: -32001, message: credential.refused } });
    }

    // 2, 3. the gate, and the identity in the body
    let body: string | undefined;
    let mcpName: string | undefined;
    let asked: AskedLists = new Map();
    let requestIds: ReadonlySet<unknown> = new Set(); // the answers this POST may receive (response.ts)
    let listens = false; // a 2026-07-28 listen stream: counted with the GET streams
    if (req.method === 'POST') {
      const gated = await gateRequestBody(req, { identity, policy, headers: req.headers, remote, ...(options.audit ? { audit: options.audit } : {}), ...(options.metrics ? { metrics: options.metrics } : {}), ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}) });
      if (gated.kind === 'respond') return sendJson(res, gated.status, gated.body);
      ({ body, mcpName, asked, requestIds, listens } = gated);
    }

    // 5. resumption: only of a stream this certificate was sent, in this session, on this route
    const isStream = req.method === 'GET';
    const lastEventHeader = req.headers['last-event-id'];
    const lastEventId = isStream ? (Array.isArray(lastEventHeader) ? lastEventHeader[0] : lastEventHeader) : undefined;
    let stream: StreamContext = { requestIds, asked, answered: new Set() };
    const resuming = lastEventId !== undefined && lastEventId !== '';
    if (resuming) {
      const resumed = resumes.resumable({ prefix: route.prefix, sid, fingerprint: identity.fingerprint }, lastEventId);
      if (!resumed) {
        options.audit?.write({ event: 'session.refused', principal: identity.principal, ...delegationFields(identity), fingerprint: identity.fingerprint, route: route.prefix, reason: 'Last-Event-ID names no event this certificate was sent in this session', remote });
        return sendJson(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Last-Event-ID names no event of this session sent to this certificate' } });
      }
      stream = resumed;
    }

    // 3. the identity in the headers
    const redact = credential && 'headers' in credential ? route.credentials?.redactorFor(identity) : undefined;
    const headers = upstreamRequestHeaders(req.headers, { xfcc: xfccOf(req, identity), remote, isStream, ...(body !== undefined ? { body } : {}), ...(mcpName !== undefined ? { mcpName } : {}), ...(lastEventId ? { lastEventId } : {}), ...(route.credentials ? { drop: route.credentials.names, ...(credential && 'headers' in credential ? { inject: credential.headers } : {}) } : {}) });
    const upstreamUrl = upstreamUrlFor(route, below);
    if (!upstreamUrl) return sendJson(res, 400, { error: 'bad_path', message: 'the path leaves the route' });
    if ((isStream || listens) && !streams.tryOpen(identity.fingerprint, res)) {
      return sendJson(res, 429, { jsonrpc: '2.0', id: null, error: { code: -32000, message: `at most ${MAX_STREAMS_PER_CERT} open streams per certificate` } });
    }

    const started = performance.now();
    const upstream = await callUpstream({ url: upstreamUrl, method: req.method, headers, ...(body !== undefined ? { body } : {}), dispatcher: pools.for(route, isStream || listens), timeoutMs }, res, route, log);
    if (!upstream) return;
    options.metrics?.upstreamLatency(route.prefix, (performance.now() - started) / 1000);
    sessions.answered(route.prefix, { method: req.method, sid }, upstream, identity.fingerprint);
    const opened = upstream.headers['mcp-session-id'];
    const owner = { prefix: route.prefix, sid: sid ?? (typeof opened === 'string' ? opened : undefined), fingerprint: identity.fingerprint };
    // what a resumption of this stream is decided with: a resumed stream's own; a new one's, kept
    // small, worked out when its first event id is written (a JSON answer has none: most POSTs)
    let remembered: StreamContext | undefined | null = resuming ? stream : null;

    // 4. the response, fail closed: only what the gateway parsed and decided reaches the client,
    // each message under the policy in force when it arrives (a listen stream outlives reloads)
    try {
      await forwardResponse(upstream, res, clientResponseHeaders(upstream.headers), {
        bodyTimeoutMs: timeoutMs,
        requestIds: stream.requestIds,
        filterResult: (id, result) => filterAnswer(stream.asked, id, result, route.policy(), identity),
        answered: stream.answered,
        wroteEvent: (eventId) => resumes.wrote(owner, eventId, remembered === null ? (remembered = rememberedContext(stream)) : remembered),
        writtenToAnother: (eventId) => resumes.writtenToAnother(owner, eventId),
        mayRead: (uri) => route.policy().filterResources(identity, [{ uri }]).length > 0,
        // an upstream that echoes the credential it got shows the caller `[redacted]` (redact.ts)
        ...(redact ? { redact } : {}),
        refused: (upstreamReason) => {
          // a reason may quote what the upstream sent (a method name, a content type): never the caller's secret in the audit or log
          const reason = redact ? redact.line(upstreamReason) : upstreamReason;
          options.audit?.write({ event: 'response.refused', principal: identity.principal, ...delegationFields(identity), fingerprint: identity.fingerprint, route: route.prefix, method: req.method, reason, remote });
          log(`${route.prefix}: not forwarded to ${identity.principal}: ${reason}`);
        },
      });
    } catch (e) {
      // a client that closes its stream (done reading, or resuming it later) is not an upstream failure
      const clientLeft = (e as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE' && req.socket.destroyed;
      if (!res.writableEnded && !clientLeft) log(`streaming from ${route.upstream.href}: ${(e as Error).message}`);
      upstream.discard();
      res.destroy();
    }
  };

  return Object.assign(handler, { inFlight: () => inFlight, close: () => pools.close() });
}
