/** Prometheus metrics of the gateway: requests, decisions by rule and result, upstream latency. */
import { labelValue as label, RouteHistogram } from '../util/prometheus.js';

export class GatewayMetrics {
  readonly #requests = new Map<string, number>();
  readonly #decisions = new Map<string, number>();
  readonly #latency = new RouteHistogram();

  request(route: string, status: number): void {
    const k = `route="${label(route)}",status="${status}"`;
    this.#requests.set(k, (this.#requests.get(k) ?? 0) + 1);
  }

  decision(rule: string | null, allowed: boolean): void {
    const k = `rule="${label(rule ?? '(none)')}",result="${allowed ? 'allow' : 'deny'}"`;
    this.#decisions.set(k, (this.#decisions.get(k) ?? 0) + 1);
  }

  upstreamLatency(route: string, seconds: number): void {
    this.#latency.observe(route, seconds);
  }

  render(): string {
    const out: string[] = [];
    out.push('# HELP mcp_mtls_gateway_requests_total HTTP requests by route and status', '# TYPE mcp_mtls_gateway_requests_total counter');
    for (const [k, v] of this.#requests) out.push(`mcp_mtls_gateway_requests_total{${k}} ${v}`);
    out.push('# HELP mcp_mtls_gateway_decisions_total policy decisions by rule and result', '# TYPE mcp_mtls_gateway_decisions_total counter');
    for (const [k, v] of this.#decisions) out.push(`mcp_mtls_gateway_decisions_total{${k}} ${v}`);
    out.push(...this.#latency.render('mcp_mtls_gateway_upstream_latency_seconds', 'time to the upstream response headers'));
    return `${out.join('\n')}\n`;
  }
}
