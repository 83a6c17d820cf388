/**
 * An HTTPS server that requires client certificates and knows who each request is from.
 *
 * - TLS: `requestCert`, the configured roots, session resumption on (tickets), renegotiation
 *   refused; the identity comes from the certificate of the verified handshake, never a later read.
 * - Default mode completes the handshake for any client and answers a missing or unusable
 *   certificate with HTTP 401 and a JSON body saying why (never a `WWW-Authenticate: Bearer`
 *   challenge, which would send clients into OAuth). Strict mode closes such connections
 *   right after the handshake, before any request is read.
 * - Each request gets `req.auth` (the MCP SDK's AuthInfo: clientId = principal, token =
 *   certificate fingerprint, extra.identity = the Identity) from a per-connection cache.
 *   Headers a client sends (x-forwarded-client-cert, x-mcp-user, ...) are never read, except
 *   the forwarded client certificate from the proxies listed in `trustedProxies`
 *   (trusted-proxies.ts), which is verified as a handshake certificate is.
 * - Live reload: CRLs (connections of newly revoked clients are closed at once; the CRL files
 *   named by `crlFiles`, as tlsFromPki gives them, are watched) and the server's own
 *   certificate (new handshakes use it).
 * - CRLs from URLs (`crlUrls`, `crlFromCertificates`): fetched in the background (crl-fetch.ts),
 *   merged with the CRLs given as files, applied through the same path as reloadCrls.
 */
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { MtlsError } from '../errors.js';
import { authInfoOf, type MtlsAuthInfo } from './auth-info.js';
import type { AuditSink } from './audit.js';
import type { AuthFailureReason, ForwardedAuthenticator } from './authenticate.js';
import type { CrlSourceStatus } from './crl-fetch.js';
import type { RevocationState } from './revocation.js';
import { createTrust, listenerTrustOptions } from './trust.js';
import { captureHandshakes, handshakeCertificateDer } from './handshake-certificate.js';
import { authenticateResumedAware, sessionContextOf, tlsContextOptions, tlsServerOptions } from './tls-options.js';
import { stderrLog } from '../util/log.js';
import { sendJsonResponse } from '../util/json-response.js';
import { createForwardedReader, type ForwardedReader, type TrustedProxy } from './trusted-proxies.js';

// defined with the one function that builds it; exported from here as before
export type { MtlsAuthInfo };

/**
 * A request as {@link createMtlsServer} hands it to its {@link MtlsHandler}: a Node request on
 * a TLS socket, with `auth` set from the verified client certificate (`clientId` = principal,
 * `token` = certificate fingerprint, `extra.identity` = the Identity). `auth` is optional in
 * the type only because the MCP SDK's shape is; every request that reaches the handler has it.
 */
export type MtlsRequest = IncomingMessage & { auth?: MtlsAuthInfo; socket: TLSSocket };

/**
 * The application handler of {@link createMtlsServer}, called only for authenticated requests.
 * It may be async: a throw or rejection is logged and answered HTTP 500 with a JSON-RPC
 * "internal error" body (or the connection is destroyed when headers were already sent).
 */
export type MtlsHandler = (req: MtlsRequest, res: ServerResponse) => void | Promise<void>;

/**
 * The TLS side of a server: its certificate and key, the CA roots clients must chain to, and
 * the CRLs to apply. {@link tlsFromPki} builds it from a CA folder.
 */
export interface MtlsTlsMaterial {
  /** The server's certificate chain (PEM: leaf first, then intermediates, which also count as CRL issuers). */
  readonly cert: string | Buffer;
  /** The server's private key (PEM). */
  readonly key: string | Buffer;
  /** trusted roots (PEM); intermediates may come with the client's chain */
  readonly ca: string | Buffer | readonly (string | Buffer)[];
  /** CRLs (PEM or DER): root and intermediate */
  readonly crl?: readonly (string | Buffer)[];
  /**
   * the files `crl` was read from ({@link tlsFromPki} sets it): a server or middleware given them
   * watches them and applies a new CRL within seconds (closing revoked clients' connections, a
   * `reload` audit event); a file that does not verify is logged and the last good CRLs stay
   */
  readonly crlFiles?: readonly string[];
}

/** Options of {@link createMtlsServer}: the TLS material plus how clients are authenticated, logged and revoked. */
export interface MtlsServerOptions extends MtlsTlsMaterial {
  /**
   * `default` (the default): complete the handshake for any client and answer a missing or
   * unusable certificate with a 401 JSON body saying why. `strict`: refuse such connections
   * in or right after the handshake, before any request is read (the client learns no reason).
   */
  readonly mode?: 'default' | 'strict';
  /** Accepted trust domains; undefined accepts any trust domain the CA issues. */
  readonly trustDomains?: readonly string[];
  /**
   * false: a delegated certificate (profile v1.1, docs/delegation.md) is its holder, the actor,
   * alone: no `actingFor`, none of the delegated teams or roles. Default true.
   */
  readonly delegation?: boolean;
  /** several tenants: the root (PEM) each trust domain must chain to (see authenticate.ts) */
  readonly trustDomainRoots?: Readonly<Record<string, string | Buffer>>;
  /** Receives `auth.refused` and `reload` events. */
  readonly audit?: AuditSink;
  /** warnings (CRL about to expire, ...): default stderr */
  readonly log?: (message: string) => void;
  /** The clock for certificate expiry and CRL warnings; default the system clock. */
  readonly clock?: () => Date;
  /** answers requests that need no client certificate (health checks, metrics); runs before authentication, for every request; return true when handled */
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
  /**
   * TLS-terminating proxies whose forwarded client certificate is accepted (docs/server.md
   * "Behind a proxy that ends TLS"): each with its addresses (`from`, CIDR), header `format`,
   * and optionally its own certificate's `principal`. The forwarded certificate is verified
   * against `ca` like a handshake one (same 401 reasons, revocation on every request); a request
   * carrying such a header from anyone else is refused 400. Unset: no header is ever read.
   */
  readonly trustedProxies?: readonly TrustedProxy[];
}

/**
 * The server {@link createMtlsServer} returns: a Node `https.Server` (call `listen()` yourself)
 * with live reload of CRLs and of its certificate. `close()` also stops the CRL fetches at once.
 */
export interface MtlsServer extends https.Server {
  /** The authenticator behind every request, e.g. to authenticate a socket yourself. */
  readonly authenticator: ForwardedAuthenticator;
  /**
   * Replaces the CRLs given as files (`crl`; fetched CRLs stay), closes the connections of
   * clients they now revoke, and returns how many were closed.
   *
   * @throws MtlsError `CRL_INVALID` (not signed by a trusted CA) or `DER_MALFORMED`; nothing changes then
   */
  reloadCrls(crls: readonly (string | Buffer)[]): number;
  /** new handshakes use this certificate (PEM chain and key); open connections keep theirs. Throws Node's TLS error for unusable material. */
  setCertificate(material: { cert: string | Buffer; key: string | Buffer }): void;
  /** The revocation data in effect now: the CRLs given as files and the fetched ones. */
  revocation(): RevocationState;
  /** fetches every CRL URL now and applies what changed; resolves when done (failures are logged) */
  refreshCrls(): Promise<void>;
  /** the CRL URLs and how their fetches went (empty without CRL URLs) */
  crlSources(): readonly CrlSourceStatus[];
  /** open connections per certificate fingerprint */
  clientConnections(): ReadonlyMap<string, ReadonlySet<TLSSocket>>;
}


/**
 * Answers a refused client certificate: HTTP 401, `cache-control: no-store`, and the JSON body
 * `{ "error": reason, "message": message }` that mcp-mtls clients turn into a
 * `CertificateRefusedError`. Sends no `WWW-Authenticate` header (a Bearer challenge would send
 * MCP clients into OAuth). For servers that authenticate with their own code.
 *
 * @param message - a sentence for the client saying what to do, such as `AuthResult.message`
 */
export function sendAuthError(res: ServerResponse, reason: AuthFailureReason, message: string): void {
  sendJsonResponse(res, 401, { error: reason, message }, { cacheControl: 'no-store' });
}

/**
 * Creates (does not start) an HTTPS server that requires client certificates and calls
 * `handler` only for requests whose certificate authenticated, with `req.auth` set. Refused
 * requests get a 401 from {@link sendAuthError} (strict mode: the connection is refused in or
 * right after the handshake) and an `auth.refused` audit event. Headers a client sends
 * (x-forwarded-client-cert, ...) are never read. CRL URLs (`crlUrls`, `crlFromCertificates`)
 * start being fetched in the background at once; `close()` stops them.
 *
 * @throws MtlsError `PEM_MALFORMED` when `cert` or `ca` is PEM without a certificate; `CRL_INVALID` or
 *   `DER_MALFORMED` for a CRL in `crl`; `BAD_ARGUMENT` for a CRL URL that is not http(s) or a
 *   `crlFetch.intervalMs` under 1 s
 */
export function createMtlsServer(options: MtlsServerOptions, handler: MtlsHandler): MtlsServer {
  const log = options.log ?? stderrLog('mcp-mtls');
  const strict = options.mode === 'strict';
  if (strict && options.trustedProxies?.some((p) => !p.principal)) {
    throw new MtlsError('BAD_ARGUMENT', 'strict mode refuses connections without a client certificate, so a trusted proxy must present one', { hint: "give each trusted proxy its client certificate's principal, or use the default mode" });
  }
  const sockets = new Map<string, Set<TLSSocket>>();
  // the one construction of authentication and revocation, shared with the middleware (trust.ts)
  const trust = createTrust({
    ca: options.ca,
    ...listenerTrustOptions(options),
    log,
    // after every CRL change: close the connections it now refuses, audit
    onChange: (source) => {
      let closed = 0;
      for (const set of sockets.values()) {
        for (const s of [...set]) {
          const r = authenticator.authenticate(s);
          // revoked or expired: closed; "cannot be checked yet" (its CA's CRL is still to come) stays open
          if (!r.ok && r.reason !== 'revocation_unknown') {
            s.destroy();
            closed++;
          }
        }
      }
      options.audit?.write({ event: 'reload', what: 'crl', ...(source ? { source } : {}), crls: trust.revocation().crls.length, closedConnections: closed });
      return closed;
    },
  });
  const authenticator = trust.authenticator;
  // a session resumed under another context than this server's CAs name (a setSecureContext call
  // of the user's without sessionIdContext; setCertificate keeps it) may carry another server's
  // verdict: its chain is checked here (tls-options.ts resumedUnderOtherContext)
  const authenticateSocket = authenticateResumedAware(authenticator, sessionContextOf(options.ca), handshakeCertificateDer);
  const forwarded: ForwardedReader | undefined = options.trustedProxies?.length ? createForwardedReader(options.trustedProxies, authenticator) : undefined;

  const server = https.createServer(
    // default mode: finish the handshake, then say why in a 401; renegotiation refused (tls-options.ts)
    tlsServerOptions({ cert: options.cert, key: options.key, ca: options.ca, rejectUnauthorized: strict }),
    (req, res) => {
      if (options.unauthenticated?.(req, res)) return;
      // from a trusted proxy: its forwarded certificate; a forwarded header from anyone else: 400
      const f = forwarded?.read(req);
      if (f?.kind === 'refused') {
        options.audit?.write({ event: 'auth.refused', reason: f.error, status: 400, message: f.message, header: f.header, remote: req.socket.remoteAddress, method: req.method, path: req.url });
        sendJsonResponse(res, 400, { error: f.error, message: f.message }, { cacheControl: 'no-store' });
        return;
      }
      const auth = f?.kind === 'forwarded' ? f.auth : authenticateSocket(req.socket as TLSSocket);
      if (!auth.ok) {
        options.audit?.write({ event: 'auth.refused', reason: auth.reason, message: auth.message, fingerprint: auth.fingerprint, serial: auth.serial, remote: req.socket.remoteAddress, method: req.method, path: req.url, ...(f?.kind === 'forwarded' ? { forwarded: f.format } : {}) });
        sendAuthError(res, auth.reason, auth.message);
        return;
      }
      (req as MtlsRequest).auth = f?.kind === 'forwarded' && f.via ? authInfoOf(auth.identity, f.via) : authInfoOf(auth.identity);
      Promise.resolve(handler(req as MtlsRequest, res)).catch((e) => {
        log(`request failed: ${(e as Error)?.stack ?? e}`);
        if (!res.headersSent) {
          sendJsonResponse(res, 500, { jsonrpc: '2.0', id: null, error: { code: -32603, message: 'internal error' } }, { cacheControl: 'no-store' });
        } else res.destroy();
      });
    },
  ) as unknown as MtlsServer;

  // identities come from the certificate of the verified handshake, captured before anything reads it
  captureHandshakes(server);
  server.on('secureConnection', (socket: TLSSocket) => {
    const auth = authenticateSocket(socket);
    if (!auth.ok && strict) {
      options.audit?.write({ event: 'auth.refused', reason: auth.reason, message: auth.message, fingerprint: auth.fingerprint, remote: socket.remoteAddress, strict: true });
      socket.destroy();
      return;
    }
    // tracked too while its revocation cannot be checked yet: once its CA's CRL is there, a revocation must close it
    const fp = auth.ok ? auth.identity.fingerprint : auth.reason === 'revocation_unknown' ? auth.fingerprint : undefined;
    if (!fp) return;
    let set = sockets.get(fp);
    if (!set) sockets.set(fp, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0) sockets.delete(fp);
    });
  });

  server.on('close', () => trust.stop());
  // close() stops fetching at once, not when the last keep-alive connection ends
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    trust.stop();
    return close(cb);
  }) as typeof server.close;

  Object.assign(server, {
    authenticator,
    revocation: trust.revocation,
    clientConnections: () => sockets,
    reloadCrls: trust.reloadCrls,
    refreshCrls: trust.refreshCrls,
    crlSources: trust.crlSources,
    setCertificate(material: { cert: string | Buffer; key: string | Buffer }) {
      // the full context options: setSecureContext forgets any secureOptions it is not given
      server.setSecureContext(tlsContextOptions({ cert: material.cert, key: material.key, ca: options.ca }));
      options.audit?.write({ event: 'reload', what: 'certificate' });
    },
  });
  return server;
}

/**
 * TLS material from a CA folder (root.crt, crl/*.crl) and a server certificate issued by it.
 * `crlFiles` lists the CRL files read, so a server made from it applies new CRLs written there
 * (`mcp-mtls revoke`, `mcp-mtls crl`) within seconds.
 */
export function tlsFromPki(pkiDir: string, certFile: string, keyFile: string): MtlsTlsMaterial {
  const read = (f: string) => {
    try {
      return fs.readFileSync(f);
    } catch (cause) {
      throw new MtlsError('FILE_NOT_FOUND', `cannot read ${f}`, { cause, hint: 'issue a server certificate with `mcp-mtls issue server --dns NAME --out DIR`' });
    }
  };
  const crlDir = path.join(pkiDir, 'crl');
  const crlFiles = fs.existsSync(crlDir) ? fs.readdirSync(crlDir).filter((f) => f.endsWith('.crl')).map((f) => path.join(crlDir, f)) : [];
  return { cert: read(certFile), key: read(keyFile), ca: read(path.join(pkiDir, 'root.crt')), crl: crlFiles.map(read), crlFiles };
}
