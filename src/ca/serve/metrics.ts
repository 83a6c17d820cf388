/**
 * Prometheus metrics of `ca serve` (text format 0.0.4), same style as the gateway's:
 * requests by route and status, certificates issued by route, renewals, token refusals by
 * reason, CRL re-signs, failed TLS handshakes, and request latency as a histogram per route.
 */
import { labelValue as label, RouteHistogram } from '../../util/prometheus.js';

export interface CrlGauge {
  readonly number: string;
  readonly nextUpdate: string;
  readonly remainingMs: number;
}

export class CaServeMetrics {
  readonly #requests = new Map<string, number>();
  readonly #issued = new Map<string, number>();
  readonly #refusals = new Map<string, number>();
  readonly #resigns = new Map<string, number>();
  readonly #latency = new RouteHistogram();
  #renewals = 0;
  #tlsFailures = 0;

  request(route: string, status: number, seconds: number): void {
    const k = `route="${label(route)}",status="${status}"`;
    this.#requests.set(k, (this.#requests.get(k) ?? 0) + 1);
    this.#latency.observe(route, seconds);
  }

  issued(route: 'sign' | 'renew' | 'login'): void {
    this.#issued.set(route, (this.#issued.get(route) ?? 0) + 1);
    if (route === 'renew') this.#renewals++;
  }

  tokenRefused(reason: string): void {
    this.#refusals.set(reason, (this.#refusals.get(reason) ?? 0) + 1);
  }

  tlsFailure(): void {
    this.#tlsFailures++;
  }

  crlResigned(which: string): void {
    this.#resigns.set(which, (this.#resigns.get(which) ?? 0) + 1);
  }

  /** `crls`: the CRLs as last read, for the seconds-until-nextUpdate gauge */
  render(crls: Readonly<Record<string, CrlGauge | undefined>> = {}): string {
    const out: string[] = [];
    const counter = (name: string, help: string, rows: Iterable<[string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [k, v] of rows) out.push(`${name}${k ? `{${k}}` : ''} ${v}`);
    };
    counter('mcp_mtls_ca_requests_total', 'HTTP requests by route and status', this.#requests);
    counter('mcp_mtls_ca_certificates_issued_total', 'certificates issued, by route', [...this.#issued].map(([r, v]) => [`route="${r}"`, v] as [string, number]));
    counter('mcp_mtls_ca_renewals_total', 'certificates renewed over POST /renew', [['', this.#renewals]]);
    counter('mcp_mtls_ca_token_refusals_total', 'enrollment tokens refused, by reason', [...this.#refusals].map(([r, v]) => [`reason="${label(r)}"`, v] as [string, number]));
    counter('mcp_mtls_ca_tls_handshake_failures_total', 'TLS handshakes that failed (no HTTP request was read)', [['', this.#tlsFailures]]);
    counter('mcp_mtls_ca_crl_resigns_total', 'CRLs re-signed by this process, by CA', [...this.#resigns].map(([r, v]) => [`crl="${r}"`, v] as [string, number]));
    out.push('# HELP mcp_mtls_ca_crl_next_update_seconds seconds until the stored CRL reaches its nextUpdate (negative: expired)', '# TYPE mcp_mtls_ca_crl_next_update_seconds gauge');
    for (const [which, c] of Object.entries(crls)) if (c) out.push(`mcp_mtls_ca_crl_next_update_seconds{crl="${which}",number="${c.number}"} ${Math.round(c.remainingMs / 1000)}`);
    out.push(...this.#latency.render('mcp_mtls_ca_request_duration_seconds', 'time to answer a request, by route'));
    return `${out.join('\n')}\n`;
  }
}
