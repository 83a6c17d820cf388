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
 */
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { MtlsError } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import { readCertificates } from '../x509/pem.js';
import type { AuditSink } from './audit.js';
import { createAuthenticator, type AuthFailureReason, type Authenticator } from './authenticate.js';
import { buildRevocation, crlWarnings, EMPTY_REVOCATION, type RevocationState } from './revocation.js';

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
}

export interface MtlsServer extends https.Server {
  readonly authenticator: Authenticator;
  /** replaces the CRLs; closes the connections of clients they revoke; returns how many were closed */
  reloadCrls(crls: readonly (string | Buffer)[]): number;
  /** new handshakes use this certificate */
  setCertificate(material: { cert: string | Buffer; key: string | Buffer }): void;
  revocation(): RevocationState;
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
  let revocation = options.crl?.length ? buildRevocation(options.crl.map((c) => Buffer.from(c)), crlIssuers) : EMPTY_REVOCATION;
  for (const w of crlWarnings(revocation, clock())) log(w);
  const authenticator = createAuthenticator({
    revocation,
    caCertificates: crlIssuers,
    ...(options.trustDomains ? { trustDomains: options.trustDomains } : {}),
    ...(options.trustDomainRoots ? { trustDomainRoots: options.trustDomainRoots } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
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
  server.on('close', () => clearInterval(warnTimer));

  Object.assign(server, {
    authenticator,
    revocation: () => revocation,
    clientConnections: () => sockets,
    reloadCrls(crls: readonly (string | Buffer)[]) {
      revocation = buildRevocation(crls.map((c) => Buffer.from(c)), crlIssuers);
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
      options.audit?.write({ event: 'reload', what: 'crl', crls: revocation.crls.length, closedConnections: closed });
      return closed;
    },
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
