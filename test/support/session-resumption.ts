/**
 * Shared set-up of the TLS session-resumption tests (test/security/session-*.test.ts): servers
 * that answer who the request was authenticated as, on 127.0.0.1, closed after the file's tests;
 * server certificates and client certificates from a test PKI; ticket keys shared between servers
 * (a fleet behind one name); and a client that makes one request over a fresh connection,
 * resuming a given session, and tells whether it resumed and the session to resume next.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after } from 'node:test';
import { createMtlsServer, tlsFromPki, type MtlsServer, type MtlsServerOptions } from '../../src/mtls/mtls-server.js';
import type { TestPki } from './pki.js';

export type ClientCert = { cert: Buffer; key: Buffer };
export type Answer = { status: number; body: Record<string, unknown>; reused: boolean; session: Buffer | undefined };

/** The body every server here answers with: the authenticated client id, or null. */
export const whoBody = (req: { auth?: { clientId?: string } }) => JSON.stringify({ who: req.auth?.clientId ?? null });

/** Servers to close after the calling file's tests (registers the `after` hook). */
export function serverList(): { listen<S extends https.Server>(s: S): Promise<S> } {
  const servers: https.Server[] = [];
  after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });
  return {
    async listen(s) {
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      servers.push(s);
      return s;
    },
  };
}

/** A server certificate for localhost / 127.0.0.1 from `p`. */
export async function serverCertOf(p: TestPki): Promise<{ cert: string; key: string }> {
  const s = await p.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  return { cert: s.files.cert, key: s.files.key as string };
}

/** A client certificate for `user` from `p`, with its serial (for revoke). */
export async function clientOf(p: TestPki, user: string): Promise<ClientCert & { serial: string }> {
  const issued = await p.issue(['issue', 'client', '--user', user]);
  return { cert: fs.readFileSync(issued.files.cert), key: fs.readFileSync(issued.files.key as string), serial: issued.serial };
}

/** createMtlsServer trusting `p` (or `extra.ca`) with `srv` as its certificate, answering whoBody. */
export function whoServer(p: TestPki, srv: { cert: string; key: string }, extra: Partial<MtlsServerOptions> = {}): MtlsServer {
  return createMtlsServer({ ...tlsFromPki(p.pki, srv.cert, srv.key), log: () => undefined, ...extra }, (req, res) => void res.end(whoBody(req)));
}

/** One set of fresh ticket keys on all of `servers`. */
export function shareTicketKeys(...servers: tls.Server[]): void {
  const keys = crypto.randomBytes(48);
  for (const s of servers) s.setTicketKeys(keys);
}

/** One request as `who` over a fresh connection with exactly `version`, resuming `session` if given: the answer, whether it resumed, the session to resume next. */
export function ask(s: tls.Server, who: ClientCert, version: tls.SecureVersion, session?: Buffer): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let next: Buffer | undefined;
    const c = tls.connect(
      { host: '127.0.0.1', port: (s.address() as AddressInfo).port, servername: 'localhost', cert: who.cert, key: who.key, rejectUnauthorized: false, minVersion: version, maxVersion: version, ...(session ? { session } : {}) },
      () => c.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'),
    );
    c.on('session', (x: Buffer) => (next = x));
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (out += d));
    c.on('end', () => {
      const [head = '', body = ''] = out.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), body: JSON.parse(body || '{}'), reused: c.isSessionReused(), session: next });
    });
    c.on('error', reject);
    c.setTimeout(10_000, () => c.destroy(new Error('no answer within 10 s')));
  });
}
