/** The gateway's stdio upstreams from its configuration: one {@link StdioUpstream} per route with `stdio`. */
import type { GatewayConfig } from './config.js';
import { parseDuration } from '../util/duration.js';
import { StdioUpstream } from './stdio-upstream.js';
import { ProcessBudget } from './stdio-budget.js';

export { StdioUpstream } from './stdio-upstream.js';

/** Starts one listener per stdio route (processes start on first request), pushing each to `opened` so a failed start closes them. */
export async function startStdioUpstreams(config: GatewayConfig, log: (line: string) => void, baseEnv: Record<string, string | undefined> | undefined, opened: StdioUpstream[], budget = stdioBudget(config)): Promise<Map<string, StdioUpstream>> {
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
      budget,
      ...(s.credentials?.length ? { credentials: s.credentials, credentialsRequired: s.credentialsRequired ?? true } : {}),
      log,
    });
    opened.push(u);
    await u.listen();
    out.set(r.path, u);
  }
  return out;
}

/** The caps across every stdio route of a configuration, and the queue at them. */
export function stdioBudget(config: GatewayConfig): ProcessBudget {
  const l = config.stdioLimits ?? { maxProcesses: 64, queueLength: 100, queueTimeout: '10s' };
  return new ProcessBudget({ total: l.maxProcesses, queueLength: l.queueLength, queueTimeoutMs: parseDuration(l.queueTimeout) });
}

/** For /healthz: processes alive over every stdio route, the total cap, requests waiting for a process. */
export function stdioTotals(budget: ProcessBudget): { running: number; max: number | undefined; queued: number; queueLength: number } {
  const c = budget.counts();
  return { running: c.live, max: budget.limits.total, queued: c.queued, queueLength: budget.limits.queueLength };
}

/** Prometheus lines of the stdio routes: processes running and the cap, per route and in total; the queue at the caps. */
export function renderStdioMetrics(stdio: ReadonlyMap<string, StdioUpstream>, budget?: ProcessBudget): string {
  if (!stdio.size) return '';
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const lines = ['# HELP mcp_mtls_gateway_stdio_processes stdio upstream processes running, per route', '# TYPE mcp_mtls_gateway_stdio_processes gauge'];
  for (const [route, s] of stdio) lines.push(`mcp_mtls_gateway_stdio_processes{route="${esc(route)}"} ${s.counts().running}`);
  lines.push('# HELP mcp_mtls_gateway_stdio_processes_max the most stdio upstream processes a route runs', '# TYPE mcp_mtls_gateway_stdio_processes_max gauge');
  for (const [route, s] of stdio) lines.push(`mcp_mtls_gateway_stdio_processes_max{route="${esc(route)}"} ${s.counts().max}`);
  lines.push('# HELP mcp_mtls_gateway_stdio_queued requests waiting for a stdio upstream process at a cap, per route', '# TYPE mcp_mtls_gateway_stdio_queued gauge');
  for (const [route, s] of stdio) lines.push(`mcp_mtls_gateway_stdio_queued{route="${esc(route)}"} ${s.counts().queued}`);
  if (budget) {
    const t = stdioTotals(budget);
    lines.push('# HELP mcp_mtls_gateway_stdio_processes_total_running stdio upstream processes alive over every route', '# TYPE mcp_mtls_gateway_stdio_processes_total_running gauge', `mcp_mtls_gateway_stdio_processes_total_running ${t.running}`);
    if (t.max !== undefined) lines.push('# HELP mcp_mtls_gateway_stdio_processes_total_max the most stdio upstream processes alive over every route', '# TYPE mcp_mtls_gateway_stdio_processes_total_max gauge', `mcp_mtls_gateway_stdio_processes_total_max ${t.max}`);
    lines.push('# HELP mcp_mtls_gateway_stdio_queued_total_now requests waiting for a stdio upstream process, over every route', '# TYPE mcp_mtls_gateway_stdio_queued_total_now gauge', `mcp_mtls_gateway_stdio_queued_total_now ${t.queued}`);
    lines.push('# HELP mcp_mtls_gateway_stdio_queue_length the most requests that may wait for a process', '# TYPE mcp_mtls_gateway_stdio_queue_length gauge', `mcp_mtls_gateway_stdio_queue_length ${t.queueLength}`);
    lines.push('# HELP mcp_mtls_gateway_stdio_cap_events_total processes stopped to make room, requests that waited, and requests refused at a cap (queue full, waited too long)', '# TYPE mcp_mtls_gateway_stdio_cap_events_total counter');
    for (const [event, n] of [['evicted', budget.stats.evicted], ['queued', budget.stats.queuedTotal], ['refused_queue_full', budget.stats.refused], ['refused_timeout', budget.stats.timedOut]] as const) lines.push(`mcp_mtls_gateway_stdio_cap_events_total{event="${event}"} ${n}`);
  }
  return `${lines.join('\n')}\n`;
}
