/**
 * The pieces of the Prometheus text format (0.0.4) that the gateway and the online CA both
 * emit: label escaping and a latency histogram per route. Written here rather than taken from
 * prom-client: two counters and one histogram do not need a registry, and this keeps the
 * per-request cost to a few additions.
 */

/** A label value, escaped (backslash, double quote, newline). */
export const labelValue = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Seconds per route, in the default buckets (1 ms to 10 s). */
export class RouteHistogram {
  readonly #routes = new Map<string, { buckets: number[]; sum: number; count: number }>();

  observe(route: string, seconds: number): void {
    let h = this.#routes.get(route);
    if (!h) this.#routes.set(route, (h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= (BUCKETS[i] as number)) h.buckets[i]!++;
    h.sum += seconds;
    h.count++;
  }

  /** HELP, TYPE and the bucket, sum and count lines of every route */
  render(name: string, help: string): string[] {
    const out = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    for (const [route, h] of this.#routes) {
      const r = labelValue(route);
      BUCKETS.forEach((b, i) => out.push(`${name}_bucket{route="${r}",le="${b}"} ${h.buckets[i]}`));
      out.push(`${name}_bucket{route="${r}",le="+Inf"} ${h.count}`, `${name}_sum{route="${r}"} ${h.sum}`, `${name}_count{route="${r}"} ${h.count}`);
    }
    return out;
  }
}
