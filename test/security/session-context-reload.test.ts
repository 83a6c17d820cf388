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
import https from 'node:https';
import { before, test } from 'node:test';
import { createMtlsMiddleware, mtlsServerOptions } from '../../src/mtls/middleware.js';
import { createMtlsServer, tlsFromPki, type MtlsTlsMaterial } from '../../src/mtls/mtls-server.js';
import { makePki, type TestPki } from '../support/pki.js';
import { ask, clientOf, serverCertOf, serverList, shareTicketKeys, whoBody, type ClientCert } from '../support/session-resumption.js';

let a: TestPki;
let b: TestPki;
let bob: ClientCert;
const material = new Map<TestPki, MtlsTlsMaterial>();
const servers = serverList();

before(async () => {
  a = await makePki();
  b = await makePki(['--trust-domain', 'beta.test']);
  bob = await clientOf(b, 'bob');
  for (const p of [a, b]) {
    const s = await serverCertOf(p);
    material.set(p, tlsFromPki(p.pki, s.cert, s.key));
  }
});

const caList = (m: MtlsTlsMaterial) => (Array.isArray(m.ca) ? [...(m.ca as readonly (string | Buffer)[])] : [m.ca as string | Buffer]);

/** createMtlsServer, its context reloaded by a direct setSecureContext call (not setCertificate) */
async function serveMtls(p: TestPki): Promise<https.Server> {
  const m = material.get(p)!;
  const s = await servers.listen(createMtlsServer({ ...m, log: () => undefined }, (req, res) => void res.end(whoBody(req))));
  s.setSecureContext({ cert: m.cert, key: m.key, ca: caList(m), secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION });
  return s;
}

async function serve(p: TestPki): Promise<https.Server> {
  const m = material.get(p)!;
  const mw = createMtlsMiddleware({ tls: m, log: () => undefined });
  const s = await servers.listen(https.createServer(mtlsServerOptions(m), (req, res) => mw(req, res, () => res.end(whoBody(req as { auth?: { clientId?: string } })))));
  // a certificate reload as docs/server.md said: the options again, secureOptions kept
  s.setSecureContext({ cert: m.cert, key: m.key, ca: caList(m), secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION });
  return s;
}

for (const [kind, make] of [['middleware', serve], ['createMtlsServer', serveMtls]] as const) for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${kind}, ${version}: after a setSecureContext reload without sessionIdContext, a server trusting A does not take bob's (CA B) session from a server trusting B`, async () => {
    const [sb, sa] = [await make(b), await make(a)];
    shareTicketKeys(sb, sa);
    const first = await ask(sb, bob, version);
    assert.equal(first.body.who, 'spiffe://beta.test/user/bob');
    assert.ok(first.session);
    const there = await ask(sa, bob, version, first.session);
    assert.equal(there.body.who ?? null, null, `the server trusting only A answered as bob from a resumed session of B's server: ${JSON.stringify(there.body)} (resumed: ${there.reused})`);
    assert.equal(there.status, 401);
    // B's own server still takes its own resumed session
    const home = await ask(sb, bob, version, first.session);
    assert.equal(home.status, 200, `B's server refused its own resumed session: ${JSON.stringify(home.body)}`);
    assert.equal(home.body.who, 'spiffe://beta.test/user/bob');
  });
}
