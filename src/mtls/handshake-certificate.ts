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
import type crypto from 'node:crypto';
import type tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { MtlsError } from '../errors.js';
import { NO_RENEGOTIATION } from './tls-options.js';

/** socket -> its handshake certificate (null: none was presented) */
const captured = new WeakMap<TLSSocket, crypto.X509Certificate | null>();
const capturing = new WeakSet<tls.Server>();

/** Records the peer certificate of a socket whose handshake just completed; later calls keep the first. */
export function captureHandshakeCertificate(socket: TLSSocket): void {
  if (!captured.has(socket)) captured.set(socket, socket.getPeerX509Certificate() ?? null);
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
