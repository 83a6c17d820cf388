/**
 * Review of c110e79: the session id context names the trusted CAs only, not the CRLs, so a
 * session made before a certificate was revoked still resumes after the CRL reload (OpenSSL does
 * not check the chain again). The identity must still be refused per request: the adapter's own
 * revocation check runs on every request, resumed or not. Also on a certificate that expired
 * since: not a TLS concern either. Real TLS on 127.0.0.1, a real CA folder, the CLI's revoke.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { cliOk } from '../support/cli.js';
import { makePki, type TestPki } from '../support/pki.js';
import { ask, clientOf, serverCertOf, serverList, shareTicketKeys, whoServer } from '../support/session-resumption.js';

let a: TestPki;
let srv: { cert: string; key: string };
const servers = serverList();

before(async () => {
  a = await makePki();
  srv = await serverCertOf(a);
});

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${version}: a session resumed after its certificate was revoked (CRL reloaded) is refused per request, on the server and on a fleet peer`, async () => {
    const alice = await clientOf(a, `alice-${version === 'TLSv1.3' ? '13' : '12'}`);
    const make = () => servers.listen(whoServer(a, srv));
    const [s1, s2] = [await make(), await make()];
    shareTicketKeys(s1, s2);
    const first = await ask(s1, alice, version);
    assert.equal(first.status, 200);
    assert.ok(first.session);
    await cliOk(['revoke', alice.serial, '--reason', 'keyCompromise', '--dir', a.pki]);
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
