/**
 * The one place that builds the TLS options of every listener mcp-mtls creates or documents
 * (createMtlsServer and so the gateway, `mtlsServerOptions` for your own server, `ca serve`).
 *
 * Renegotiation is refused (`SSL_OP_NO_RENEGOTIATION`) on all of them: Node accepts a
 * client-initiated TLS 1.2 renegotiation, after which `getPeerX509Certificate()` returns the
 * certificate of the new handshake, which nothing verified (`authorized` keeps the first
 * handshake's verdict, and Node's verify callback accepts any certificate). A client holding
 * any trusted certificate could then present one from a CA of its own.
 */
import crypto from 'node:crypto';
import { looksLikePem, readCertificates } from '../x509/pem.js';
import { sha256Hex } from '../util/sha256.js';

/** `SSL_OP_NO_RENEGOTIATION`: the server refuses a TLS 1.2 renegotiation (the client gets a fatal "no renegotiation"). */
export const NO_RENEGOTIATION = crypto.constants.SSL_OP_NO_RENEGOTIATION;

type Pem = string | Buffer;

/** What the options are built from: the server's certificate chain and key, the trusted CAs, any other OpenSSL option bits. */
export interface TlsContextInput {
  readonly cert: Pem;
  readonly key: Pem;
  readonly ca: Pem | readonly Pem[];
  /** other `SSL_OP_*` bits to set; `SSL_OP_NO_RENEGOTIATION` is always added */
  readonly secureOptions?: number;
}

/**
 * The session id context of a set of trusted CAs (32 hex characters, OpenSSL's limit). OpenSSL
 * resumes a session, from its cache or from a ticket, only under the context it was made in, and
 * a resumed session keeps the certificate and the verdict of the handshake that made it, on
 * whichever server made it: the chain is not verified again. Node's default context is the
 * process's command line, the same for every server of a process and of a fleet started alike, so
 * servers sharing ticket keys (`setTicketKeys`, `ticketKeys`) but trusting other CAs resumed each
 * other's sessions, and one took a certificate its CAs never issued as authenticated (found in
 * review: test/security/session-resumption-trust.test.ts). Named by the CA certificates
 * themselves (DER, in any order), so servers with the same CAs still resume each other's.
 */
export function sessionContextOf(ca: Pem | readonly Pem[]): string {
  const ders: Buffer[] = [];
  for (const c of Array.isArray(ca) ? (ca as readonly Pem[]) : [ca as Pem]) {
    const bytes = typeof c === 'string' ? Buffer.from(c) : c;
    let found: Buffer[] = [];
    try {
      found = readCertificates(bytes).map((d) => Buffer.from(d));
    } catch {
      // not PEM certificates as this reader knows them: the bytes themselves name it
    }
    // OpenSSL (PEM_read_bio_X509_AUX) also loads blocks this reader skips (TRUSTED CERTIFICATE,
    // X509 CERTIFICATE, a BEGIN line with trailing blanks): unless every BEGIN is one certificate
    // read, the bytes themselves name it, or a CA so given would be left out of the context
    // (test/security/session-context-labels.test.ts)
    const begins = looksLikePem(bytes) ? bytes.toString('latin1').split('-----BEGIN').length - 1 : 0;
    ders.push(...(found.length > 0 && (begins === 0 || begins === found.length) ? found : [bytes]));
  }
  const hash = crypto.createHash('sha256').update('mcp-mtls session id context v1');
  for (const d of ders.map((x) => sha256Hex(x)).sort()) hash.update(d);
  return hash.digest('hex').slice(0, 32);
}

/**
 * The secure-context options: also for `server.setSecureContext()`, which builds a context
 * from the options it is given alone (it forgets the server's `secureOptions`, so a certificate
 * reload without them would turn renegotiation back on, and its `sessionIdContext`, which it
 * puts back to Node's default).
 */
export function tlsContextOptions(input: TlsContextInput) {
  return {
    cert: input.cert,
    key: input.key,
    ca: Array.isArray(input.ca) ? [...(input.ca as readonly Pem[])] : [input.ca as Pem],
    minVersion: 'TLSv1.2' as const,
    secureOptions: (input.secureOptions ?? 0) | NO_RENEGOTIATION,
    // sessions resume only under the same trusted CAs (see sessionContextOf)
    sessionIdContext: sessionContextOf(input.ca),
  };
}

/**
 * The `https.createServer` TLS options: {@link tlsContextOptions}, client certificates
 * requested, and `rejectUnauthorized` as given (false: the handshake completes for any client
 * and the application says why it refuses one).
 */
export function tlsServerOptions(input: TlsContextInput & { readonly rejectUnauthorized: boolean }) {
  return { ...tlsContextOptions(input), requestCert: true, rejectUnauthorized: input.rejectUnauthorized };
}

/**
 * Whether `socket` resumed a session under a session id context other than `expected` (the one
 * {@link tlsContextOptions} gives for the CAs its authenticator trusts). Node's
 * `server.setSecureContext(options)` puts the context back to its default (a hash of the command
 * line, the same for every server started alike) unless `options` has `sessionIdContext`; such a
 * server sharing ticket keys with one trusting other CAs resumes that one's sessions, whose
 * certificate and verdict OpenSSL does not check again. The caller then checks the chain itself
 * (test/security/session-context-reload.test.ts).
 */
export function resumedUnderOtherContext(socket: import('node:tls').TLSSocket, expected: string): boolean {
  // the context first: a property read, where isSessionReused() is a call into the TLS binding, and
  // this runs on every request
  const server = (socket as { server?: { sessionIdContext?: unknown } }).server;
  return server?.sessionIdContext !== expected && socket.isSessionReused();
}

/**
 * `authenticator.authenticate(socket)`, except for a session resumed under another context than
 * `expected` (see {@link resumedUnderOtherContext}): its certificate's chain is checked against the
 * authenticator's CAs, as a forwarded certificate would be. `expected` undefined: no such check
 * (the caller does not know the CAs the context names).
 */
export function authenticateResumedAware<R>(
  authenticator: { authenticate(socket: import('node:tls').TLSSocket): R; authenticateCertificate(der: Uint8Array): R },
  expected: string | undefined,
  certificateOf: (socket: import('node:tls').TLSSocket) => Uint8Array | undefined,
): (socket: import('node:tls').TLSSocket) => R {
  return (socket) => {
    if (expected !== undefined && resumedUnderOtherContext(socket, expected)) {
      const der = certificateOf(socket);
      if (der) return authenticator.authenticateCertificate(der);
    }
    return authenticator.authenticate(socket);
  };
}
