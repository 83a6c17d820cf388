/** Which policy question an MCP request asks: see {@link authorizationFor}. */
import type { PolicyTarget } from './compile.js';

/**
 * What {@link authorizationFor} makes of an MCP request: `always` allowed (handshake, ping,
 * notifications), a `list` whose result must be filtered (e.g. with
 * {@link Policy.filterTools}), a `target` to decide with {@link Policy.decide}, or `unknown`:
 * deny, for `reason`.
 */
export type McpAuthorization =
  | { readonly kind: 'always' }
  | { readonly kind: 'list'; readonly what: 'tools' | 'resources' | 'resourceTemplates' | 'prompts' }
  | { readonly kind: 'target'; readonly target: PolicyTarget }
  | { readonly kind: 'unknown'; readonly reason: string };

// server/discover and subscriptions/listen: the 2026-07-28 handshake and change streams
const ALWAYS = new Set(['initialize', 'ping', 'logging/setLevel', 'server/discover', 'subscriptions/listen', 'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed']);

/** Names and URIs longer than this are refused before any pattern sees them. */
export const MAX_NAME = 1024;
export const MAX_URI = 8192;

/**
 * The URI a server will act on: MCP SDKs parse resource URIs with the WHATWG URL parser, which
 * resolves dot segments (`%2e%2e` included) for special schemes. Policy decides on that form,
 * so `file:///srv/public/%2e%2e/secret` is matched as `file:///srv/secret`.
 */
export function normalizeUri(uri: string): string {
  try {
    return new URL(uri).href;
  } catch {
    return uri;
  }
}
const LISTS: Record<string, 'tools' | 'resources' | 'resourceTemplates' | 'prompts'> = {
  'tools/list': 'tools',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
  'prompts/list': 'prompts',
};

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Which policy question an MCP request asks. Methods that touch nothing sensitive are always
 * allowed, list methods are allowed with their results filtered, and calls that name a tool,
 * resource or prompt (`tools/call`, `resources/read` and (un)subscribe, `prompts/get`,
 * `completion/complete`) become a {@link PolicyTarget}. A method this table does not know is
 * `unknown`, to deny, so a new protocol method is closed until someone decides otherwise; so
 * is a call without its name or URI, or one whose name (over 1024 characters) or URI (over
 * 8192) is too long. Resource URIs come back normalized ({@link normalizeUri}). Never throws.
 *
 * @param method - the JSON-RPC method
 * @param params - the JSON-RPC params, unvalidated
 */
export function authorizationFor(method: string, params: unknown): McpAuthorization {
  if (ALWAYS.has(method) || method.startsWith('notifications/')) return { kind: 'always' };
  const list = LISTS[method];
  if (list) return { kind: 'list', what: list };
  const p = (params && typeof params === 'object' ? params : {}) as Record<string, unknown>;
  const missing = (field: string): McpAuthorization => ({ kind: 'unknown', reason: `${method} without a ${field}` });
  const tooLong: McpAuthorization = { kind: 'unknown', reason: `${method}: the name or URI is too long` };
  switch (method) {
    case 'tools/call': {
      const name = str(p.name);
      if (name === undefined) return missing('tool name');
      return name.length > MAX_NAME ? tooLong : { kind: 'target', target: { kind: 'tool', name, args: p.arguments ?? {} } };
    }
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe': {
      const uri = str(p.uri);
      if (uri === undefined) return missing('uri');
      return uri.length > MAX_URI ? tooLong : { kind: 'target', target: { kind: 'resource', uri: normalizeUri(uri) } };
    }
    case 'prompts/get': {
      const name = str(p.name);
      if (name === undefined) return missing('prompt name');
      return name.length > MAX_NAME ? tooLong : { kind: 'target', target: { kind: 'prompt', name, args: p.arguments ?? {} } };
    }
    case 'completion/complete': {
      const ref = (p.ref && typeof p.ref === 'object' ? p.ref : {}) as Record<string, unknown>;
      const name = str(ref.name);
      const uri = str(ref.uri);
      if (ref.type === 'ref/prompt' && name !== undefined) return name.length > MAX_NAME ? tooLong : { kind: 'target', target: { kind: 'prompt', name, args: {} } };
      if (ref.type === 'ref/resource' && uri !== undefined) return uri.length > MAX_URI ? tooLong : { kind: 'target', target: { kind: 'resource', uri: normalizeUri(uri) } };
      return missing('ref');
    }
  }
  return { kind: 'unknown', reason: `method "${method}" is not covered by the policy` };
}
