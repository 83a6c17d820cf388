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
import { before, test } from 'node:test';
import type { MtlsServer } from '../../src/mtls/mtls-server.js';
import { makePki, type TestPki } from '../support/pki.js';
import { ask, clientOf, serverCertOf, serverList, shareTicketKeys, whoServer, type ClientCert } from '../support/session-resumption.js';

let a: TestPki;
let b: TestPki;
let alice: ClientCert;
const servers = serverList();

const serverCerts = new Map<TestPki, { cert: string; key: string }>();
async function serverOf(p: TestPki): Promise<MtlsServer> {
  let srv = serverCerts.get(p);
  if (!srv) serverCerts.set(p, (srv = await serverCertOf(p)));
  return servers.listen(whoServer(p, srv));
}

before(async () => {
  a = await makePki();
  // another CA (another name: a CA of the same name makes B refuse for want of its CRL's key, see authenticate.ts)
  b = await makePki(['--trust-domain', 'beta.test']);
  alice = await clientOf(a, 'alice');
});

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${version}: a ticket of a server that trusts another CA is not resumed (shared ticket keys); the same server's is`, async () => {
    const [sa, sb, sa2] = [await serverOf(a), await serverOf(b), await serverOf(a)];
    shareTicketKeys(sa, sb, sa2);
    const first = await ask(sa, alice, version);
    assert.equal(first.body.who, 'spiffe://acme.test/user/alice');
    assert.ok(first.session, 'server A gave a session to resume');
    // at B, whose CA did not issue alice's certificate
    const atB = await ask(sb, alice, version, first.session);
    assert.equal(atB.body.who ?? null, null, `server B (another CA) took alice's certificate from a resumed session of server A: ${JSON.stringify(atB.body)} (resumed: ${atB.reused})`);
    assert.equal(atB.reused, false, `B resumed a session made under another trust: ${atB.status} ${JSON.stringify(atB.body)}`);
    assert.equal(atB.status, 401);
    assert.equal(atB.body.error, 'unknown_ca');
    // resumption still works on A itself and on another server with A's CAs
    const again = await ask(sa, alice, version, first.session);
    assert.equal(again.reused, true, 'A resumes its own session');
    assert.equal(again.body.who, 'spiffe://acme.test/user/alice');
    const fleet = await ask(sa2, alice, version, first.session);
    assert.equal(fleet.reused, true, 'a server with the same CAs and ticket keys resumes it');
    assert.equal(fleet.body.who, 'spiffe://acme.test/user/alice');
  });
}
