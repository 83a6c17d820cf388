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
 * The secure-context options: also for `server.setSecureContext()`, which builds a context
 * from the options it is given alone (it forgets the server's `secureOptions`, so a certificate
 * reload without them would turn renegotiation back on).
 */
export function tlsContextOptions(input: TlsContextInput) {
  return {
    cert: input.cert,
    key: input.key,
    ca: Array.isArray(input.ca) ? [...(input.ca as readonly Pem[])] : [input.ca as Pem],
    minVersion: 'TLSv1.2' as const,
    secureOptions: (input.secureOptions ?? 0) | NO_RENEGOTIATION,
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
