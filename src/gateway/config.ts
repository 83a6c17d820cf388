/** gateway.yaml: listen address, TLS, routes (path prefix -> upstream, each with its policy), audit, limits. */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { isDuration } from '../ca/duration.js';
import { MtlsError } from '../errors.js';

const duration = z.string().refine(isDuration, 'a duration such as 30s or 2m');

export const GatewayConfigSchema = z.strictObject({
  listen: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'HOST:PORT'),
  mode: z.enum(['default', 'strict']).default('default'),
  tls: z.strictObject({
    cert: z.string(),
    key: z.string(),
    pki: z.string().optional(),
    ca: z.string().optional(),
    crl: z.array(z.string()).optional(),
    /** CRLs fetched over http(s) on `crlRefresh` and applied live (docs/gateway.md) */
    crlUrls: z.array(z.url({ protocol: /^https?$/ })).optional(),
    /** also fetch the CRL URLs named in the CA certificates, the gateway's and the clients' certificates */
    crlFromCertificates: z.boolean().optional(),
    /** how often each CRL URL is fetched (default 5m) */
    crlRefresh: duration.optional(),
  }).refine((t) => (t.pki === undefined) !== (t.ca === undefined), 'give tls.pki (a CA folder) or tls.ca (with tls.crl), not both'),
  trustDomains: z.array(z.string()).optional(),
  routes: z
    .array(
      z.strictObject({
        path: z.string().regex(/^\/[^\s?#]*$/, 'a path such as /mcp'),
        upstream: z.url(),
        policy: z.string(),
        upstreamTls: z.strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() }).optional(),
      }),
    )
    .min(1),
  audit: z.string().optional(),
  upstreamTimeout: duration.default('30s'),
  maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
  shutdownGrace: duration.default('10s'),
});

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

/** Loads gateway.yaml; relative paths in it are relative to the file's folder. */
export function loadGatewayConfig(file: string): GatewayConfig {
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MtlsError('CA_CONFIG_INVALID', `cannot read gateway config ${file}: ${(e as Error).message}`, { hint: 'docs/gateway.md shows a complete gateway.yaml' });
  }
  const parsed = GatewayConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MtlsError('CA_CONFIG_INVALID', `${file}: ${issue.path.join('.') || '(top)'}: ${issue.message}`, { hint: 'docs/gateway.md describes every field' });
  }
  const dir = path.dirname(path.resolve(file));
  const abs = (p: string) => path.resolve(dir, p);
  const c = parsed.data;
  return {
    ...c,
    tls: { ...c.tls, cert: abs(c.tls.cert), key: abs(c.tls.key), ...(c.tls.pki ? { pki: abs(c.tls.pki) } : {}), ...(c.tls.ca ? { ca: abs(c.tls.ca) } : {}), ...(c.tls.crl ? { crl: c.tls.crl.map(abs) } : {}) },
    routes: c.routes.map((r) => ({
      ...r,
      policy: abs(r.policy),
      ...(r.upstreamTls ? { upstreamTls: Object.fromEntries(Object.entries(r.upstreamTls).map(([k, v]) => [k, abs(v as string)])) } : {}),
    })),
    ...(c.audit ? { audit: abs(c.audit) } : {}),
  };
}
