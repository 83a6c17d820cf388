/**
 * 2026-07-28 (stateless) clients on a stdio route: the stdio server speaks a 2025 revision
 * (initialize once, then requests), so the gateway bridges. A 2026-07-28 request carries its
 * revision, client info and capabilities in its own `_meta` envelope and opens no session; the
 * stdio upstream (stdio-upstream.ts) then
 *
 * - initializes the caller's process (if nothing did yet) with {@link LEGACY_REVISION} and the
 *   envelope's client info and capabilities, as a 2025 client would;
 * - answers `server/discover` itself, from the process's initialize result (its capabilities
 *   as 2026-07-28 names them, its instructions, its server info in `_meta`);
 * - sends any other request on without the envelope (a stdio server negotiated 2025 and must
 *   not read the request as another revision's), as a request of a session of its own that
 *   lasts as long as the request: its answer, progress and log messages at the envelope's
 *   `logLevel` on its POST stream, no `Mcp-Session-Id`;
 * - gives results the fields 2026-07-28 requires: `resultType: complete`, a caching hint (`ttlMs: 0`, `cacheScope:
 *   private`) on lists and reads (they are filtered per caller), and server info in `_meta`.
 *
 * Not bridged: server-to-client requests (sampling, elicitation, roots: 2026-07-28 asks for
 * them through the result, not as requests on the stream), answered to the process with an
 * error; `subscriptions/listen` (resource updates and list changes to a 2026-07-28 client).
 */
import { PROTOCOL_VERSION_META_KEY } from '../mcp/protocol-era.js';
import { PER_CALLER_CACHEABLE } from '../mcp/results.js';
import { isLogLevel, type LogLevel } from './stdio-notify.js';

export const CLIENT_INFO_META_KEY = 'io.modelcontextprotocol/clientInfo';
export const CLIENT_CAPABILITIES_META_KEY = 'io.modelcontextprotocol/clientCapabilities';
export const LOG_LEVEL_META_KEY = 'io.modelcontextprotocol/logLevel';
export const SERVER_INFO_META_KEY = 'io.modelcontextprotocol/serverInfo';

/** The revision a stdio process is initialized with for a 2026-07-28 caller: the last one that has `initialize`. */
export const LEGACY_REVISION = '2025-11-25';

/** The revisions the bridge offers in `server/discover`. */
export const BRIDGED_REVISIONS = ['2026-07-28'];

/** What 2026-07-28 names of a server's capabilities (ServerCapabilities2026: no tasks, no completions' legacy shapes...). */
const MODERN_CAPABILITIES = ['experimental', 'logging', 'completions', 'prompts', 'resources', 'tools', 'extensions'];

type Rpc = { jsonrpc?: string; id?: unknown; method?: string; params?: Record<string, unknown> };
type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const metaOf = (m: Rpc): Obj => (isObject(m.params) && isObject(m.params._meta) ? m.params._meta : {});

/** The level a 2026-07-28 request asked log messages at, if any. */
export function envelopeLogLevel(m: Rpc): LogLevel | undefined {
  const l = metaOf(m)[LOG_LEVEL_META_KEY];
  return isLogLevel(l) ? l : undefined;
}

/** The `initialize` a 2025 client with this request's envelope would have sent (identity `_meta` kept: the stdio upstream reads the caller from it). */
export function initializeFromEnvelope(m: Rpc): Rpc {
  const meta = metaOf(m);
  const { [PROTOCOL_VERSION_META_KEY]: _v, [CLIENT_INFO_META_KEY]: info, [CLIENT_CAPABILITIES_META_KEY]: caps, [LOG_LEVEL_META_KEY]: _l, ...rest } = meta;
  return {
    jsonrpc: '2.0',
    id: m.id,
    method: 'initialize',
    params: { protocolVersion: LEGACY_REVISION, capabilities: isObject(caps) ? caps : {}, clientInfo: isObject(info) ? info : { name: 'mcp-mtls-gateway', version: '1' }, _meta: rest },
  };
}

/** The request as the stdio server gets it: the 2026-07-28 envelope keys out of `_meta`. */
export function withoutEnvelope(m: Rpc): Rpc {
  if (!isObject(m.params) || !isObject(m.params._meta)) return m;
  const { [PROTOCOL_VERSION_META_KEY]: _v, [CLIENT_INFO_META_KEY]: _i, [CLIENT_CAPABILITIES_META_KEY]: _c, [LOG_LEVEL_META_KEY]: _l, ...meta } = m.params._meta;
  return { ...m, params: { ...m.params, _meta: meta } };
}

/** The `server/discover` result, from the process's initialize result. */
export function discoverResult(init: Obj): Obj {
  const caps = isObject(init.capabilities) ? init.capabilities : {};
  return {
    supportedVersions: BRIDGED_REVISIONS,
    capabilities: Object.fromEntries(Object.entries(caps).filter(([k]) => MODERN_CAPABILITIES.includes(k))),
    ...(typeof init.instructions === 'string' ? { instructions: init.instructions } : {}),
    ttlMs: 0,
    cacheScope: 'private',
    ...(isObject(init.serverInfo) ? { _meta: { [SERVER_INFO_META_KEY]: init.serverInfo } } : {}),
  };
}

/** A 2025 result as a 2026-07-28 client takes it: `resultType`, caching hints on lists and reads, server info in `_meta`. */
export function modernResult(method: string | undefined, result: unknown, serverInfo: unknown): unknown {
  if (!isObject(result)) return result;
  // 2026-07-28 results say whether they are complete (a 2025 server's always are)
  const out: Obj = { resultType: 'complete', ...result };
  if (method !== undefined && PER_CALLER_CACHEABLE.has(method)) {
    if (typeof out.ttlMs !== 'number') out.ttlMs = 0;
    out.cacheScope = 'private';
  }
  if (isObject(serverInfo)) out._meta = { ...(isObject(out._meta) ? out._meta : {}), [SERVER_INFO_META_KEY]: serverInfo };
  return out;
}
