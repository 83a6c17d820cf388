/**
 * A caller's view of an MCP server: the author's `build` registers everything on a fresh
 * McpServer (SDK 1.x or 2.x, same public API), and what the caller may not see is removed
 * again through the handles the registration returned. So tools/list shows only visible
 * tools and a hidden tool is, to the SDK itself, an unknown tool: its answer is exactly
 * the SDK's own. Visible tools that require scopes say so in `_meta["mcp-mtls/scopes"]`.
 *
 * What registration cannot remove (the resources a visible template's `list` callback
 * returns, completion values) is filtered from the results: the low-level server's
 * `setRequestHandler` is wrapped so the list and completion handlers McpServer installs pass
 * their results through {@link filterResult}, the function the gateway uses.
 *
 * Only public API is used: registration methods are wrapped on the instance, before
 * `build` runs, to collect the handles.
 */
import type { Identity } from '../identity/identity.js';
import type { Policy } from '../policy/compile.js';
import { canonicalizeUri } from '../policy/uri.js';
import { filterResult, SCOPES_META_KEY } from './results.js';
import { unknownTargetMessage, unknownToolResult, type UnknownTargetDialect } from './hidden-targets.js';

export { SCOPES_META_KEY };

interface Handle {
  remove(): void;
  update?(updates: Record<string, unknown>): void;
  _meta?: Record<string, unknown>;
}

/** The parts of McpServer (1.x and 2.x) this module calls. */
export interface McpServerLike {
  registerTool(...args: unknown[]): unknown;
  registerResource(...args: unknown[]): unknown;
  registerPrompt(...args: unknown[]): unknown;
  tool?(...args: unknown[]): unknown;
  resource?(...args: unknown[]): unknown;
  prompt?(...args: unknown[]): unknown;
  /** the low-level Server (Protocol) McpServer installs its request handlers on */
  readonly server?: { setRequestHandler(...args: unknown[]): unknown };
}

// filtered in the adapters; tools/list is not: the surface removes hidden tools itself, and
// the whoami tool is added after it, outside the policy. resources/read only has its caching
// hint made private (results.ts): a read callback's or a low-level handler's own
// `cacheScope: "public"` wins over every configured hint in SDK 2.x (found in review, issue 19)
const ADAPTER_FILTERED = new Set(['resources/list', 'resources/templates/list', 'prompts/list', 'completion/complete', 'resources/read']);

/** The method a setRequestHandler call is for: SDK 2.x passes its name, SDK 1.x a zod schema with a method literal. */
function handlerMethod(first: unknown): string | undefined {
  if (typeof first === 'string') return first;
  const literal = (first as { shape?: { method?: { value?: unknown; _def?: { value?: unknown } } } } | undefined)?.shape?.method;
  const v = literal?.value ?? literal?._def?.value;
  return typeof v === 'string' ? v : undefined;
}

type Handler = (request: { params?: unknown }, extra: unknown) => unknown;

/**
 * Makes the list and completion handlers installed on `server` filter their results for
 * `identity`, by the policy in force. Handlers `build` installs itself on the low-level server
 * (`server.server.setRequestHandler`, outside McpServer's registration, which `registering`
 * says is under way) have every tool and prompt, removed or not: their `tools/list` is
 * filtered too, and their `tools/call` and `prompts/get` answer a hidden name as unknown, as
 * McpServer does (found in review, issue 16: they listed and ran hidden tools).
 */
function filterResultsOf(server: McpServerLike, identity: Identity, policy: () => Policy, registering: () => boolean, dialect: UnknownTargetDialect): void {
  const low = server.server;
  if (!low || typeof low.setRequestHandler !== 'function') return;
  const original = low.setRequestHandler;
  low.setRequestHandler = (...args: unknown[]) => {
    const method = handlerMethod(args[0]);
    const last = args.length - 1;
    const handler = args[last] as Handler;
    const own = !registering(); // installed by build itself, not by McpServer's registration
    if (method && typeof handler === 'function') {
      if (ADAPTER_FILTERED.has(method) || (own && method === 'tools/list')) {
        args[last] = async (request: { params?: unknown }, extra: unknown) => filterResult(method, request?.params, await handler(request, extra), policy(), identity);
      } else if (own && (method === 'tools/call' || method === 'prompts/get')) {
        const kind = method === 'tools/call' ? 'tool' : 'prompt';
        args[last] = async (request: { params?: { name?: unknown } }, extra: unknown) => {
          const name = String((request?.params as { name?: unknown } | undefined)?.name);
          if (policy().visible(identity, { kind, name })) return handler(request, extra);
          // in the words of the SDK the server runs on (hidden-targets.ts): 1.x a tool result, 2.x a JSON-RPC error
          if (dialect === 'sdk2') throw Object.assign(new Error(`${kind === 'tool' ? 'Tool' : 'Prompt'} ${name} not found`), { code: -32602 });
          if (kind === 'tool') return unknownToolResult(name);
          throw Object.assign(new Error(unknownTargetMessage({ kind, name })), { code: -32602 });
        };
      }
    }
    return original.apply(low, args);
  };
}

export interface CallerSurface {
  readonly tools: readonly string[];
  /** every tool `build` registered, visible to this caller or not (what the server has) */
  readonly registeredTools: readonly string[];
  readonly resources: readonly string[];
  readonly resourceTemplates: readonly string[];
  readonly prompts: readonly string[];
}

function uriOf(uriOrTemplate: unknown): { uri: string; template: boolean } {
  if (typeof uriOrTemplate === 'string') return { uri: uriOrTemplate, template: false };
  const t = (uriOrTemplate as { uriTemplate?: unknown })?.uriTemplate;
  return { uri: String(t ?? uriOrTemplate), template: true };
}

/**
 * Runs `build` on `server`, then removes what `identity` may not see. Returns what stays.
 * `current` is the policy in force later (a stateful session outlives a reload): list and
 * completion results are filtered by it; registration is decided once, by `policy`. `dialect`:
 * the SDK of `server`, whose words a hidden name gets from the low-level handlers `build` installs.
 */
export async function buildForCaller<S extends McpServerLike>(server: S, identity: Identity, policy: Policy, build: (server: S, identity: Identity) => void | Promise<void>, current: () => Policy = () => policy, dialect: UnknownTargetDialect = 'sdk1'): Promise<CallerSurface> {
  const tools = new Map<string, Handle>();
  const resources = new Map<string, { handle: Handle; template: boolean }>();
  const prompts = new Map<string, Handle>();
  let registering = 0; // McpServer installs its own low-level handlers while it registers
  const wrap = (method: keyof McpServerLike, record: (args: unknown[], handle: Handle) => void, rewrite?: (args: unknown[]) => void) => {
    const original = server[method] as ((...a: unknown[]) => unknown) | undefined;
    if (typeof original !== 'function') return;
    (server as Record<string, unknown>)[method] = (...args: unknown[]) => {
      rewrite?.(args);
      registering++;
      let handle: Handle;
      try {
        handle = original.apply(server, args) as Handle;
      } finally {
        registering--;
      }
      record(args, handle);
      return handle;
    };
  };
  wrap('registerTool', (a, h) => tools.set(String(a[0]), h));
  wrap('tool', (a, h) => tools.set(String(a[0]), h));
  wrap('registerPrompt', (a, h) => prompts.set(String(a[0]), h));
  wrap('prompt', (a, h) => prompts.set(String(a[0]), h));
  const onResource = (a: unknown[], h: Handle) => {
    const { uri, template } = uriOf(a[1]);
    resources.set(uri, { handle: h, template });
  };
  // reads are handed on in canonical form (mcp-gate.ts), and the SDK finds a static resource
  // by its exact URI: so it is registered (and listed) under its canonical URI
  const canonicalStatic = (a: unknown[]) => {
    if (typeof a[1] !== 'string') return;
    const c = canonicalizeUri(a[1]);
    if (c.ok) a[1] = c.uri;
  };
  // SDK 2.x: a resource's own caching hint is private too (results.ts, PER_CALLER_CACHEABLE):
  // its contents must not reach a caller the policy refuses through a shared cache
  const privateHint = (a: unknown[]) => {
    const config = a[2] as { cacheHint?: { cacheScope?: unknown } } | undefined;
    if (config && typeof config === 'object' && config.cacheHint && typeof config.cacheHint === 'object' && config.cacheHint.cacheScope !== 'private') a[2] = { ...config, cacheHint: { ...config.cacheHint, cacheScope: 'private' } };
  };
  wrap('registerResource', onResource, (a) => {
    canonicalStatic(a);
    privateHint(a);
  });
  wrap('resource', onResource, canonicalStatic);
  filterResultsOf(server, identity, current, () => registering > 0, dialect);
  await build(server, identity);

  const visibleTools: string[] = [];
  for (const [name, h] of tools) {
    if (!policy.visible(identity, { kind: 'tool', name })) {
      h.remove();
      continue;
    }
    visibleTools.push(name);
    const required = policy.requiredScopes(name);
    if (required.length > 0 && h.update) h.update({ _meta: { ...(h._meta ?? {}), [SCOPES_META_KEY]: required } });
  }
  const visibleResources: string[] = [];
  const visibleTemplates: string[] = [];
  for (const [uri, { handle, template }] of resources) {
    if (!policy.visible(identity, { kind: 'resource', uri })) handle.remove();
    else (template ? visibleTemplates : visibleResources).push(uri);
  }
  const visiblePrompts: string[] = [];
  for (const [name, h] of prompts) {
    if (!policy.visible(identity, { kind: 'prompt', name })) h.remove();
    else visiblePrompts.push(name);
  }
  return { tools: visibleTools, registeredTools: [...tools.keys()], resources: visibleResources, resourceTemplates: visibleTemplates, prompts: visiblePrompts };
}
