/** Prometheus metrics of the gateway: requests, decisions by rule and result, upstream latency. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export class GatewayMetrics {
  readonly #requests = new Map<string, number>();
  readonly #decisions = new Map<string, number>();
  readonly #latency = new Map<string, { buckets: number[]; sum: number; count: number }>();

  request(route: string, status: number): void {
    const k = `route="${label(route)}",status="${status}"`;
    this.#requests.set(k, (this.#requests.get(k) ?? 0) + 1);
  }

  decision(rule: string | null, allowed: boolean): void {
    const k = `rule="${label(rule ?? '(none)')}",result="${allowed ? 'allow' : 'deny'}"`;
    this.#decisions.set(k, (this.#decisions.get(k) ?? 0) + 1);
  }

  upstreamLatency(route: string, seconds: number): void {
    let h = this.#latency.get(route);
    if (!h) this.#latency.set(route, (h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) h.buckets[i]!++;
    });
    h.sum += seconds;
    h.count++;
  }

  render(): string {
    const out: string[] = [];
    out.push('# HELP mcp_mtls_gateway_requests_total HTTP requests by route and status', '# TYPE mcp_mtls_gateway_requests_total counter');
    for (const [k, v] of this.#requests) out.push(`mcp_mtls_gateway_requests_total{${k}} ${v}`);
    out.push('# HELP mcp_mtls_gateway_decisions_total policy decisions by rule and result', '# TYPE mcp_mtls_gateway_decisions_total counter');
    for (const [k, v] of this.#decisions) out.push(`mcp_mtls_gateway_decisions_total{${k}} ${v}`);
    out.push('# HELP mcp_mtls_gateway_upstream_latency_seconds time to the upstream response headers', '# TYPE mcp_mtls_gateway_upstream_latency_seconds histogram');
    for (const [route, h] of this.#latency) {
      BUCKETS.forEach((b, i) => out.push(`mcp_mtls_gateway_upstream_latency_seconds_bucket{route="${label(route)}",le="${b}"} ${h.buckets[i]}`));
      out.push(`mcp_mtls_gateway_upstream_latency_seconds_bucket{route="${label(route)}",le="+Inf"} ${h.count}`);
      out.push(`mcp_mtls_gateway_upstream_latency_seconds_sum{route="${label(route)}"} ${h.sum}`, `mcp_mtls_gateway_upstream_latency_seconds_count{route="${label(route)}"} ${h.count}`);
    }
    return `${out.join('\n')}\n`;
  }
}
