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
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import type { MtlsServer } from '../../src/mtls/mtls-server.js';
import { sessionContextOf } from '../../src/mtls/tls-options.js';
import { makePki, type TestPki } from '../support/pki.js';
import { ask, clientOf, serverCertOf, serverList, shareTicketKeys, whoServer, type ClientCert } from '../support/session-resumption.js';

let a: TestPki;
let b: TestPki;
let bob: ClientCert;
let serverA: { cert: string; key: string };
const servers = serverList();

before(async () => {
  a = await makePki();
  b = await makePki(['--trust-domain', 'beta.test']);
  bob = await clientOf(b, 'bob');
  serverA = await serverCertOf(a);
});

const serve = (ca: Buffer): Promise<MtlsServer> => servers.listen(whoServer(a, serverA, { ca }));

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
    shareTicketKeys(wide, narrow);
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      const first = await ask(wide, bob, version);
      // OpenSSL did load B from that block: the handshake at the wide server verified bob
      assert.notEqual(first.body.error, 'unknown_ca', `${version}: the wide server does not trust B (${name} not loaded): ${JSON.stringify(first.body)}`);
      assert.ok(first.session, 'a session to resume');
      const there = await ask(narrow, bob, version, first.session);
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
