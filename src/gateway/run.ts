/**
 * A running gateway from its configuration: the mTLS listener, one watched policy per route,
 * CRLs and the gateway's own certificate reloaded when their files change (or on reload()),
 * /healthz (degraded while an upstream does not answer) and /metrics without a client certificate, and a graceful stop that lets
 * in-flight requests and streams finish within a bound.
 */
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { watchPolicy, type PolicyWatcher } from '../policy-file/watch.js';
import { createAuditLog, teeAudit } from '../mtls/audit.js';
import { createDecisionsSink } from '../mtls/audit-postgres.js';
import { renderCrlMetrics } from '../mtls/crl-metrics.js';
import { crlWarnings } from '../mtls/revocation.js';
import { createMtlsServer, tlsFromPki, type MtlsServer, type MtlsTlsMaterial } from '../mtls/mtls-server.js';
import { parseDuration } from '../util/duration.js';
import { stderrLog } from '../util/log.js';
import { upstreamName, type GatewayConfig } from './config.js';
import { UpstreamProbe } from './health.js';
import { UpstreamCredentials } from './upstream-credentials.js';
import { GatewayMetrics } from './metrics.js';
import { createGatewayHandler } from './proxy.js';
import { sendJsonResponse } from '../util/json-response.js';
import { renderStdioMetrics, startStdioUpstreams, stdioBudget, stdioTotals, type StdioUpstream } from './stdio-routes.js';

/** A gateway {@link startGateway} started: listening, with its controls. */
export interface RunningGateway {
  /** The underlying mTLS server (revocation, CRL sources, connections). */
  readonly server: MtlsServer;
  /** The address it listens on (the actual port when `listen` gave port 0). */
  readonly address: AddressInfo;
  /** re-reads CRLs and the gateway certificate (policies reload by themselves), then fetches the CRL URLs; failures are logged, never thrown */
  reload(): void;
  /** stops accepting, waits for in-flight requests up to `shutdownGrace`, then closes everything */
  stop(): Promise<void>;
}

function tlsMaterial(c: GatewayConfig): MtlsTlsMaterial {
  if (c.tls.pki) return tlsFromPki(c.tls.pki, c.tls.cert, c.tls.key);
  return { cert: fs.readFileSync(c.tls.cert), key: fs.readFileSync(c.tls.key), ca: fs.readFileSync(c.tls.ca as string), crl: (c.tls.crl ?? []).map((f) => fs.readFileSync(f)) };
}

/**
 * Starts the mTLS gateway from a parsed configuration (see {@link loadGatewayConfig}): one
 * policy watcher per route, the listener with /healthz and /metrics answered without a client
 * certificate, and reload of CRLs and of the gateway certificate when their files change
 * (debounced; the watchers do not keep the process alive). Resolves once listening.
 *
 * @param log - receives one line per event (reloads, policy errors, CRL warnings); default stderr
 * @throws MtlsError when a policy file is missing or invalid, or as {@link createMtlsServer} and
 *   {@link tlsFromPki} (`FILE_NOT_FOUND`) do; Node's errors for other unreadable files; rejects
 *   when the address cannot be bound
 */
export async function startGateway(config: GatewayConfig, log: (line: string) => void = stderrLog('mcp-mtls gateway'), options: GatewayStartOptions = {}): Promise<RunningGateway> {
  // what a failed start already opened is closed again, so a caller that retries leaks nothing
  const opened: Opened = { watchers: [], stdio: [] };
  try {
    return await start(config, log, opened, options);
  } catch (e) {
    for (const w of opened.watchers) w.close();
    opened.server?.close();
    await Promise.all(opened.stdio.map((s) => s.close()));
    throw e;
  }
}

/** Options of {@link startGateway} besides the configuration. */
export interface GatewayStartOptions {
  /** the environment stdio upstreams take PATH, HOME, LANG ... from (the CLI passes its own); default none */
  readonly env?: Record<string, string | undefined>;
}

type Opened = { watchers: PolicyWatcher[]; server?: MtlsServer; stdio: StdioUpstream[] };

async function start(config: GatewayConfig, log: (line: string) => void, opened: Opened, options: GatewayStartOptions): Promise<RunningGateway> {
  // stdio upstreams: each served to the proxy below as a Streamable HTTP upstream on a private socket
  const budget = stdioBudget(config);
  const stdio = await startStdioUpstreams(config, log, options.env, opened.stdio, budget);
  const decisions = config.decisions ? createDecisionsSink(config.decisions.store, { source: config.decisions.source ?? 'gateway', log, ...(config.decisions.batchSize ? { batchSize: config.decisions.batchSize } : {}), ...(config.decisions.flushMs ? { flushMs: config.decisions.flushMs } : {}), ...(config.decisions.maxQueue ? { maxQueue: config.decisions.maxQueue } : {}) }) : undefined;
  const fileAudit = config.audit ? createAuditLog(config.audit) : undefined;
  const audit = fileAudit && decisions ? teeAudit(fileAudit, decisions) : (fileAudit ?? decisions);
  const metrics = new GatewayMetrics();
  const watchers = opened.watchers;
  // one watcher per policy file: a shared one serves every route without its own, each route seeing the rules for its upstream
  const byFile = new Map<string, PolicyWatcher>();
  const watcherOf = (file: string) => {
    let w = byFile.get(file);
    if (!w) {
      w = watchPolicy(file, { onReload: () => log(`policy ${file} reloaded`), onError: (e) => log(`policy ${file} is invalid, keeping the last good one: ${e.message}`) });
      watchers.push(w);
      byFile.set(file, w);
    }
    return w;
  };
  const routes = config.routes.map((r) => {
    const watched = watcherOf((r.policy ?? config.policy) as string);
    const name = upstreamName(r);
    const w = { current: () => watched.current().forUpstream(name) };
    const t = r.upstreamTls;
    const dispatcher = t
      ? new Agent({ connect: { secureContext: tls.createSecureContext({ ...(t.ca ? { ca: fs.readFileSync(t.ca) } : {}), ...(t.cert ? { cert: fs.readFileSync(t.cert) } : {}), ...(t.key ? { key: fs.readFileSync(t.key) } : {}) }) } as Agent.Options['connect'] })
      : undefined;
    const s = stdio.get(r.path);
    if (s) return { prefix: r.path, upstream: s.url, policy: () => w.current(), dispatcher: s.dispatcher };
    const credentials = r.credentials?.length ? new UpstreamCredentials(r.path, r.credentials, r.credentialsRequired ?? true, log) : undefined;
    credentials?.load(options.env);
    return { prefix: r.path, upstream: new URL(r.upstream as string), policy: () => w.current(), ...(dispatcher ? { dispatcher } : {}), ...(credentials ? { credentials } : {}) };
  });
  const handler = createGatewayHandler({ routes, metrics, upstreamTimeoutMs: parseDuration(config.upstreamTimeout), maxBodyBytes: config.maxBodyBytes, log, ...(audit ? { audit } : {}), ...(config.allowedHosts ? { allowedHosts: config.allowedHosts } : {}), ...(config.allowedOrigins ? { allowedOrigins: config.allowedOrigins } : {}) });
  // the gateway watches its files itself (CRLs and its certificate, below): not the listener too
  const { crlFiles: _watchedBelow, ...material } = tlsMaterial(config);
  let server: MtlsServer;
  // /healthz: degraded while an upstream does not answer (health.ts: a bounded, cached probe)
  const probeAgent = new Agent({ keepAliveTimeout: 1_000 });
  // the full reason (address, error text) goes to the log; /healthz, answered to anyone, says codes only
  const probes = routes.map((r) => new UpstreamProbe(r.prefix, r.upstream, r.dispatcher ?? probeAgent, log));
  const health = async () => {
    const upstreams = await Promise.all(probes.map((p) => p.health()));
    const down = upstreams.filter((u) => !u.reachable);
    return {
      status: down.length ? 'degraded' : 'ok',
      ...(down.length ? { reasons: down.map((u) => `upstream of ${u.route} is unreachable: ${u.error} (the gateway's log names the upstream and the error)`) } : {}),
      routes: routes.map((r) => r.prefix),
      upstreams,
      inFlight: handler.inFlight(),
      ...(stdio.size ? { processes: Object.fromEntries([...stdio].map(([p, s]) => [p, s.counts()])), processesTotal: stdioTotals(budget) } : {}),
      crlWarnings: crlWarnings(server.revocation(), new Date()),
      crlSources: server.crlSources(),
    };
  };
  server = createMtlsServer(
    {
      ...material,
      mode: config.mode,
      log,
      ...(config.tls.crlUrls?.length ? { crlUrls: config.tls.crlUrls } : {}),
      ...(config.tls.crlFromCertificates ? { crlFromCertificates: true } : {}),
      ...(config.tls.crlRefresh ? { crlFetch: { intervalMs: parseDuration(config.tls.crlRefresh) } } : {}),
      ...(config.trustDomains ? { trustDomains: config.trustDomains } : {}),
      ...(config.trustedProxies?.length ? { trustedProxies: config.trustedProxies } : {}),
      ...(audit ? { audit } : {}),
      unauthenticated: (req, res) => {
        if (req.url === '/healthz') {
          // 200 either way: the gateway itself serves (a route whose upstream is down answers 502); the status field says degraded
          void health().then((h) => sendJsonResponse(res, 200, h, { cacheControl: 'no-store' }));
          return true;
        }
        if (req.url === '/metrics') {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render() + renderCrlMetrics(server.revocation(), server.crlSources()) + renderStdioMetrics(stdio, budget));
          return true;
        }
        return false;
      },
    },
    handler,
  );
  opened.server = server;
  const [host, port] = [config.listen.slice(0, config.listen.lastIndexOf(':')).replace(/^\[|\]$/g, ''), Number(config.listen.slice(config.listen.lastIndexOf(':') + 1))];
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });

  const reload = () => {
    try {
      const fresh = tlsMaterial(config);
      const closed = server.reloadCrls(fresh.crl ?? []);
      server.setCertificate({ cert: fresh.cert, key: fresh.key });
      for (const r of routes) r.credentials?.load(options.env); // rotated tokens
      log(`reloaded CRLs and certificate${closed ? `; closed ${closed} revoked connection(s)` : ''}`);
      void server.refreshCrls(); // and fetch the CRL URLs now
    } catch (e) {
      log(`reload failed, keeping what was loaded: ${(e as Error).message}`);
    }
  };
  // CRL and certificate files: reload when they change (debounced)
  const files = [config.tls.cert, config.tls.key, ...(config.tls.crl ?? []), ...(config.tls.pki ? [path.join(config.tls.pki, 'crl')] : [])];
  let timer: NodeJS.Timeout | undefined;
  const fsWatchers = [...new Set(files.map((f) => (fs.existsSync(f) && fs.statSync(f).isDirectory() ? f : path.dirname(f))))].map((dir) =>
    fs.watch(dir, () => {
      clearTimeout(timer);
      timer = setTimeout(reload, 200);
    }),
  );
  for (const w of fsWatchers) w.unref();

  return {
    server,
    address: server.address() as AddressInfo,
    reload,
    async stop() {
      server.close();
      const deadline = Date.now() + parseDuration(config.shutdownGrace);
      while (handler.inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      server.closeAllConnections();
      clearTimeout(timer);
      for (const w of fsWatchers) w.close();
      for (const w of watchers) w.close();
      await handler.close();
      await decisions?.close(); // what is queued is sent (or dropped, counted) before exit
      await Promise.all([...stdio.values()].map((s) => s.close())); // SIGTERM every child, SIGKILL after 2 s
      await probeAgent.close().catch(() => undefined);
    },
  };
}
