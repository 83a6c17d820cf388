/**
 * What a caller sees in MCP results: every list (`tools/list`, `resources/list`,
 * `resources/templates/list`, `prompts/list`) and every `completion/complete` answer keeps
 * only the items this caller could use, item by item, by the same policy decision as a call
 * or read of that item (visibility: a visible item whose condition fails is listed, and its
 * read names the rule). One function for the gateway (upstream answers) and the SDK adapters
 * (their McpServer's handlers), so both show the same: found in review (issue 16) that the
 * adapters listed what a template's `list` callback returned, hidden or not.
 */
import type { Policy, PolicySubject } from '../policy/compile.js';
import { expandKnown } from '../policy/uri-template.js';

/**
 * The `_meta` key under which a visible tool that requires scopes lists them
 * (`_meta["mcp-mtls/scopes"]: string[]`, in `tools/list` results), so clients know what a
 * call needs.
 */
export const SCOPES_META_KEY = 'mcp-mtls/scopes';

/**
 * The results whose 2026-07-28 caching hint (SEP-2549: `ttlMs`, `cacheScope`) mcp-mtls makes
 * `private`: every list, since it is filtered for the caller, and `resources/read`, since a
 * shared cache would hand the contents to callers the policy refuses. Always, whatever the
 * policy says: a list that is the same for every caller today is not tomorrow (a reload, a
 * new certificate), and a shared cache keyed without the caller's certificate cannot tell.
 * `ttlMs` is kept: the same caller may reuse its own answer.
 */
export const PER_CALLER_CACHEABLE: ReadonlySet<string> = new Set(['tools/list', 'resources/list', 'resources/templates/list', 'prompts/list', 'resources/read']);

/** The methods whose results {@link filterResult} rewrites (lists and completions filtered, caching hints made private). */
export const FILTERED_METHODS: ReadonlySet<string> = new Set(['tools/list', 'resources/list', 'resources/templates/list', 'prompts/list', 'completion/complete', 'resources/read']);

/** A result with a `cacheScope` other than `private` gets `private` (one without the field is left alone: 2025-era answers have none). */
export function privateCacheScope(method: string, result: unknown): unknown {
  if (!PER_CALLER_CACHEABLE.has(method) || !isObj(result) || !('cacheScope' in result) || result.cacheScope === 'private') return result;
  return { ...result, cacheScope: 'private' };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): v is string => typeof v === 'string';

function keep(result: Obj, key: string, test: (item: Obj) => boolean): Obj {
  const items = result[key];
  if (!Array.isArray(items)) return result;
  // an item without the field its decision needs is not shown: fail closed
  return { ...result, [key]: items.filter((item) => isObj(item) && test(item)) };
}

function completion(params: Obj, result: Obj, policy: Policy, who: PolicySubject): Obj {
  const c = result.completion;
  if (!isObj(c) || !Array.isArray(c.values)) return result;
  const ref = isObj(params.ref) ? params.ref : {};
  const empty = { ...result, completion: { ...c, values: [], total: 0, hasMore: false } };
  if (ref.type === 'ref/prompt') return str(ref.name) && policy.visible(who, { kind: 'prompt', name: ref.name }) ? result : empty;
  if (ref.type !== 'ref/resource' || !str(ref.uri) || !policy.templateVisible(who, ref.uri)) return empty;
  const template = ref.uri;
  const argument = isObj(params.argument) && str(params.argument.name) ? params.argument.name : undefined;
  const context = isObj(params.context) && isObj(params.context.arguments) ? params.context.arguments : {};
  if (argument === undefined) return empty;
  // a value is offered when the URI it completes would be visible; while other variables of
  // the template have no value yet, when some URI it could still complete would be: the
  // template with what is known expanded must be visible (found in review, issue 16: a value
  // was offered whenever another variable was unknown, so `{dir}` listed denied folders)
  const values = (c.values as unknown[]).filter((v) => str(v) && policy.templateVisible(who, expandKnown(template, { ...context, [argument]: v })));
  if (values.length === c.values.length) return result;
  const removed = c.values.length - values.length;
  return { ...result, completion: { ...c, values, ...(typeof c.total === 'number' ? { total: Math.max(values.length, c.total - removed) } : {}) } };
}

/**
 * The result of `method` (called with `params`) as `who` may see it. Results of other methods,
 * and results without the expected array, come back unchanged. Tools keep their required
 * scopes in `_meta[SCOPES_META_KEY]`; a caching hint becomes private ({@link PER_CALLER_CACHEABLE}).
 */
export function filterResult(method: string, params: unknown, result: unknown, policy: Policy, who: PolicySubject): unknown {
  return privateCacheScope(method, filterItems(method, params, result, policy, who));
}

function filterItems(method: string, params: unknown, result: unknown, policy: Policy, who: PolicySubject): unknown {
  if (!isObj(result)) return result;
  switch (method) {
    case 'tools/list': {
      const kept = keep(result, 'tools', (t) => str(t.name) && policy.visible(who, { kind: 'tool', name: t.name }));
      if (!Array.isArray(kept.tools)) return kept;
      return {
        ...kept,
        tools: (kept.tools as Obj[]).map((t) => {
          const scopes = policy.requiredScopes(t.name as string);
          return scopes.length ? { ...t, _meta: { ...(isObj(t._meta) ? t._meta : {}), [SCOPES_META_KEY]: scopes } } : t;
        }),
      };
    }
    case 'resources/list':
      return keep(result, 'resources', (r) => str(r.uri) && policy.visible(who, { kind: 'resource', uri: r.uri }));
    case 'resources/templates/list':
      return keep(result, 'resourceTemplates', (t) => str(t.uriTemplate) && policy.templateVisible(who, t.uriTemplate));
    case 'prompts/list':
      return keep(result, 'prompts', (p) => str(p.name) && policy.visible(who, { kind: 'prompt', name: p.name }));
    case 'completion/complete':
      return completion(isObj(params) ? params : {}, result, policy, who);
  }
  return result;
}
