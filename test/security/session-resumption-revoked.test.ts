/**
 * Review of c110e79: the session id context names the trusted CAs only, not the CRLs, so a
 * session made before a certificate was revoked still resumes after the CRL reload (OpenSSL does
 * not check the chain again). The identity must still be refused per request: the adapter's own
 * revocation check runs on every request, resumed or not. Also on a certificate that expired
 * since: not a TLS concern either. Real TLS on 127.0.0.1, a real CA folder, the CLI's revoke.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { cliOk } from '../support/cli.js';
import { makePki, type TestPki } from '../support/pki.js';

let a: TestPki;
let srv: { cert: string; key: string };
const servers: MtlsServer[] = [];

before(async () => {
  a = await makePki();
  const s = await a.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  srv = { cert: s.files.cert, key: s.files.key as string };
});
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

function ask(s: MtlsServer, who: { cert: Buffer; key: Buffer }, version: tls.SecureVersion, session?: Buffer) {
  return new Promise<{ status: number; body: Record<string, unknown>; reused: boolean; session: Buffer | undefined }>((resolve, reject) => {
    let next: Buffer | undefined;
    const c = tls.connect(
      { host: '127.0.0.1', port: (s.address() as AddressInfo).port, servername: 'localhost', ...who, rejectUnauthorized: false, minVersion: version, maxVersion: version, ...(session ? { session } : {}) },
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
  test(`${version}: a session resumed after its certificate was revoked (CRL reloaded) is refused per request, on the server and on a fleet peer`, async () => {
    const issued = await a.issue(['issue', 'client', '--user', `alice-${version === 'TLSv1.3' ? '13' : '12'}`]);
    const alice = { cert: fs.readFileSync(issued.files.cert), key: fs.readFileSync(issued.files.key as string) };
    const make = async () => {
      const s = createMtlsServer({ ...tlsFromPki(a.pki, srv.cert, srv.key), log: () => undefined }, (req, res) => void res.end(JSON.stringify({ who: req.auth?.clientId ?? null })));
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      servers.push(s);
      return s;
    };
    const [s1, s2] = [await make(), await make()];
    const keys = crypto.randomBytes(48);
    s1.setTicketKeys(keys);
    s2.setTicketKeys(keys);
    const first = await ask(s1, alice, version);
    assert.equal(first.status, 200);
    assert.ok(first.session);
    await cliOk(['revoke', issued.serial, '--reason', 'keyCompromise', '--dir', a.pki]);
    const crls = fs.readdirSync(path.join(a.pki, 'crl')).filter((f) => f.endsWith('.crl')).map((f) => fs.readFileSync(path.join(a.pki, 'crl', f)));
    for (const s of [s1, s2]) s.reloadCrls(crls);
    for (const [name, s] of [['the same server', s1], ['a fleet peer', s2]] as const) {
      const again = await ask(s, alice, version, first.session);
      assert.equal(again.reused, true, `${name} resumed (the context does not name the CRL): the check below is then the one that refuses`);
      assert.equal(again.status, 401, `${name} answered a resumed session of a revoked certificate: ${again.status} ${JSON.stringify(again.body)}`);
      assert.equal(again.body.error, 'certificate_revoked');
    }
  });
}
