/**
 * Review of c110e79 (session id context = a hash of the CA certificates): the hash must name
 * every CA certificate OpenSSL trusts, not only those the project's PEM reader picks out. Node
 * loads a `ca` bundle with OpenSSL's PEM_read_bio_X509_AUX, which also takes blocks labelled
 * `TRUSTED CERTIFICATE` (`openssl x509 -trustout`) and `X509 CERTIFICATE`, and BEGIN lines
 * with trailing blanks; readCertificates keeps only exact `CERTIFICATE` blocks. So a server
 * whose bundle adds CA B in such a block got the same context as a server trusting A alone, and
 * with shared ticket keys the second resumed sessions the first had verified against B.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { sessionContextOf } from '../../src/mtls/tls-options.js';
import { makePki, type TestPki } from '../support/pki.js';

let a: TestPki;
let b: TestPki;
let bob: { cert: Buffer; key: Buffer };
let serverA: { cert: string; key: string };
const servers: MtlsServer[] = [];

before(async () => {
  a = await makePki();
  b = await makePki(['--trust-domain', 'beta.test']);
  const issued = await b.issue(['issue', 'client', '--user', 'bob']);
  bob = { cert: fs.readFileSync(issued.files.cert), key: fs.readFileSync(issued.files.key as string) };
  const s = await a.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  serverA = { cert: s.files.cert, key: s.files.key as string };
});
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

async function serve(ca: Buffer): Promise<MtlsServer> {
  const s = createMtlsServer({ ...tlsFromPki(a.pki, serverA.cert, serverA.key), ca, log: () => undefined }, (req, res) => {
    res.end(JSON.stringify({ who: req.auth?.clientId ?? null }));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return s;
}

function ask(s: MtlsServer, version: tls.SecureVersion, session?: Buffer) {
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

const relabel = (pem: string, label: string, trailing = '') => pem.replace(/-----BEGIN CERTIFICATE-----/g, `-----BEGIN ${label}-----${trailing}`).replace(/-----END CERTIFICATE-----/g, `-----END ${label}-----`);
const spellings: Record<string, (pem: string) => string> = {
  'TRUSTED CERTIFICATE': (p) => relabel(p, 'TRUSTED CERTIFICATE'),
  'X509 CERTIFICATE': (p) => relabel(p, 'X509 CERTIFICATE'),
  'a BEGIN line with a trailing blank': (p) => relabel(p, 'CERTIFICATE', ' '),
};

for (const [name, spell] of Object.entries(spellings)) {
  test(`CA B added to A's bundle as ${name}: another session id context than A's alone, and no resumption across`, async () => {
    const rootA = fs.readFileSync(path.join(a.pki, 'root.crt'), 'utf8');
    const rootB = fs.readFileSync(path.join(b.pki, 'root.crt'), 'utf8');
    const both = Buffer.from(rootA + spell(rootB));
    const onlyA = Buffer.from(rootA);
    const wide = await serve(both);
    const narrow = await serve(onlyA);
    const keys = crypto.randomBytes(48);
    wide.setTicketKeys(keys);
    narrow.setTicketKeys(keys);
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      const first = await ask(wide, version);
      // OpenSSL did load B from that block: the handshake at the wide server verified bob
      assert.notEqual(first.body.error, 'unknown_ca', `${version}: the wide server does not trust B (${name} not loaded): ${JSON.stringify(first.body)}`);
      assert.ok(first.session, 'a session to resume');
      const there = await ask(narrow, version, first.session);
      assert.equal(there.body.who ?? null, null, `${version}: the server trusting only A took bob's certificate (CA B, given as ${name} to the other) from a resumed session: ${JSON.stringify(there.body)} (resumed: ${there.reused})`);
      assert.equal(there.status, 401);
    }
    assert.notEqual(sessionContextOf(both), sessionContextOf(onlyA), 'the two bundles got one session id context');
  });
}

test('the same CAs in another order or spelling still share one context (fleet resumption kept)', () => {
  const rootA = fs.readFileSync(path.join(a.pki, 'root.crt'), 'utf8');
  const rootB = fs.readFileSync(path.join(b.pki, 'root.crt'), 'utf8');
  assert.equal(sessionContextOf(Buffer.from(rootA + rootB)), sessionContextOf([rootB, rootA]));
  assert.equal(sessionContextOf(rootA + rootB), sessionContextOf((rootB + rootA).replace(/\n/g, '\r\n')));
});
