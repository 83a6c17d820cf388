/** The gateway's stdio upstreams from its configuration: one {@link StdioUpstream} per route with `stdio`. */
import type { GatewayConfig } from './config.js';
import { parseDuration } from '../util/duration.js';
import { StdioUpstream } from './stdio-upstream.js';

export { StdioUpstream } from './stdio-upstream.js';

/** Starts one listener per stdio route (processes start on first request), pushing each to `opened` so a failed start closes them. */
export async function startStdioUpstreams(config: GatewayConfig, log: (line: string) => void, baseEnv: Record<string, string | undefined> | undefined, opened: StdioUpstream[]): Promise<Map<string, StdioUpstream>> {
  const out = new Map<string, StdioUpstream>();
  for (const r of config.routes) {
    if (!r.stdio) continue;
    const s = r.stdio;
    const u = new StdioUpstream({
      name: r.path,
      command: s.command,
      args: s.args,
      env: s.env,
      ...(s.cwd ? { cwd: s.cwd } : {}),
      processModel: s.processModel,
      maxProcesses: s.processModel === 'shared' ? 1 : s.maxProcesses,
      idleMs: parseDuration(s.idleTimeout),
      maxLineBytes: s.maxLineBytes,
      clientRoots: s.clientRoots,
      timeoutMs: parseDuration(config.upstreamTimeout),
      ...(baseEnv ? { baseEnv } : {}),
      ...(s.credentials?.length ? { credentials: s.credentials, credentialsRequired: s.credentialsRequired ?? true } : {}),
      log,
    });
    opened.push(u);
    await u.listen();
    out.set(r.path, u);
  }
  return out;
}

/** Prometheus lines of the stdio routes: processes running and the cap, per route. */
export function renderStdioMetrics(stdio: ReadonlyMap<string, StdioUpstream>): string {
  if (!stdio.size) return '';
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const lines = ['# HELP mcp_mtls_gateway_stdio_processes stdio upstream processes running, per route', '# TYPE mcp_mtls_gateway_stdio_processes gauge'];
  for (const [route, s] of stdio) lines.push(`mcp_mtls_gateway_stdio_processes{route="${esc(route)}"} ${s.counts().running}`);
  lines.push('# HELP mcp_mtls_gateway_stdio_processes_max the most stdio upstream processes a route runs', '# TYPE mcp_mtls_gateway_stdio_processes_max gauge');
  for (const [route, s] of stdio) lines.push(`mcp_mtls_gateway_stdio_processes_max{route="${esc(route)}"} ${s.counts().max}`);
  return `${lines.join('\n')}\n`;
}
