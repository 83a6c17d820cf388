/**
 * An HTTPS server that requires client certificates and knows who each request is from.
 *
 * - TLS: `requestCert`, the configured roots, session resumption on (tickets).
 * - Default mode completes the handshake for any client and answers a missing or unusable
 *   certificate with HTTP 401 and a JSON body saying why (never a `WWW-Authenticate: Bearer`
 *   challenge, which would send clients into OAuth). Strict mode closes such connections
 *   right after the handshake, before any request is read.
 * - Each request gets `req.auth` (the MCP SDK's AuthInfo: clientId = principal, token =
 *   certificate fingerprint, extra.identity = the Identity) from a per-connection cache.
 *   Headers a client sends (x-forwarded-client-cert, x-mcp-user, ...) are never read.
 * - Live reload: CRLs (connections of newly revoked clients are closed at once) and the
 *   server's own certificate (new handshakes use it).
 * - CRLs from URLs (`crlUrls`, `crlFromCertificates`): fetched in the background (crl-fetch.ts),
 *   merged with the CRLs given as files, applied through the same path as reloadCrls.
 */
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { MtlsError } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import { parseCertificate } from '../x509/certificate.js';
import { crlUrlsOf } from '../x509/crl-distribution-points.js';
import { readCertificates } from '../x509/pem.js';
import type { AuditSink } from './audit.js';
import { createAuthenticator, type AuthFailureReason, type Authenticator } from './authenticate.js';
import { createCrlFetcher, type CrlFetcher, type CrlSourceStatus } from './crl-fetch.js';
import { createCrlVerifier, crlWarnings, revocationOf, type RevocationState, type VerifiedCrl } from './revocation.js';

/** The MCP SDK's AuthInfo shape, as the adapter fills it. */
export interface MtlsAuthInfo {
  token: string;
  clientId: string;
  scopes: string[];
  extra: { identity: Identity };
}

export type MtlsRequest = IncomingMessage & { auth?: MtlsAuthInfo; socket: TLSSocket };
export type MtlsHandler = (req: MtlsRequest, res: ServerResponse) => void | Promise<void>;

export interface MtlsTlsMaterial {
  /** the server's certificate chain (PEM) and key */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** trusted roots (PEM); intermediates may come with the client's chain */
  readonly ca: string | Buffer | readonly (string | Buffer)[];
  /** CRLs (PEM or DER): root and intermediate */
  readonly crl?: readonly (string | Buffer)[];
}

export interface MtlsServerOptions extends MtlsTlsMaterial {
  readonly mode?: 'default' | 'strict';
  readonly trustDomains?: readonly string[];
  /** several tenants: the root (PEM) each trust domain must chain to (see authenticate.ts) */
  readonly trustDomainRoots?: Readonly<Record<string, string | Buffer>>;
  readonly audit?: AuditSink;
  /** warnings (CRL about to expire, ...): default stderr */
  readonly log?: (message: string) => void;
  readonly clock?: () => Date;
  /** answers requests that need no client certificate (health checks, metrics); return true when handled */
  readonly unauthenticated?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * CRL URLs (http: or https:) fetched in the background and applied live, merged with `crl`
   * (docs/server.md "CRLs from URLs")
   */
  readonly crlUrls?: readonly string[];
  /**
   * also fetch the cRLDistributionPoints URLs of the CA certificates, of this server's own
   * certificate chain and of client certificates (learned once per issuing CA): default false
   */
  readonly crlFromCertificates?: boolean;
  /** how the URLs are fetched: every `intervalMs` (default 5 min, at least 1 s), `timeoutMs` (10 s), `maxBytes` (10 MiB) */
  readonly crlFetch?: { readonly intervalMs?: number; readonly timeoutMs?: number; readonly maxBytes?: number };
}

export interface MtlsServer extends https.Server {
  readonly authenticator: Authenticator;
  /** replaces the CRLs; closes the connections of clients they revoke; returns how many were closed */
  reloadCrls(crls: readonly (string | Buffer)[]): number;
  /** new handshakes use this certificate */
  setCertificate(material: { cert: string | Buffer; key: string | Buffer }): void;
  revocation(): RevocationState;
  /** fetches every CRL URL now and applies what changed; resolves when done (failures are logged) */
  refreshCrls(): Promise<void>;
  /** the CRL URLs and how their fetches went (empty without CRL URLs) */
  crlSources(): readonly CrlSourceStatus[];
  /** open connections per certificate fingerprint */
  clientConnections(): ReadonlyMap<string, ReadonlySet<TLSSocket>>;
}

const asList = (v: string | Buffer | readonly (string | Buffer)[]): (string | Buffer)[] => (Array.isArray(v) ? [...v] : [v as string | Buffer]);

function caDers(ca: MtlsTlsMaterial['ca'], extra: (string | Buffer)[] = []): Buffer[] {
  return [...asList(ca), ...extra].flatMap((c) => readCertificates(Buffer.isBuffer(c) ? c : Buffer.from(c)));
}

export function sendAuthError(res: ServerResponse, reason: AuthFailureReason, message: string): void {
  const body = JSON.stringify({ error: reason, message });
  res.writeHead(401, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function createMtlsServer(options: MtlsServerOptions, handler: MtlsHandler): MtlsServer {
  const log = options.log ?? ((m: string) => process.stderr.write(`mcp-mtls: ${m}\n`));
  const clock = options.clock ?? (() => new Date());
  const strict = options.mode === 'strict';
  // CRLs may be signed by the root or the intermediate; the intermediate reaches us in the
  // client's chain, so the CA list for CRL verification includes what `cert` carries after the leaf
  const serverChain = readCertificates(Buffer.from(options.cert));
  const crlIssuers = [...caDers(options.ca), ...serverChain.slice(1)];
  const verifier = createCrlVerifier(crlIssuers);
  // the CRLs given as files (options.crl, reloadCrls) and the fetched ones add up
  let fileCrls: VerifiedCrl[] = (options.crl ?? []).flatMap((c) => verifier.verify(Buffer.from(c)));
  let fetcher: CrlFetcher | undefined;
  const allCrls = () => [...fileCrls, ...(fetcher?.crls() ?? [])];
  let revocation = revocationOf(fileCrls);
  for (const w of crlWarnings(revocation, clock())) log(w);
  // client certificates name their CRL URL; learn it once per issuing CA, fetch it in the background
  const learnedIssuers = new Set<string>();
  const learnCrlUrl = (cert: ReturnType<typeof parseCertificate>) => {
    if (!fetcher || learnedIssuers.size >= 256) return;
    const issuer = cert.issuerName.toString('hex');
    if (learnedIssuers.has(issuer)) return;
    learnedIssuers.add(issuer);
    for (const u of crlUrlsOf(cert)) fetcher.add(u, 'certificate');
  };
  const authenticator = createAuthenticator({
    revocation,
    caCertificates: crlIssuers,
    ...(options.trustDomains ? { trustDomains: options.trustDomains } : {}),
    ...(options.trustDomainRoots ? { trustDomainRoots: options.trustDomainRoots } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.crlFromCertificates ? { onCertificate: learnCrlUrl } : {}),
  });
  const sockets = new Map<string, Set<TLSSocket>>();

  const server = https.createServer(
    {
      cert: options.cert,
      key: options.key,
      ca: asList(options.ca),
      requestCert: true,
      rejectUnauthorized: strict, // default mode: finish the handshake, then say why in a 401
      minVersion: 'TLSv1.2',
    },
    (req, res) => {
      if (options.unauthenticated?.(req, res)) return;
      const auth = authenticator.authenticate(req.socket as TLSSocket);
      if (!auth.ok) {
        options.audit?.write({ event: 'auth.refused', reason: auth.reason, message: auth.message, fingerprint: auth.fingerprint, serial: auth.serial, remote: req.socket.remoteAddress, method: req.method, path: req.url });
        sendAuthError(res, auth.reason, auth.message);
        return;
      }
      const id = auth.identity;
      (req as MtlsRequest).auth = { token: id.fingerprint, clientId: id.principal, scopes: [], extra: { identity: id } };
      Promise.resolve(handler(req as MtlsRequest, res)).catch((e) => {
        log(`request failed: ${(e as Error)?.stack ?? e}`);
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'internal error' } }));
        } else res.destroy();
      });
    },
  ) as unknown as MtlsServer;

  server.on('secureConnection', (socket: TLSSocket) => {
    const auth = authenticator.authenticate(socket);
    if (!auth.ok && strict) {
      options.audit?.write({ event: 'auth.refused', reason: auth.reason, message: auth.message, fingerprint: auth.fingerprint, remote: socket.remoteAddress, strict: true });
      socket.destroy();
      return;
    }
    if (!auth.ok) return;
    const fp = auth.identity.fingerprint;
    let set = sockets.get(fp);
    if (!set) sockets.set(fp, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0) sockets.delete(fp);
    });
  });

  // a CRL that nobody refreshes would expire silently: say so every hour while it is near
  const warnTimer = setInterval(() => {
    for (const w of crlWarnings(revocation, clock())) log(w);
  }, 3_600_000);
  warnTimer.unref();
  server.on('close', () => {
    clearInterval(warnTimer);
    fetcher?.stop();
  });
  // close() stops fetching at once, not when the last keep-alive connection ends
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    fetcher?.stop();
    return close(cb);
  }) as typeof server.close;

  /** Rebuilds revocation from every CRL, closes the connections it now refuses, audits. */
  const apply = (source?: string): number => {
    revocation = revocationOf(allCrls());
    authenticator.setRevocation(revocation);
    for (const w of crlWarnings(revocation, clock())) log(w);
    let closed = 0;
    for (const set of sockets.values()) {
      for (const s of [...set]) {
        if (!authenticator.authenticate(s).ok) {
          s.destroy();
          closed++;
        }
      }
    }
    options.audit?.write({ event: 'reload', what: 'crl', ...(source ? { source } : {}), crls: revocation.crls.length, closedConnections: closed });
    return closed;
  };

  if (options.crlUrls?.length || options.crlFromCertificates) {
    const fromCerts = options.crlFromCertificates ? [...crlIssuers, ...serverChain].flatMap((der) => {
      try {
        return crlUrlsOf(parseCertificate(der));
      } catch {
        return [];
      }
    }) : [];
    fetcher = createCrlFetcher({
      urls: [...new Set([...(options.crlUrls ?? []), ...fromCerts])],
      verifier,
      applied: allCrls,
      onUpdate: (url, crls) => {
        const closed = apply(url);
        log(`CRL from ${url} applied: ${crls.map((c) => `#${c.number ?? '?'} of ${c.issuer} (${c.serials.size} revoked)`).join(', ')}${closed ? `; closed ${closed} revoked connection(s)` : ''}`);
      },
      log,
      ca: crlIssuers,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.crlFetch?.intervalMs !== undefined ? { intervalMs: options.crlFetch.intervalMs } : {}),
      ...(options.crlFetch?.timeoutMs !== undefined ? { timeoutMs: options.crlFetch.timeoutMs } : {}),
      ...(options.crlFetch?.maxBytes !== undefined ? { maxBytes: options.crlFetch.maxBytes } : {}),
    });
  }

  Object.assign(server, {
    authenticator,
    revocation: () => revocation,
    clientConnections: () => sockets,
    reloadCrls(crls: readonly (string | Buffer)[]) {
      fileCrls = crls.flatMap((c) => verifier.verify(Buffer.from(c))); // throws before anything changes
      return apply();
    },
    refreshCrls: async () => {
      await fetcher?.refresh();
    },
    crlSources: () => fetcher?.status() ?? [],
    setCertificate(material: { cert: string | Buffer; key: string | Buffer }) {
      server.setSecureContext({ cert: material.cert, key: material.key, ca: asList(options.ca), minVersion: 'TLSv1.2' });
      options.audit?.write({ event: 'reload', what: 'certificate' });
    },
  });
  return server;
}

/** TLS material from a CA folder (root.crt, crl/*.crl) and a server certificate issued by it. */
export function tlsFromPki(pkiDir: string, certFile: string, keyFile: string): MtlsTlsMaterial {
  const read = (f: string) => {
    try {
      return fs.readFileSync(f);
    } catch (cause) {
      throw new MtlsError('FILE_NOT_FOUND', `cannot read ${f}`, { cause, hint: 'issue a server certificate with `mcp-mtls issue server --dns NAME --out DIR`' });
    }
  };
  const crlDir = path.join(pkiDir, 'crl');
  const crl = fs.existsSync(crlDir) ? fs.readdirSync(crlDir).filter((f) => f.endsWith('.crl')).map((f) => read(path.join(crlDir, f))) : [];
  return { cert: read(certFile), key: read(keyFile), ca: read(path.join(pkiDir, 'root.crt')), crl };
}
