/** Which policy question an MCP request asks: see {@link authorizationFor}. */
import type { PolicyTarget } from './compile.js';
import { canonicalizeTemplate, canonicalizeUri, URI_HINT, type CanonicalUri } from './uri.js';

/**
 * What {@link authorizationFor} makes of an MCP request: `always` allowed (handshake, ping,
 * notifications), a `list` whose result must be filtered (e.g. with
 * {@link Policy.filterTools}), a `target` to decide with {@link Policy.decide}, `invalid`: a
 * resource URI without a canonical form (refuse as invalid params, naming `reason`), or
 * `unknown`: deny, for `reason`.
 */
export type McpAuthorization =
  | { readonly kind: 'always' }
  | { readonly kind: 'list'; readonly what: 'tools' | 'resources' | 'resourceTemplates' | 'prompts' }
  | { readonly kind: 'target'; readonly target: PolicyTarget }
  | { readonly kind: 'invalid'; readonly code: 'RESOURCE_URI_INVALID'; readonly reason: string; readonly hint: string }
  | { readonly kind: 'unknown'; readonly reason: string };

// server/discover and subscriptions/listen: the 2026-07-28 handshake and change streams
const ALWAYS = new Set(['initialize', 'ping', 'logging/setLevel', 'server/discover', 'subscriptions/listen', 'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed']);

/** Names and URIs longer than this are refused before any pattern sees them. */
export const MAX_NAME = 1024;
export const MAX_URI = 8192;

/**
 * The canonical form of a resource URI ({@link canonicalUri}), or `uri` unchanged when it has
 * none (which {@link Policy.decide} then denies as unknown). Kept for callers of earlier
 * versions, which normalized with WHATWG URL: that kept `%73` as `%73` (issue 16).
 */
export function normalizeUri(uri: string): string {
  const c = canonicalizeUri(uri);
  return c.ok ? c.uri : uri;
}
const LISTS: Record<string, 'tools' | 'resources' | 'resourceTemplates' | 'prompts'> = {
  'tools/list': 'tools',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
  'prompts/list': 'prompts',
};

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function resource(method: string, c: CanonicalUri): McpAuthorization {
  if (!c.ok) return { kind: 'invalid', code: 'RESOURCE_URI_INVALID', reason: `${method}: resource URI refused: ${c.problem}`, hint: URI_HINT };
  return { kind: 'target', target: { kind: 'resource', uri: c.uri } };
}

/**
 * Which policy question an MCP request asks. Methods that touch nothing sensitive are always
 * allowed, list methods are allowed with their results filtered, and calls that name a tool,
 * resource or prompt (`tools/call`, `resources/read` and (un)subscribe, `prompts/get`,
 * `completion/complete`) become a {@link PolicyTarget}. A method this table does not know is
 * `unknown`, to deny, so a new protocol method is closed until someone decides otherwise; so
 * is a call without its name or URI, or one whose name (over 1024 characters) or URI (over
 * 8192) is too long. Resource URIs come back in canonical form ({@link canonicalUri}), the form
 * to pass on to the server; one without a canonical form is `invalid` (a completion's
 * `ref/resource` names a template, canonicalized as {@link Policy.templateVisible} does). Never
 * throws.
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
      return uri.length > MAX_URI ? tooLong : resource(method, canonicalizeUri(uri));
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
      if (ref.type === 'ref/resource' && uri !== undefined) return uri.length > MAX_URI ? tooLong : resource(method, canonicalizeTemplate(uri));
      return missing('ref');
    }
  }
  return { kind: 'unknown', reason: `method "${method}" is not covered by the policy` };
}
