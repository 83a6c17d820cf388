/**
 * The client certificate of a TLS connection as the handshake verified it: taken once, never
 * re-read later.
 *
 * Why: after a TLS 1.2 renegotiation, `socket.getPeerX509Certificate()` returns the
 * certificate of the *new* handshake, which nothing verified, while `socket.authorized` keeps
 * the first handshake's verdict. So the certificate that identities and forwarded headers are
 * made from is the one captured when the handshake completed ('secureConnection', see
 * {@link captureHandshakes}). On a socket nobody captured, it is read only when the connection
 * cannot have renegotiated: TLS 1.3 (which has no renegotiation), or a server whose
 * `secureOptions` include `SSL_OP_NO_RENEGOTIATION` (as `mtlsServerOptions` sets). Otherwise
 * the socket is refused: its certificate cannot be trusted.
 */
import crypto from 'node:crypto';
import type tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { MtlsError } from '../errors.js';
import { NO_RENEGOTIATION } from './tls-options.js';
import { readTlv, readWhole, TAG } from '../x509/der.js';

/** socket -> the DER of its handshake certificate (null: none was presented) */
const captured = new WeakMap<TLSSocket, Buffer | null>();
const capturing = new WeakSet<tls.Server>();

/**
 * The peer certificate's DER, read the cheap way. On a server socket after a full handshake,
 * `getPeerX509Certificate()` also copies every CA certificate the client sent with its own
 * (X509_dup, which in OpenSSL 3 decodes the copy's public key again: ~140 µs of a ~2-3 ms
 * handshake, for a chain nothing here reads), and the abbreviated `getPeerCertificate(false)`
 * builds an object with three digests and every name printed (~70 µs), both measured in
 * bench/server's profiles. The serialized session holds the same certificate, OpenSSL's
 * `session->peer` (which is what both of those read), and costs ~8 µs; Node's own reading is
 * the fallback whenever the session is not there as expected.
 */
function peerDer(socket: TLSSocket): Buffer | null {
  const session = socket.getSession();
  if (session) {
    const der = peerOfSession(session);
    session.fill(0); // it holds the session's master secret
    if (der) return der;
  }
  // no certificate in the session (none was presented), or a session format not known here
  const legacy = socket.getPeerCertificate(false) as { raw?: Buffer } | null;
  return legacy?.raw ?? null;
}

/**
 * The peer certificate in OpenSSL's serialized session (ssl/ssl_asn1.c, format version 1:
 * SEQUENCE { version INTEGER 1, sslVersion, cipher, sessionId, masterKey, [0] keyArg?,
 * [1] time?, [2] timeout?, [3] EXPLICIT peer Certificate?, ... }), a copy; undefined when it is
 * absent or anything is not as that format says.
 */
export function peerOfSession(session: Buffer): Buffer | undefined {
  try {
    // walked item by item, not collected (children()): this runs once per connection
    const whole = readWhole(session, TAG.SEQUENCE);
    const version = readTlv(session, whole.contentStart, whole.end);
    if (version.tag !== TAG.INTEGER || version.end - version.contentStart !== 1 || session[version.contentStart] !== 1) return undefined;
    let p = version.end;
    for (let i = 1; p < whole.end; i++) {
      const item = readTlv(session, p, whole.end);
      p = item.end;
      if (i < 5 || item.tag !== 0xa3) continue;
      const cert = readTlv(session, item.contentStart, item.end);
      if (cert.tag !== TAG.SEQUENCE || cert.end !== item.end) return undefined;
      return Buffer.from(session.subarray(cert.start, cert.end));
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/** Records the peer certificate of a socket whose handshake just completed; later calls keep the first. */
export function captureHandshakeCertificate(socket: TLSSocket): void {
  if (!captured.has(socket)) captured.set(socket, peerDer(socket));
}

/**
 * Makes `server` record each connection's client certificate when its handshake completes,
 * before any other 'secureConnection' listener and before any request is read. Calling it
 * twice on one server is harmless.
 */
export function captureHandshakes(server: tls.Server): void {
  if (capturing.has(server)) return;
  capturing.add(server);
  server.prependListener('secureConnection', captureHandshakeCertificate);
}

/**
 * Why the peer certificate of an uncaptured socket cannot be trusted (its server may have let
 * the client renegotiate), or undefined when it can.
 */
export function renegotiationRisk(socket: TLSSocket): string | undefined {
  if (captured.has(socket) || socket.getProtocol() === 'TLSv1.3') return undefined;
  // Node sets `server` on the sockets a tls.Server accepts, and the server keeps the
  // secureOptions its current context was built with
  const server = (socket as TLSSocket & { server?: { secureOptions?: number } }).server;
  const options = server?.secureOptions;
  if (typeof options === 'number' && (options & NO_RENEGOTIATION) !== 0) return undefined;
  return `this ${socket.getProtocol() ?? 'TLS'} connection comes from a server that allows TLS renegotiation, so its client certificate may have been swapped for an unverified one after the handshake`;
}

/**
 * The client certificate the handshake verified, or undefined when the client presented none.
 *
 * @throws MtlsError `TLS_RENEGOTIATION_ALLOWED` when the socket was not captured and its server
 *   may have let the client renegotiate (see {@link renegotiationRisk})
 */
export function handshakeCertificate(socket: TLSSocket): crypto.X509Certificate | undefined {
  const der = handshakeCertificateDer(socket);
  return der ? new crypto.X509Certificate(der) : undefined;
}

/**
 * {@link handshakeCertificate}'s DER (what authentication and forwarded headers are made
 * from), without building an X509Certificate.
 *
 * @throws MtlsError `TLS_RENEGOTIATION_ALLOWED` as {@link handshakeCertificate}
 */
export function handshakeCertificateDer(socket: TLSSocket): Buffer | undefined {
  if (!captured.has(socket)) {
    const risk = renegotiationRisk(socket);
    if (risk) {
      throw new MtlsError('TLS_RENEGOTIATION_ALLOWED', risk, {
        hint: 'create the server with mtlsServerOptions() (it sets secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION; keep that bit in any secureOptions of your own and in setSecureContext calls), or call captureHandshakes(server) before it listens',
      });
    }
    captureHandshakeCertificate(socket);
  }
  return captured.get(socket) ?? undefined;
}
