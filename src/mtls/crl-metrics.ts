/** Prometheus lines for CRLs: what is loaded (number, next update) and how each CRL URL is fetched. */
import type { CrlSourceStatus } from './crl-fetch.js';
import type { RevocationState } from './revocation.js';
import { labelValue as label } from '../util/prometheus.js';

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

export function renderCrlMetrics(state: RevocationState, sources: readonly CrlSourceStatus[]): string {
  const out: string[] = [];
  const loaded = state.crls.filter((c) => !c.superseded);
  out.push('# HELP mcp_mtls_crl_number cRLNumber of each CRL applied', '# TYPE mcp_mtls_crl_number gauge');
  for (const c of loaded) if (c.number !== undefined) out.push(`mcp_mtls_crl_number{issuer="${label(c.issuer)}",source="${label(c.source ?? 'file')}"} ${c.number}`);
  out.push('# HELP mcp_mtls_crl_next_update_timestamp_seconds when each applied CRL expires (it still applies after, with warnings)', '# TYPE mcp_mtls_crl_next_update_timestamp_seconds gauge');
  for (const c of loaded) if (c.nextUpdate) out.push(`mcp_mtls_crl_next_update_timestamp_seconds{issuer="${label(c.issuer)}",source="${label(c.source ?? 'file')}"} ${seconds(c.nextUpdate)}`);
  if (sources.length) {
    out.push('# HELP mcp_mtls_crl_fetch_up 1 when the last fetch of a CRL URL gave a usable answer (200 with a valid CRL, or 304)', '# TYPE mcp_mtls_crl_fetch_up gauge');
    for (const s of sources) out.push(`mcp_mtls_crl_fetch_up{url="${label(s.url)}"} ${s.status === 'ok' ? 1 : 0}`);
    out.push('# HELP mcp_mtls_crl_fetch_last_success_timestamp_seconds the last usable answer of a CRL URL', '# TYPE mcp_mtls_crl_fetch_last_success_timestamp_seconds gauge');
    for (const s of sources) if (s.lastSuccess) out.push(`mcp_mtls_crl_fetch_last_success_timestamp_seconds{url="${label(s.url)}"} ${seconds(s.lastSuccess)}`);
    out.push('# HELP mcp_mtls_crl_fetches_total fetches of a CRL URL by result', '# TYPE mcp_mtls_crl_fetches_total counter');
    for (const s of sources) {
      out.push(`mcp_mtls_crl_fetches_total{url="${label(s.url)}",result="ok"} ${s.fetches.ok}`, `mcp_mtls_crl_fetches_total{url="${label(s.url)}",result="not_modified"} ${s.fetches.notModified}`, `mcp_mtls_crl_fetches_total{url="${label(s.url)}",result="error"} ${s.fetches.error}`);
    }
  }
  return `${out.join('\n')}\n`;
}
