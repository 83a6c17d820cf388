/**
 * The opt-in whoami tool of both SDK adapters: who the server thinks is calling, and what they
 * may use. One registration for 1.x and 2.x, reading the policy in force when the tool is
 * called: the 2.x adapter once reported the policy captured when its server was built, so the
 * two adapters disagreed after a reload.
 */
import type { Identity } from '../identity/identity.js';
import type { Policy } from '../policy/compile.js';
import type { CallerSurface, McpServerLike } from './surface.js';

/** The tool's name for the adapters' `whoami` option: `true` is "whoami", a string names it, otherwise none. */
export function whoamiToolName(option: boolean | string | undefined): string | undefined {
  return option === true ? 'whoami' : typeof option === 'string' ? option : undefined;
}

/** What the whoami tool answers: the caller's identity, their scopes under `policy`, and what they may use. */
export function whoamiReport(identity: Identity, policy: Policy, surface: CallerSurface) {
  return {
    principal: identity.principal,
    trustDomain: identity.trustDomain,
    kind: identity.kind,
    id: identity.id,
    teams: identity.teams,
    roles: identity.roles,
    scopes: policy.scopesOf(identity),
    certificate: { serial: identity.serial, fingerprint: identity.fingerprint, notAfter: identity.notAfter.toISOString() },
    tools: surface.tools,
    resources: [...surface.resources, ...surface.resourceTemplates],
    prompts: surface.prompts,
  };
}

/**
 * Registers the whoami tool as `name` on a caller's server, after the surface was decided (it
 * is outside the policy, and lists itself among the tools). `currentPolicy` is read on each call.
 */
export function registerWhoami(server: McpServerLike, name: string, identity: Identity, currentPolicy: () => Policy, surface: CallerSurface): void {
  server.registerTool(name, { description: 'Who is calling, as the server sees it from the client certificate, and what the caller may use' }, async () => ({
    content: [{ type: 'text' as const, text: JSON.stringify(whoamiReport(identity, currentPolicy(), { ...surface, tools: [...surface.tools, name] }), null, 2) }],
  }));
}
