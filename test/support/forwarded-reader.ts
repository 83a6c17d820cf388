/**
 * The trusted-proxy reader (src/mtls/trusted-proxies.ts) alone behind a plain node:http server,
 * and requests written by hand to it: for the tests of what a forwarded value is answered
 * (forwarded-key, forwarded-cost). Each request goes from a chosen 127.0.0.x (the proxy entry it
 * counts as) with exactly the header lines given, in that order and spelling, which an HTTP
 * client library would merge or re-case. The answer body says what the reader decided:
 * `ok <id>`, the refusal reason, `<error>: <message>` for a refused header, or `direct`.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before } from 'node:test';
import type { ForwardedOutcome } from '../../src/mtls/trusted-proxies.js';

export interface ReaderServer {
  /** One request from `from` with these header lines (name, value), on its own connection, bounded in time: the answer body. */
  send(from: string, lines: readonly [string, string][]): Promise<string>;
  close(): Promise<void>;
}

export async function startReaderServer(reader: { read(req: http.IncomingMessage): ForwardedOutcome }): Promise<ReaderServer> {
  const server = http.createServer((req, res) => {
    const f = reader.read(req);
    res.end(f.kind === 'forwarded' ? (f.auth.ok ? `ok ${f.auth.identity.id}` : f.auth.reason) : f.kind === 'refused' ? `${f.error}: ${f.message}` : 'direct');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    send: (from, lines) =>
      new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port, localAddress: from });
        s.setTimeout(10_000, () => s.destroy(new Error('no answer in 10 s')));
        let text = '';
        s.on('data', (d) => (text += d.toString('latin1')));
        s.on('end', () => resolve(text.slice(text.indexOf('\r\n\r\n') + 4)));
        s.on('error', reject);
        s.end(`GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n${lines.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`);
      }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A certificate as an RFC 9440 Client-Cert / Client-Cert-Chain value (a structured-field byte sequence). */
export const sf = (der: Buffer): string => `:${der.toString('base64')}:`;

type Middleware = (req: http.IncomingMessage, res: http.ServerResponse, next: () => void) => void;

/**
 * A middleware (createMtlsMiddleware's, or a fixture's) behind a plain node:http server for the
 * enclosing describe (started in its before hook, closed in its after hook), answering `ok
 * <clientId>` when it lets a request through. `get()` sends one request with `leaf` and `chain`
 * as RFC 9440 headers from 127.0.0.1: `<status> <body>`.
 */
export function useForwardedServer(middleware: () => Middleware, leaf: Buffer, chain: Buffer): { get(): Promise<string> } {
  let server: http.Server;
  let port: number;
  before(async () => {
    const mw = middleware();
    server = http.createServer((req, res) => mw(req, res, () => res.end(`ok ${(req as { auth?: { clientId: string } }).auth?.clientId}`)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  return {
    async get() {
      const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'client-cert': sf(leaf), 'client-cert-chain': sf(chain) }, signal: AbortSignal.timeout(10_000) });
      return `${res.status} ${await res.text()}`;
    },
  };
}
