/**
 * `mcp-mtls revoke --principal user/bob` cuts the delegated certificates a platform obtained for
 * bob with his ID token (POST /delegate {"idToken": ...}): no certificate of bob's signed a grant
 * for them, so they record no `delegatedFrom`, only `actingFor` (bob). Through the real CLI, the
 * real OpenID provider of the login tests, a real `ca serve` and an mTLS server given the CRL,
 * on a folder store and on PostgreSQL. carol has no certificate of her own at all (she only ever
 * signed in at the platform): revoking her principal revokes the platform's certificate for her.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { createMtlsServer } from '../../src/mtls/mtls-server.js';
import { parseCrl } from '../../src/x509/crl.js';
import { readCertificates } from '../../src/x509/pem.js';
import { cliOk } from '../support/cli.js';
import { clientCreds, makeCa, openCaOn, request, serverCreds, startServer, type Creds, type TestCa } from '../support/ca-serve.js';
import { CLI_CLIENT_ID, OTHER_CLIENT_ID, startOidcProvider, type TestIdp } from '../support/oidc.js';

const TD = 'acme.test';

/** One GET to an mTLS server with one certificate, on a new connection: the status, or the error. */
function get(port: number, t: TestCa, c: { cert: string; key: string }): Promise<string> {
  return new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', agent: false, ca: t.rootPem, servername: 'localhost', cert: c.cert, key: c.key, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('error', (e) => resolve(`error: ${e.message}`));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function backend(name: 'folder' | 'postgres') {
  describe(`revoke --principal and ID-token delegations, ${name} store`, { timeout: 120_000 }, () => {
    let idp: TestIdp;
    let t: TestCa;
    let ca: Authority;
    let caServe: Awaited<ReturnType<typeof startServer>>;
    let storeArgs: string[];
    let closeStore: (() => Promise<void>) | undefined;
    let platform: Creds;

    before(async () => {
      idp = await startOidcProvider();
      t = makeCa(TD);
      const file = path.join(t.dir, 'config.yaml');
      const config = YAML.parse(fs.readFileSync(file, 'utf8'));
      config.login = { providers: [{ name: 'test-idp', issuer: idp.issuer, clientId: CLI_CLIENT_ID, principalClaim: 'preferred_username', groups: { dev: { teams: ['dev'] }, marketing: { teams: ['marketing'] } } }] };
      config.delegation = { actors: [{ actor: 'service/chat-platform', for: { any: true }, clientId: OTHER_CLIENT_ID }] };
      fs.writeFileSync(file, YAML.stringify(config));
      const opened = await openCaOn(name, t);
      ({ t, storeArgs } = opened);
      ca = t.ca;
      closeStore = opened.close;
      platform = await clientCreds(ca, { kind: 'service', id: 'chat-platform' });
      caServe = await startServer(t, { login: { cooldownMs: 0, timeoutMs: 2000 }, crl: { cacheMs: 0, checkMs: 0 } });
    });
    after(async () => {
      await caServe?.server.shutdown(1000);
      await idp?.stop();
      await closeStore?.();
    });

    const exchange = async (user: string): Promise<Creds> => {
      const tokens = await idp.signIn({ user, clientId: OTHER_CLIENT_ID });
      const r = await request(caServe.port, t.rootPem, { method: 'POST', path: '/delegate', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idToken: tokens.id_token }), creds: platform });
      assert.equal(r.status, 200, r.text());
      const id = decodeIdentity(readCertificates(r.body)[0]!, { trustDomains: [TD] });
      assert.equal(id.actingFor?.principal, `spiffe://${TD}/user/${user}`);
      return { cert: r.text(), key: platform.key, serial: id.serial };
    };

    test("revoke --principal user/bob revokes bob's own certificate and the platform's ID-token certificate for him, in one CRL; carol (no certificate of her own) is cut too; alice's stays", async () => {
      const bobOwn = await clientCreds(ca, { id: 'bob', teams: ['dev'] });
      const bobViaToken = await exchange('bob');
      const aliceViaToken = await exchange('alice');
      const carolViaToken = await exchange('carol');
      const s = await serverCreds(ca);
      const server = createMtlsServer({ cert: s.cert, key: s.key, ca: [t.rootPem], trustDomains: [TD], delegation: true, log: () => undefined }, (_req, res) => {
        res.end('ok');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      try {
        const all = [bobOwn, bobViaToken, aliceViaToken, carolViaToken];
        assert.deepEqual(await Promise.all(all.map((c) => get(port, t, c))), ['200', '200', '200', '200']);
        const crlBefore = parseCrl((await ca.store.readCrl('intermediate'))!).number;

        const out = await cliOk<{ serials: string[]; alsoRevoked: string[]; revoked: string[]; crlNumber: string }>(['revoke', '--principal', 'user/bob', '--reason', 'affiliationChanged', ...storeArgs, '--json']);
        assert.deepEqual(out.serials, [bobOwn.serial]);
        assert.deepEqual([...out.revoked].sort(), [bobOwn.serial, bobViaToken.serial].sort(), "bob's own certificate and the platform's ID-token certificate for bob");
        const crl = parseCrl((await ca.store.readCrl('intermediate'))!);
        assert.equal(crl.number, (crlBefore ?? 0n) + 1n, 'one CRL re-signing');
        const listed = new Set(crl.entries.map((e) => e.serial));
        assert.ok(listed.has(bobViaToken.serial), `the CRL lists the ID-token delegation ${bobViaToken.serial}`);
        assert.ok(!listed.has(aliceViaToken.serial) && !listed.has(platform.serial), "alice's delegation and the platform's own certificate stay valid");
        assert.equal(new Set(crl.entries.filter((e) => e.serial === bobOwn.serial || e.serial === bobViaToken.serial).map((e) => e.revokedAt.getTime())).size, 1, 'one revocation instant');
        const line = (await ca.store.readAudit()).find((a) => a.event === 'cert.revoke' && a.serial === bobViaToken.serial);
        assert.deepEqual([line?.revokedPrincipal, line?.actingFor], [`spiffe://${TD}/user/bob`, `spiffe://${TD}/user/bob`]);

        // carol never had a certificate of her own: her principal is still the platform's certificate for her
        const carol = await cliOk<{ serials: string[]; revoked: string[] }>(['revoke', '--principal', 'user/carol', ...storeArgs, '--json']);
        assert.deepEqual([carol.serials, carol.revoked], [[], [carolViaToken.serial]]);

        server.reloadCrls([(await ca.store.readCrl('intermediate'))!]);
        const after = await Promise.all(all.map((c) => get(port, t, c)));
        assert.match(after[0]!, /^(401|403|error: .*)$/, "bob's own certificate is refused");
        assert.match(after[1]!, /^(401|403|error: .*)$/, "the platform's certificate for bob is refused");
        assert.equal(after[2], '200', "the platform's certificate for alice is still served");
        assert.match(after[3]!, /^(401|403|error: .*)$/, "the platform's certificate for carol is refused");
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });
  });
}

backend('folder');
backend('postgres');
