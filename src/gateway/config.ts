/** gateway.yaml: listen address, TLS, routes (path prefix -> upstream, each with its policy), audit, limits. */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { isDuration } from '../util/duration.js';
import { MtlsError } from '../errors.js';
import { FORWARDED_FORMATS } from '../mtls/trusted-proxies.js';
import { resolveStdioPaths, StdioRouteSchema } from './stdio-config.js';
import { CredentialSchema } from './credentials.js';

const duration = z.string().refine(isDuration, 'a duration such as 30s or 2m');

/**
 * The zod schema of gateway.yaml (docs/gateway.md): strict, so unknown keys are refused, and
 * it fills the defaults (`mode` default, `upstreamTimeout` 30s, `maxBodyBytes` 4 MiB,
 * `shutdownGrace` 10s). For configurations built in code; {@link loadGatewayConfig} reads a
 * file with it and also makes its paths absolute, which parsing alone does not (paths then
 * resolve against the working directory).
 */
export const GatewayConfigSchema = z.strictObject({
  /** `HOST:PORT` to listen on; an IPv6 host in brackets (`[::]:8443`); port 0 picks a free one */
  listen: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'HOST:PORT'),
  /** as `MtlsServerOptions.mode`: `strict` refuses bad certificates at connection time instead of a 401 */
  mode: z.enum(['default', 'strict']).default('default'),
  /** the gateway's certificate and key files, and exactly one of `pki` or `ca` */
  tls: z.strictObject({
    cert: z.string(),
    key: z.string(),
    /** a CA folder: trusts its root.crt and loads crl/*.crl */
    pki: z.string().optional(),
    /** the trusted root (PEM file), instead of `pki`; CRL files then go in `crl` */
    ca: z.string().optional(),
    crl: z.array(z.string()).optional(),
    /** CRLs fetched over http(s) on `crlRefresh` and applied live (docs/gateway.md) */
    crlUrls: z.array(z.url({ protocol: /^https?$/ })).optional(),
    /** also fetch the CRL URLs named in the CA certificates, the gateway's and the clients' certificates */
    crlFromCertificates: z.boolean().optional(),
    /** how often each CRL URL is fetched (default 5m) */
    crlRefresh: duration.optional(),
  }).refine((t) => (t.pki === undefined) !== (t.ca === undefined), 'give tls.pki (a CA folder) or tls.ca (with tls.crl), not both'),
  /** accepted trust domains; absent accepts any the CA issues */
  trustDomains: z.array(z.string()).optional(),
  /**
   * TLS-terminating proxies in front of the gateway whose forwarded client certificate is
   * accepted (as `MtlsServerOptions.trustedProxies`; docs/operations.md): their addresses
   * (`from`, CIDR), header `format`, `header` for nginx, optionally their own `principal`
   */
  trustedProxies: z
    .array(
      z.strictObject({
        from: z.union([z.string(), z.array(z.string()).min(1)]),
        format: z.enum(FORWARDED_FORMATS),
        header: z.string().optional(),
        principal: z.string().optional(),
      }),
    )
    .optional(),
  /** the policy of every route without its own, watched and reloaded; rules name the upstreams they are for in `upstreams` (docs/gateway.md) */
  policy: z.string().optional(),
  /** at least one; a request goes to the route with the longest matching path prefix */
  routes: z
    .array(
      z.strictObject({
        /** path prefix, e.g. `/mcp`; the path below it is appended to the upstream's path */
        path: z.string().regex(/^\/[^\s?#]*$/, 'a path such as /mcp'),
        upstream: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL of the upstream\'s Streamable HTTP endpoint (e.g. http://127.0.0.1:3000/mcp)' }).optional(),
        /** instead of `upstream`: a stdio MCP server the gateway runs (stdio-config.ts, docs/gateway.md) */
        stdio: StdioRouteSchema.optional(),
        /** the upstream's name, which rules of a shared policy name in `upstreams` (default: the path's last segment, `files` for `/mcp/files`) */
        name: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'a name of A-Z a-z 0-9 . _ -').optional(),
        /** the policy file of this route, watched and reloaded when it changes; default the shared `policy` */
        policy: z.string().optional(),
        /** files for an https upstream: a CA to trust, and a client certificate and key to present */
        upstreamTls: z.strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() }).optional(),
        /** an HTTP upstream's credentials: request headers per caller, chosen by identity (upstream-credentials.ts; a stdio upstream's go in stdio.credentials) */
        credentials: z.array(CredentialSchema).optional(),
        /** a caller no credentials entry is for is refused (default true when there are credentials) */
        credentialsRequired: z.boolean().optional(),
      })
        .refine((r) => (r.upstream === undefined) !== (r.stdio === undefined), 'give upstream (an http(s) URL) or stdio (a command), not both')
        .refine((r) => !r.credentials || r.upstream !== undefined, 'a stdio route\'s credentials go in stdio.credentials (as env)')
        .refine((r) => !(r.credentials ?? []).some((c) => !c.headers), 'an HTTP upstream gets credentials as headers, not env'),
    )
    .min(1),
  /** more host names a client's `Host` may name, besides the gateway certificate's names and loopback; `"*"` turns the Host and Origin checks off (DNS rebinding protection) */
  allowedHosts: z.array(z.string().min(1)).optional(),
  /** browser origins accepted in `Origin` (`https://app.acme.test`), besides http(s) origins on an accepted host */
  allowedOrigins: z.array(z.string().min(1)).optional(),
  /** caps across every stdio route, and the queue at a cap (stdio-budget.ts, docs/gateway.md) */
  stdioLimits: z
    .strictObject({
      /** stdio upstream processes alive at once, over every stdio route (each route has its own `maxProcesses` too) */
      maxProcesses: z.number().int().positive().default(64),
      /** requests that may wait for a process at a cap; more are answered 503 at once */
      queueLength: z.number().int().nonnegative().default(100),
      /** how long a request waits for a process at a cap, then 503 with Retry-After */
      queueTimeout: duration.default('10s'),
    })
    .optional(),
  /** the audit log file (JSON lines, appended to) */
  audit: z
    .string()
    .refine((s) => !/^postgres(ql)?:\/\//i.test(s), 'is a file path; to send decisions to PostgreSQL use `decisions: { store: postgres://... }`')
    .optional(),
  /**
   * the decisions to the CA's PostgreSQL store too (its `decisions` table, read by the console;
   * docs/operations.md): `store` is postgres://USER@HOST:PORT/DB without a password (PGPASSWORD
   * or ~/.pgpass); sent in batches off the request path, dropped and counted when the database is down
   */
  decisions: z
    .strictObject({
      store: z.string().regex(/^postgres(ql)?:\/\//i, 'must be a postgres:// URL'),
      /** a batch goes when this many lines wait (default 500) */
      batchSize: z.number().int().positive().max(10_000).optional(),
      /** and at least this often (default 1000 ms) */
      flushMs: z.number().int().positive().max(60_000).optional(),
      /** lines held at most while the database is slow or down; more are dropped (default 10,000) */
      maxQueue: z.number().int().positive().max(1_000_000).optional(),
      /** this gateway's name in the rows' `source` column (default "gateway") */
      source: z.string().min(1).max(200).optional(),
    })
    .optional(),
  /** how long to wait for an upstream's response headers (a timeout is answered 504) */
  upstreamTimeout: duration.default('30s'),
  /** larger POST bodies are answered 413 */
  maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
  /** how long stop() waits for requests in flight before closing every connection */
  shutdownGrace: duration.default('10s'),
})
  .refine((c) => c.policy !== undefined || c.routes.every((r) => r.policy !== undefined), { message: 'give each route a policy, or a shared policy at the top', path: ['policy'] })
  .refine((c) => new Set(c.routes.map(upstreamName)).size === c.routes.length, { message: 'two routes have one upstream name: give them distinct `name`s', path: ['routes'] });

/** A route's upstream name, as a shared policy's `upstreams` name it: its `name`, or its path's last segment (`/` alone: `root`). */
export function upstreamName(route: { readonly path: string; readonly name?: string | undefined }): string {
  return route.name ?? (route.path.split('/').filter(Boolean).pop() || 'root');
}

/**
 * A parsed gateway configuration (the output of {@link GatewayConfigSchema}, defaults filled in),
 * as {@link loadGatewayConfig} returns it and `startGateway` takes it. Durations are strings
 * such as `30s`.
 */
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
    ...(c.policy ? { policy: abs(c.policy) } : {}),
    tls: { ...c.tls, cert: abs(c.tls.cert), key: abs(c.tls.key), ...(c.tls.pki ? { pki: abs(c.tls.pki) } : {}), ...(c.tls.ca ? { ca: abs(c.tls.ca) } : {}), ...(c.tls.crl ? { crl: c.tls.crl.map(abs) } : {}) },
    routes: c.routes.map((r) => ({
      ...r,
      ...(r.policy ? { policy: abs(r.policy) } : {}),
      ...(r.stdio ? { stdio: resolveStdioPaths(r.stdio, abs) } : {}),
      ...(r.credentials ? { credentials: r.credentials.map((c) => ({ ...c, headers: Object.fromEntries(Object.entries(c.headers ?? {}).map(([k, v]) => [k, 'file' in v ? { ...v, file: abs(v.file) } : v])) })) } : {}),
      ...(r.upstreamTls ? { upstreamTls: Object.fromEntries(Object.entries(r.upstreamTls).map(([k, v]) => [k, abs(v as string)])) } : {}),
    })),
    ...(c.audit ? { audit: abs(c.audit) } : {}),
  };
}
