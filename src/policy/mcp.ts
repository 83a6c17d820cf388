/**
 * Which policy question an MCP request asks. Methods that touch nothing sensitive are
 * always allowed (their list results are filtered instead); a method this table does not
 * know is denied, so a new protocol method is closed until someone decides otherwise.
 */
import type { PolicyTarget } from './compile.js';

export type McpAuthorization =
  | { readonly kind: 'always' }
  | { readonly kind: 'list'; readonly what: 'tools' | 'resources' | 'resourceTemplates' | 'prompts' }
  | { readonly kind: 'target'; readonly target: PolicyTarget }
  | { readonly kind: 'unknown'; readonly reason: string };

const ALWAYS = new Set(['initialize', 'ping', 'logging/setLevel', 'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed']);
const LISTS: Record<string, 'tools' | 'resources' | 'resourceTemplates' | 'prompts'> = {
  'tools/list': 'tools',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
  'prompts/list': 'prompts',
};

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function authorizationFor(method: string, params: unknown): McpAuthorization {
  if (ALWAYS.has(method) || method.startsWith('notifications/')) return { kind: 'always' };
  const list = LISTS[method];
  if (list) return { kind: 'list', what: list };
  const p = (params && typeof params === 'object' ? params : {}) as Record<string, unknown>;
  const missing = (field: string): McpAuthorization => ({ kind: 'unknown', reason: `${method} without a ${field}` });
  switch (method) {
    case 'tools/call': {
      const name = str(p.name);
      return name === undefined ? missing('tool name') : { kind: 'target', target: { kind: 'tool', name, args: p.arguments ?? {} } };
    }
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe': {
      const uri = str(p.uri);
      return uri === undefined ? missing('uri') : { kind: 'target', target: { kind: 'resource', uri } };
    }
    case 'prompts/get': {
      const name = str(p.name);
      return name === undefined ? missing('prompt name') : { kind: 'target', target: { kind: 'prompt', name, args: p.arguments ?? {} } };
    }
    case 'completion/complete': {
      const ref = (p.ref && typeof p.ref === 'object' ? p.ref : {}) as Record<string, unknown>;
      if (ref.type === 'ref/prompt' && str(ref.name) !== undefined) return { kind: 'target', target: { kind: 'prompt', name: ref.name as string, args: {} } };
      if (ref.type === 'ref/resource' && str(ref.uri) !== undefined) return { kind: 'target', target: { kind: 'resource', uri: ref.uri as string } };
      return missing('ref');
    }
  }
  return { kind: 'unknown', reason: `method "${method}" is not covered by the policy` };
}
