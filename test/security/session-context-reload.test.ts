/**
 * Review of c110e79 for servers users build themselves (`https.createServer(mtlsServerOptions(m))`
 * with createMtlsMiddleware). Node's `server.setSecureContext(options)` puts the server's session id
 * context back to its default (a hash of the command line, the same for every server started
 * alike) unless `options` has `sessionIdContext`, and docs/server.md told users to keep only
 * `secureOptions` in that call. After such a certificate reload, two servers sharing ticket keys
 * but trusting other CAs resumed each other's sessions again, and the middleware took the
 * session's certificate and verdict from a server whose CAs it does not trust. The middleware now
 * checks a resumed session's chain itself when the server's context is not the one
 * mtlsServerOptions gave for its CAs.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { createMtlsMiddleware, mtlsServerOptions } from '../../src/mtls/middleware.js';
import { createMtlsServer, tlsFromPki, type MtlsTlsMaterial } from '../../src/mtls/mtls-server.js';
import { makePki, type TestPki } from '../support/pki.js';

let a: TestPki;
let b: TestPki;
let bob: { cert: Buffer; key: Buffer };
const material = new Map<TestPki, MtlsTlsMaterial>();
const servers: https.Server[] = [];

before(async () => {
  a = await makePki();
  b = await makePki(['--trust-domain', 'beta.test']);
  const issued = await b.issue(['issue', 'client', '--user', 'bob']);
  bob = { cert: fs.readFileSync(issued.files.cert), key: fs.readFileSync(issued.files.key as string) };
  for (const p of [a, b]) {
    const s = await p.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
    material.set(p, tlsFromPki(p.pki, s.files.cert, s.files.key as string));
  }
});
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

const caList = (m: MtlsTlsMaterial) => (Array.isArray(m.ca) ? [...(m.ca as readonly (string | Buffer)[])] : [m.ca as string | Buffer]);

/** createMtlsServer, its context reloaded by a direct setSecureContext call (not setCertificate) */
async function serveMtls(p: TestPki): Promise<https.Server> {
  const m = material.get(p)!;
  const s = createMtlsServer({ ...m, log: () => undefined }, (req, res) => void res.end(JSON.stringify({ who: req.auth?.clientId ?? null })));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  s.setSecureContext({ cert: m.cert, key: m.key, ca: caList(m), secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION });
  return s;
}

async function serve(p: TestPki): Promise<https.Server> {
  const m = material.get(p)!;
  const mw = createMtlsMiddleware({ tls: m, log: () => undefined });
  const s = https.createServer(mtlsServerOptions(m), (req, res) => mw(req, res, () => res.end(JSON.stringify({ who: (req as { auth?: { clientId?: string } }).auth?.clientId ?? null }))));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  // a certificate reload as docs/server.md said: the options again, secureOptions kept
  s.setSecureContext({ cert: m.cert, key: m.key, ca: caList(m), secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION });
  return s;
}

function ask(s: https.Server, version: tls.SecureVersion, session?: Buffer) {
  return new Promise<{ status: number; body: Record<string, unknown>; reused: boolean; session: Buffer | undefined }>((resolve, reject) => {
    let next: Buffer | undefined;
    const c = tls.connect(
      { host: '127.0.0.1', port: (s.address() as AddressInfo).port, servername: 'localhost', ...bob, rejectUnauthorized: false, minVersion: version, maxVersion: version, ...(session ? { session } : {}) },
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

for (const [kind, make] of [['middleware', serve], ['createMtlsServer', serveMtls]] as const) for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${kind}, ${version}: after a setSecureContext reload without sessionIdContext, a server trusting A does not take bob's (CA B) session from a server trusting B`, async () => {
    const [sb, sa] = [await make(b), await make(a)];
    const keys = crypto.randomBytes(48);
    sb.setTicketKeys(keys);
    sa.setTicketKeys(keys);
    const first = await ask(sb, version);
    assert.equal(first.body.who, 'spiffe://beta.test/user/bob');
    assert.ok(first.session);
    const there = await ask(sa, version, first.session);
    assert.equal(there.body.who ?? null, null, `the server trusting only A answered as bob from a resumed session of B's server: ${JSON.stringify(there.body)} (resumed: ${there.reused})`);
    assert.equal(there.status, 401);
    // B's own server still takes its own resumed session
    const home = await ask(sb, version, first.session);
    assert.equal(home.status, 200, `B's server refused its own resumed session: ${JSON.stringify(home.body)}`);
    assert.equal(home.body.who, 'spiffe://beta.test/user/bob');
  });
}
