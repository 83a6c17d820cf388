/** `ca serve`: the CA online, over HTTPS ({@link createCaServer}; docs/ca-serve.md). */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isMtlsError } from '../../errors.js';
import { captureHandshakes } from '../../mtls/handshake-certificate.js';
import { tlsServerOptions } from '../../mtls/tls-options.js';
import { pemEncode } from '../../x509/pem.js';
import type { Authority, IssuedCertificate } from '../authority.js';
import type { CrlName } from '../store/store.js';
import { enrollWithToken, TokenDirectory, TokenRefused } from '../tokens.js';
import { CrlPublisher, type CrlPublisherOptions } from './crls.js';
import { HttpError, PEM_CHAIN_TYPE, readCsrBody, sendError, sendJson } from './http.js';
import { CaServeMetrics } from './metrics.js';
import { createPeerChecker } from './peer.js';
import { createRateLimiter, DEFAULT_DELEGATE_RATE, DEFAULT_RENEW_RATE, type RateLimit } from './rate-limit.js';
import { renewForPeer } from './renew.js';
import { delegateForPeer } from './delegate.js';
import { createLoginRoutes, oidcHttpError, type LoginServeOptions } from './login.js';
import { OidcRefused } from '../oidc/refused.js';
import { revokeSelf } from './revoke-self.js';
import { refuseCrossSite } from './cross-site.js';
import { silentLog } from '../../util/log.js';

/**
 * Receives the online CA's audit events: one per request that changes state or was refused
 * doing so (`ca.renew`, `ca.sign`: status, code, principal, serials, token id, remote address,
 * ms) and one per CRL re-sign (`crl.resign`); never a token secret or a key. Events carry no
 * time: add one when writing. Called synchronously from event handlers: it should not throw.
 */
export type AuditWriter = (event: { event: string; [k: string]: unknown }) => void;

/** Options of {@link createCaServer}. */
export interface CaServerOptions {
  /** the CA to serve; every request reads (and /renew, /sign write) its store */
  readonly authority: Authority;
  /** this server's certificate chain (PEM, issued by the CA: `mcp-mtls issue server`) and key */
  readonly cert: string | Buffer;
  /** this server's private key, PEM */
  readonly key: string | Buffer;
  /** one JSON object per state-changing request; default: nowhere */
  readonly audit?: AuditWriter;
  /** operational messages (CRL re-signs, warnings); default: nowhere */
  readonly log?: (message: string) => void;
  /** per principal, for /renew (default: burst 3, 3 per minute) */
  readonly renewRate?: RateLimit;
  /**
   * CRL publishing, all in ms: `cacheMs` how long a CRL read from the store is served (1000),
   * `maxAgeMs` the cap on Cache-Control max-age (300 000), `checkMs` how often the re-sign check
   * runs (60 000)
   */
  readonly crl?: Omit<CrlPublisherOptions, 'log' | 'onResigned'>;
  /** seconds a client is told to wait (Retry-After) when the store is unavailable; default 5 (12 times that when the CA key is) */
  readonly retryAfterSeconds?: number;
  /** sign-in (config.yaml `login:`, /login/sign): how the providers' keys are fetched and kept (provider-keys.ts) */
  readonly login?: LoginServeOptions;
  /**
   * serves every request under /console: the operator console (`createConsole` of
   * src/console, docs/console.md), which `mcp-mtls ca serve` mounts; default: none (404)
   */
  readonly console?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

/** The server {@link createCaServer} returns: a Node `https.Server` with the CA's CRLs, metrics and a graceful shutdown. */
export interface CaServer extends https.Server {
  /** the counters and histograms behind GET /metrics */
  readonly metrics: CaServeMetrics;
  /** the published CRLs and their re-sign timer (`lastCheck`: the timer's last run) */
  readonly crls: CrlPublisher;
  /** stops accepting, lets requests in flight finish (at most graceMs, default 10 000, then closes them), stops the CRL timer; the authority's store stays open */
  shutdown(graceMs?: number): Promise<void>;
}

const CRL_PATHS: Record<string, CrlName> = { '/crl/root.crl': 'root', '/crl/intermediate.crl': 'intermediate' };
const ROUTES: Record<string, { route: string; method: string }> = {
  '/crl/root.crl': { route: 'crl', method: 'GET' },
  '/crl/intermediate.crl': { route: 'crl', method: 'GET' },
  '/renew': { route: 'renew', method: 'POST' },
  '/delegate': { route: 'delegate', method: 'POST' },
  '/revoke-self': { route: 'revoke-self', method: 'POST' },
  '/sign': { route: 'sign', method: 'POST' },
  '/login': { route: 'login', method: 'GET' },
  '/login/sign': { route: 'login-sign', method: 'POST' },
  '/ca/root.crt': { route: 'ca-cert', method: 'GET' },
  '/ca/chain.pem': { route: 'ca-cert', method: 'GET' },
  '/healthz': { route: 'healthz', method: 'GET' },
  '/metrics': { route: 'metrics', method: 'GET' },
};

/** Store errors a client should retry: connection lost, lock busy, I/O. */
const UNAVAILABLE_CODES = new Set(['STORE_UNAVAILABLE', 'STORE_LOCKED', 'IO_ERROR', 'SERIAL_TAKEN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', '57P01', '57P03', '53300']);
const BAD_REQUEST_CODES = new Set(['CSR_INVALID', 'CSR_BAD_SIGNATURE', 'KEY_INVALID', 'BAD_KEY_TYPE', 'PEM_MALFORMED', 'DER_MALFORMED']);
const PROFILE_CODES = new Set(['BAD_NAME', 'PROFILE_VIOLATION', 'TTL_EXCEEDS_ISSUER', 'CERT_NOT_YET_VALID']);

const TOKEN_CODES: Record<TokenRefused['reason'], string> = { malformed: 'TOKEN_INVALID', unknown: 'TOKEN_INVALID', used: 'TOKEN_USED', expired: 'TOKEN_EXPIRED' };

/** Any failure as the answer a client gets; `internal` is set for bugs (to log). */
function toHttpError(e: unknown, retryAfter: number): HttpError & { internal?: unknown } {
  if (e instanceof HttpError) return e;
  if (e instanceof OidcRefused) return oidcHttpError(e, retryAfter);
  if (e instanceof TokenRefused) {
    return new HttpError(401, TOKEN_CODES[e.reason], e.message, e.reason === 'malformed' || e.reason === 'unknown' ? 'check the token you were given (mcpt_...)' : 'ask the operator for a new enrollment token (mcp-mtls token create)');
  }
  const code = String((e as { code?: unknown })?.code ?? '');
  if (UNAVAILABLE_CODES.has(code) || (isMtlsError(e) && e.kind === 'io')) {
    return Object.assign(new HttpError(503, 'STORE_UNAVAILABLE', 'the CA store is unavailable; try again shortly', 'retry after the number of seconds in Retry-After', { 'retry-after': String(retryAfter) }), { internal: e });
  }
  if (isMtlsError(e) && BAD_REQUEST_CODES.has(e.code)) return new HttpError(400, e.code, e.message, e.hint);
  // beyond config.yaml's issuance limits (a team no longer allowed, a lifetime over the limit)
  if (isMtlsError(e, 'LIMIT_EXCEEDED')) return new HttpError(403, 'LIMIT_EXCEEDED', e.message, e.hint);
  if (isMtlsError(e) && (PROFILE_CODES.has(e.code) || e.code.startsWith('IDENTITY_'))) return new HttpError(403, 'PROFILE_VIOLATION', e.message, e.hint);
  if (isMtlsError(e, 'CA_KEY_LOCKED') || isMtlsError(e, 'CA_KEY_MISSING')) {
    return Object.assign(new HttpError(503, 'CA_UNAVAILABLE', 'the CA cannot sign right now', 'tell the operator: the CA key is not available to the server', { 'retry-after': String(retryAfter * 12) }), { internal: e });
  }
  return Object.assign(new HttpError(500, 'INTERNAL', 'internal error'), { internal: e });
}

function chainResponse(res: ServerResponse, issued: IssuedCertificate): void {
  res.writeHead(200, { 'content-type': PEM_CHAIN_TYPE, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(issued.chainPem) });
  res.end(issued.chainPem);
}

/**
 * Creates the online CA (what `mcp-mtls ca serve` runs): an HTTPS server, not listening yet.
 * Call `listen()`; the CRL re-sign timer starts on `'listening'` and stops on `'close'`.
 *
 *   GET  /crl/root.crl, /crl/intermediate.crl   DER CRLs (ETag, 304, Cache-Control)
 *   POST /renew                                 mTLS with a current client certificate of this CA; body: a CSR, or empty to keep the key
 *   POST /revoke-self                           mTLS: the presented certificate revokes itself (revoke-self.ts; `mcp-mtls logout`)
 *   POST /sign                                  Authorization: Bearer <enrollment token> + CSR
 *   GET  /login                                 JSON: the identity providers to sign in with (login.ts)
 *   POST /login/sign                            Authorization: Bearer <ID token> [+ Mcp-Mtls-Nonce] + CSR
 *   GET  /ca/root.crt, /ca/chain.pem            the CA certificates (a client pins the root's SHA-256)
 *   GET  /healthz                               JSON: store reachable, CRL ages (503 when not ok)
 *   GET  /metrics                               Prometheus text
 *
 * TLS asks for a client certificate but completes the handshake without one
 * (`rejectUnauthorized: false`), so that CRLs, /sign and health need none and /renew can say
 * in a JSON 401/403 why a certificate is refused. Nothing is cached that another replica or the
 * CLI could change, except the CRLs for one second: every /renew re-reads the store's records
 * (revocation) and every /sign consumes its token in the store's issuing transaction.
 *
 * Creating it reads no CA key: call `authority.unlock()` first to check the key and passphrase
 * (the CLI does), else a locked key shows only as 503 `CA_UNAVAILABLE` answers. Closing the
 * server leaves the authority's store open: close it after {@link CaServer.shutdown}.
 *
 * @throws Node's TLS error, at once, when `cert` or `key` is unusable
 */
export function createCaServer(options: CaServerOptions): CaServer {
  const ca = options.authority;
  const audit = options.audit ?? (() => undefined);
  const log = options.log ?? silentLog;
  const retryAfter = options.retryAfterSeconds ?? 5;
  const metrics = new CaServeMetrics();
  const limiter = createRateLimiter(options.renewRate ?? DEFAULT_RENEW_RATE);
  // per actor principal: config.yaml delegation.rate (a platform exchanges for thousands of people)
  const delegateLimiter = createRateLimiter(ca.config.delegation?.rate ?? DEFAULT_DELEGATE_RATE);
  const peers = createPeerChecker(ca);
  const tokens = new TokenDirectory(ca.store);
  const login = createLoginRoutes(ca, { log, ...options.login });
  const consoleHandler = options.console;
  const crls = new CrlPublisher(ca, {
    ...options.crl,
    log,
    onResigned: (which, number) => {
      metrics.crlResigned(which);
      audit({ event: 'crl.resign', crl: which, number });
    },
  });

  async function crl(req: IncomingMessage, res: ServerResponse, which: CrlName): Promise<void> {
    const c = await crls.get(which);
    if (!c) throw new HttpError(404, 'NOT_FOUND', `there is no ${which} CRL yet`, 'run `mcp-mtls crl` once');
    const headers = { 'cache-control': `public, max-age=${crls.maxAge(c)}`, etag: c.etag, 'last-modified': new Date(c.state.thisUpdate).toUTCString() };
    const inm = req.headers['if-none-match'];
    if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === c.etag)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': 'application/pkix-crl', 'content-length': c.der.length });
    res.end(req.method === 'HEAD' ? undefined : c.der);
  }

  async function renew(req: IncomingMessage, res: ServerResponse, note: Record<string, unknown>): Promise<void> {
    refuseCrossSite(req, 'POST /renew', 'renew with `mcp-mtls renew` or a client of this project (it renews on its own)');
    const peer = await peers.check(req.socket as TLSSocket, (id) => {
      note.principal = id.principal;
      note.serial = id.serial;
      const wait = limiter.take(id.principal);
      if (wait > 0) throw new HttpError(429, 'RATE_LIMITED', `too many renewals for ${id.principal}; try again in ${wait} s`, 'renew once, shortly before the certificate expires', { 'retry-after': String(wait) });
    });
    const csr = await readCsrBody(req);
    note.key = csr ? 'csr' : 'same';
    const issued = await renewForPeer(ca, peer, csr);
    metrics.issued('renew');
    Object.assign(note, { newSerial: issued.record.serial, notAfter: issued.record.notAfter });
    chainResponse(res, issued);
  }

  async function sign(req: IncomingMessage, res: ServerResponse, note: Record<string, unknown>): Promise<void> {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) {
      req.resume();
      throw new HttpError(401, 'TOKEN_REQUIRED', 'POST /sign needs an enrollment token: Authorization: Bearer mcpt_...', 'ask the operator for a token (mcp-mtls token create)');
    }
    const secret = m[1] as string;
    note.tokenId = /^mcpt_([0-9a-f]{16})_/.exec(secret)?.[1];
    const csr = await readCsrBody(req);
    if (!csr) throw new HttpError(400, 'CSR_REQUIRED', 'POST /sign needs a CSR in the body', 'create one with `mcp-mtls csr` or openssl req -new, and send it as application/pkcs10');
    try {
      const { issued, replayed } = await enrollWithToken(ca, secret, csr, tokens);
      if (!replayed) metrics.issued('sign');
      Object.assign(note, { principal: issued.record.principal, newSerial: issued.record.serial, notAfter: issued.record.notAfter, ...(replayed ? { replayed: true } : {}) });
      chainResponse(res, issued);
    } catch (e) {
      if (e instanceof TokenRefused) {
        metrics.tokenRefused(e.reason);
        note.reason = e.reason;
      }
      throw e;
    }
  }

  async function healthz(res: ServerResponse): Promise<void> {
    let reachable = true;
    let error: string | undefined;
    const crlOut: Record<string, unknown> = {};
    let crlsOk = true;
    try {
      await ca.store.readCrl('intermediate'); // a real read, not the cache
      for (const which of ['root', 'intermediate'] as const) {
        const c = await crls.get(which);
        if (!c) {
          crlsOk = false;
          crlOut[which] = null;
          continue;
        }
        if (c.state.expired) crlsOk = false;
        crlOut[which] = { ...c.state, ageSeconds: Math.round((ca.now().getTime() - Date.parse(c.state.thisUpdate)) / 1000), plannedResign: c.plannedResign.toISOString() };
      }
    } catch (e) {
      reachable = false;
      // /healthz answers anyone: the code only; the message (hosts, users) goes to the operator's log
      error = String((e as { code?: unknown })?.code ?? 'STORE_UNAVAILABLE');
      options.log?.(`health check: the store is unreachable: ${(e as Error)?.message ?? String(e)}`);
    }
    const ok = reachable && crlsOk;
    const last = crls.lastCheck;
    sendJson(res, ok ? 200 : 503, { ok, store: { reachable, ...(error ? { error } : {}) }, crls: crlOut, ...(last ? { lastCrlCheck: last } : {}) });
  }

  async function metricsText(res: ServerResponse): Promise<void> {
    const gauges: Record<string, { number: string; nextUpdate: string; remainingMs: number } | undefined> = {};
    for (const which of ['root', 'intermediate'] as const) {
      const c = await crls.get(which).catch(() => undefined);
      if (c) gauges[which] = { number: c.number, nextUpdate: c.state.nextUpdate, remainingMs: Date.parse(c.state.nextUpdate) - ca.now().getTime() };
    }
    const body = metrics.render(gauges);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  let inFlight = 0;
  const server = https.createServer(
    {
      // /crl, /sign and /healthz need no certificate; /renew says why one is refused; renegotiation refused (tls-options.ts)
      ...tlsServerOptions({ cert: options.cert, key: options.key, ca: [ca.rootPem, pemEncode('CERTIFICATE', ca.intermediateDer)], rejectUnauthorized: false }),
      // a client that trickles its headers or body is cut off (the defaults are minutes)
      headersTimeout: 10_000,
      requestTimeout: 30_000,
    },
    (req, res) => {
      const started = performance.now();
      const path = (req.url ?? '/').split('?')[0] as string;
      const known = ROUTES[path];
      const inConsole = consoleHandler !== undefined && (path === '/console' || path.startsWith('/console/'));
      const route = inConsole ? 'console' : (known?.route ?? 'other');
      const changes = route === 'renew' || route === 'delegate' || route === 'sign' || route === 'revoke-self' || route === 'login-sign';
      const note: Record<string, unknown> = {};
      inFlight++;
      res.once('close', () => {
        inFlight--;
        metrics.request(route, res.statusCode, (performance.now() - started) / 1000);
        if (changes) audit({ event: `ca.${route}`, status: res.statusCode, ...note, remote: req.socket.remoteAddress, ms: Math.round((performance.now() - started) * 10) / 10 });
      });
      const run = async () => {
        if (inConsole) return consoleHandler(req, res);
        if (!known) throw new HttpError(404, 'NOT_FOUND', `no such endpoint: ${path}`, 'see GET /healthz; endpoints: /crl/root.crl, /crl/intermediate.crl, /renew, /revoke-self, /sign, /login, /login/sign, /ca/root.crt, /ca/chain.pem, /healthz, /metrics');
        const method = req.method === 'HEAD' && known.method === 'GET' ? 'GET' : req.method;
        if (method !== known.method) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} ${path} is not allowed`, `use ${known.method}`, { allow: known.method === 'GET' ? 'GET, HEAD' : known.method });
        const crlName = CRL_PATHS[path];
        if (crlName) return crl(req, res, crlName);
        if (route === 'renew') return renew(req, res, note);
        // token exchange for a delegated certificate (delegate.ts): the actor's own certificate, the delegator's grant
        if (route === 'delegate') {
          const peer = await peers.check(req.socket as TLSSocket, (id) => {
            note.actor = id.principal;
            const wait = delegateLimiter.take(id.principal);
            if (wait > 0) throw new HttpError(429, 'RATE_LIMITED', `too many delegation exchanges by ${id.principal}; try again in ${wait} s`, 'exchange once per person per certificate lifetime (createDelegatingAgent does), or ask the operator to raise config.yaml delegation.rate', { 'retry-after': String(wait) });
          });
          return chainResponse(res, await delegateForPeer(ca, peer, req, note));
        }
        if (route === 'revoke-self') return sendJson(res, 200, await revokeSelf(ca, peers, req, note));
        if (route === 'sign') return sign(req, res, note);
        if (route === 'login') return login.discovery(res);
        if (route === 'login-sign') {
          const issued = await login.sign(req, note);
          metrics.issued('login');
          return chainResponse(res, issued);
        }
        if (route === 'ca-cert') return login.caPem(res, path === '/ca/root.crt' ? 'root' : 'chain', req.method === 'HEAD');
        if (route === 'healthz') return healthz(res);
        return metricsText(res);
      };
      run().catch((e) => {
        const err = toHttpError(e, retryAfter);
        if (err.internal !== undefined) {
          const cause = err.internal as Error & { code?: string };
          log(err.status === 503 ? `warning: ${req.method} ${path}: ${cause.code ?? ''} ${cause.message}` : `${req.method} ${path} failed: ${cause?.stack ?? String(cause)}`);
        }
        Object.assign(note, err.audit);
        note.code = err.code;
        if (changes) note.message = err.message;
        sendError(res, err);
      });
    },
  ) as unknown as CaServer;

  // /renew's peer is the certificate of the verified handshake, captured before any request is read
  captureHandshakes(server);
  server.on('listening', () => crls.start());
  server.on('close', () => void crls.stop());
  server.on('tlsClientError', () => metrics.tlsFailure()); // counted, not logged: scanners would flood the log

  Object.assign(server, {
    metrics,
    crls,
    async shutdown(graceMs = 10_000) {
      await crls.stop();
      await new Promise<void>((resolve) => {
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        const force = setTimeout(() => {
          if (inFlight > 0) log(`closing ${inFlight} requests still running after ${graceMs} ms`);
          server.closeAllConnections();
        }, graceMs);
        server.close(() => {
          clearInterval(idle);
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  });
  return server;
}
