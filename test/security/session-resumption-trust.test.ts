/**
 * A resumed TLS session carries the client certificate and the verdict of the handshake that
 * made it, on whichever server made it: OpenSSL does not verify the chain again on resumption,
 * and the identity is read from the session (2dcb583's peerOfSession, as getPeerX509Certificate
 * did). Servers that share session ticket keys (a fleet behind one name, `server.setTicketKeys`)
 * but trust different CAs must not resume each other's sessions: found in review, server B took
 * alice's certificate from CA A (which B does not trust) as authenticated when she presented the
 * ticket A gave her, over TLS 1.2 and 1.3. The session id context names the trusted CA set, so
 * OpenSSL resumes only a session made under the same trust, and a full handshake decides otherwise.
 * Resumption itself still works on the same server and between servers with the same CAs.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { makePki, type TestPki } from '../support/pki.js';

let a: TestPki;
let b: TestPki;
let alice: { cert: Buffer; key: Buffer };
const servers: MtlsServer[] = [];

const serverCerts = new Map<TestPki, { cert: string; key: string }>();
async function serverOf(p: TestPki): Promise<MtlsServer> {
  let srv = serverCerts.get(p);
  if (!srv) {
    const issued = await p.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
    serverCerts.set(p, (srv = { cert: issued.files.cert, key: issued.files.key as string }));
  }
  const s = createMtlsServer({ ...tlsFromPki(p.pki, srv.cert, srv.key), log: () => undefined }, (req, res) => {
    res.end(JSON.stringify({ who: req.auth?.clientId ?? null }));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return s;
}

before(async () => {
  a = await makePki();
  // another CA (another name: a CA of the same name makes B refuse for want of its CRL's key, see authenticate.ts)
  b = await makePki(['--trust-domain', 'beta.test']);
  const issued = await a.issue(['issue', 'client', '--user', 'alice']);
  alice = { cert: fs.readFileSync(issued.files.cert), key: fs.readFileSync(issued.files.key as string) };
});
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

/** One request as alice over a fresh connection, resuming `session` if given: the answer, whether it resumed, the session to resume next. */
function ask(s: MtlsServer, version: tls.SecureVersion, session?: Buffer) {
  return new Promise<{ status: number; body: Record<string, unknown>; reused: boolean; session: Buffer | undefined }>((resolve, reject) => {
    let next: Buffer | undefined;
    const c = tls.connect(
      { host: '127.0.0.1', port: (s.address() as AddressInfo).port, servername: 'localhost', ...alice, rejectUnauthorized: false, minVersion: version, maxVersion: version, ...(session ? { session } : {}) },
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

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${version}: a ticket of a server that trusts another CA is not resumed (shared ticket keys); the same server's is`, async () => {
    const [sa, sb, sa2] = [await serverOf(a), await serverOf(b), await serverOf(a)];
    const keys = crypto.randomBytes(48);
    for (const s of [sa, sb, sa2]) s.setTicketKeys(keys);
    const first = await ask(sa, version);
    assert.equal(first.body.who, 'spiffe://acme.test/user/alice');
    assert.ok(first.session, 'server A gave a session to resume');
    // at B, whose CA did not issue alice's certificate
    const atB = await ask(sb, version, first.session);
    assert.equal(atB.body.who ?? null, null, `server B (another CA) took alice's certificate from a resumed session of server A: ${JSON.stringify(atB.body)} (resumed: ${atB.reused})`);
    assert.equal(atB.reused, false, `B resumed a session made under another trust: ${atB.status} ${JSON.stringify(atB.body)}`);
    assert.equal(atB.status, 401);
    assert.equal(atB.body.error, 'unknown_ca');
    // resumption still works on A itself and on another server with A's CAs
    const again = await ask(sa, version, first.session);
    assert.equal(again.reused, true, 'A resumes its own session');
    assert.equal(again.body.who, 'spiffe://acme.test/user/alice');
    const fleet = await ask(sa2, version, first.session);
    assert.equal(fleet.reused, true, 'a server with the same CAs and ticket keys resumes it');
    assert.equal(fleet.body.who, 'spiffe://acme.test/user/alice');
  });
}
