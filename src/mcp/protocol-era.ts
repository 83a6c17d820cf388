/**
 * Which protocol revision a request speaks, as the SDK 2.x server classifies it (body first,
 * the `MCP-Protocol-Version` header as the cross-check): 2026-07-28 requests carry the
 * revision in `params._meta["io.modelcontextprotocol/protocolVersion"]` (stateless: every
 * request names it), and send the header; a 2025-era client negotiates at `initialize` and
 * then sends the negotiated version in the header. The gate answers what it answers itself
 * (unknown methods, header mismatches, hidden targets) as that revision requires.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** `legacy`: 2025-11-25 and before (initialize, sessions); `modern`: 2026-07-28 and later (stateless, per-request envelope). */
export type ProtocolEra = 'legacy' | 'modern';

/** The first revision of the modern era. */
export const FIRST_MODERN_REVISION = '2026-07-28';

/** The `_meta` key of a 2026-07-28 request's protocol version. */
export const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';

const isModern = (v: unknown): boolean => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v.trim()) && v.trim() >= FIRST_MODERN_REVISION;

/** The era of one message (a batch is legacy: 2026-07-28 has no batches), from its envelope, else the header. */
export function protocolEra(body: unknown, headers: IncomingHttpHeaders): ProtocolEra {
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const params = (body as { params?: unknown }).params;
    const meta = params !== null && typeof params === 'object' ? (params as { _meta?: unknown })._meta : undefined;
    if (meta !== null && typeof meta === 'object' && PROTOCOL_VERSION_META_KEY in meta) return isModern((meta as Record<string, unknown>)[PROTOCOL_VERSION_META_KEY]) ? 'modern' : 'legacy';
  } else if (Array.isArray(body)) return 'legacy';
  const h = headers['mcp-protocol-version'];
  return isModern(Array.isArray(h) ? h[0] : h) ? 'modern' : 'legacy';
}
