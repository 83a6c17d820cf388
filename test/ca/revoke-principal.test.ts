/**
 * `mcp-mtls revoke --principal user/bob` through the real CLI, on a folder store and on
 * PostgreSQL: bob renewed online (POST /renew), so two of his certificates are valid; he signed
 * a grant with the old one and one with the new one, and the platform exchanged each for a
 * delegated certificate. Revoking the principal revokes all four in one CRL, the old grant is
 * refused at POST /delegate, and an mTLS server given the CRL refuses each certificate on its
 * next request (on a connection opened before). And `revoke SERIAL --reason keyCompromise`
 * revokes the certificate it renewed from when that one certifies the same key.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import { revokePrincipal } from '../../src/ca/revocation.js';
import { createEnrollmentToken, enrollWithToken } from '../../src/ca/tokens.js';
import { signGrant } from '../../src/delegation/grant.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { createMtlsServer, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { parseCrl } from '../../src/x509/crl.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { readCertificates } from '../../src/x509/pem.js';
import { cli, cliOk } from '../support/cli.js';
import { clientCreds, makeCa, openCaOn, request, serverCreds, startServer, type Creds, type TestCa } from '../support/ca-serve.js';

const TD = 'acme.test';
const BOB = `spiffe://${TD}/user/bob`;
const PLATFORM = `spiffe://${TD}/service/chat-platform`;

const grant = (c: Creds) => signGrant({ chain: readCertificates(Buffer.from(c.cert)), key: crypto.createPrivateKey(c.key), actor: PLATFORM, ttlMs: 8 * 3600_000 });

/** An mTLS server of this CA (root and intermediate trusted, CRLs given by reloadCrls) answering 200 to who is authenticated. */
async function mtlsServer(t: TestCa): Promise<{ server: MtlsServer; port: number }> {
  const s = await serverCreds(t.ca);
  const server = createMtlsServer({ cert: s.cert, key: s.key, ca: [t.rootPem], trustDomains: [TD], delegation: true, log: () => undefined }, (_req, res) => void res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A keep-alive client with one certificate: its requests share one TLS connection while the server keeps it. */
function keptClient(port: number, t: TestCa, c: { cert: string; key: string }) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise<string>((resolve) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/', agent, ca: t.rootPem, servername: 'localhost', cert: c.cert, key: c.key }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      });
      req.on('error', (e) => resolve(`error: ${e.message}`));
      req.end();
    });
  return { get, close: () => agent.destroy() };
}

function backend(name: 'folder' | 'postgres') {
  describe(`revoke --principal, ${name} store`, { timeout: 120_000 }, () => {
    let t: TestCa;
    let ca: Authority;
    let caServe: Awaited<ReturnType<typeof startServer>>;
    let storeArgs: string[];
    let closeStore: (() => Promise<void>) | undefined;

    before(async () => {
      t = makeCa(TD);
      fs.appendFileSync(path.join(t.dir, 'config.yaml'), 'delegation:\n  maxTtl: 1h\n  actors:\n    - actor: service/chat-platform\n      for: { teams: [sre] }\n      teams: [sre]\n');
      const opened = await openCaOn(name, t);
      ({ t, storeArgs } = opened);
      ca = t.ca;
      closeStore = opened.close;
      caServe = await startServer(t, { crl: { cacheMs: 0, checkMs: 0 } });
    });
    after(async () => {
      await caServe?.server.shutdown(1000);
      await closeStore?.();
    });

    const post = (p: string, creds: { cert: string; key: string }, body?: unknown) =>
      request(caServe.port, t.rootPem, { method: 'POST', path: p, creds, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });

    test('bob renewed online, a grant and a delegated certificate from each: revoke --principal user/bob revokes all, in one CRL; the old grant is refused; a server refuses each on its next request', async () => {
      const bobOld = await clientCreds(ca, { id: 'bob', teams: ['sre'] });
      const platform = await clientCreds(ca, { kind: 'service', id: 'chat-platform' });
      const alice = await clientCreds(ca, { id: 'alice', teams: ['sre'] });
      // online renewal, the key kept: the old certificate stays valid
      const renewed = await post('/renew', bobOld);
      assert.equal(renewed.status, 200, renewed.text());
      const bobNew: Creds = { cert: renewed.text(), key: bobOld.key, serial: decodeIdentity(readCertificates(renewed.body)[0]!).serial };
      const oldGrant = await grant(bobOld);
      const delegated: Creds[] = [];
      for (const g of [oldGrant, await grant(bobNew)]) {
        const r = await post('/delegate', platform, { grant: g });
        assert.equal(r.status, 200, r.text());
        delegated.push({ cert: r.text(), key: platform.key, serial: decodeIdentity(readCertificates(r.body)[0]!, { trustDomains: [TD] }).serial });
      }
      const bobs = [bobOld, bobNew, ...delegated];
      const mtls = await mtlsServer(t);
      const clients = bobs.map((c) => keptClient(mtls.port, t, c));
      const aliceClient = keptClient(mtls.port, t, alice);
      try {
        assert.deepEqual(await Promise.all([...clients, aliceClient].map((c) => c.get())), ['200', '200', '200', '200', '200']);
        const crlBefore = parseCrl((await ca.store.readCrl('intermediate'))!).number;

        const out = await cliOk<{ principal: string; serials: string[]; alsoRevoked: string[]; revoked: string[]; crlNumber: string }>(['revoke', '--principal', 'user/bob', '--reason', 'affiliationChanged', ...storeArgs, '--json']);
        assert.equal(out.principal, BOB);
        assert.deepEqual(out.serials, [bobOld.serial, bobNew.serial]);
        assert.deepEqual([...out.revoked].sort(), bobs.map((c) => c.serial).sort());

        const crl = parseCrl((await ca.store.readCrl('intermediate'))!);
        assert.equal(String(crl.number), out.crlNumber);
        assert.equal(crl.number, crlBefore! + 1n, 'one CRL re-signing');
        const listed = new Set(crl.entries.map((e) => e.serial));
        for (const c of bobs) assert.ok(listed.has(c.serial), `the CRL lists ${c.serial}`);
        assert.ok(!listed.has(alice.serial) && !listed.has(platform.serial), 'alice and the platform stay valid');
        // one store transaction: one cert.revoke line per serial, all of one instant
        const lines = (await ca.store.readAudit()).filter((a) => a.event === 'cert.revoke');
        assert.deepEqual(lines.map((a) => a.serial).sort(), bobs.map((c) => c.serial).sort());
        assert.equal(new Set(crl.entries.filter((e) => bobs.some((c) => c.serial === e.serial)).map((e) => e.revokedAt.getTime())).size, 1);

        const late = await post('/delegate', platform, { grant: oldGrant });
        assert.equal(late.status, 403, `the old grant was exchanged: ${late.text().slice(0, 60)}`);
        assert.equal(late.json().error?.code, 'DELEGATOR_REVOKED');

        mtls.server.reloadCrls([(await ca.store.readCrl('intermediate'))!]);
        const after = await Promise.all([...clients, aliceClient].map((c) => c.get()));
        for (const [i, r] of after.slice(0, 4).entries()) assert.match(r, /^(401|403|error: .*)$/, `certificate ${bobs[i]!.serial} is refused on its next request`);
        assert.equal(after[4], '200', 'alice is still served');
        // and on a new connection
        for (const c of bobs) {
          const fresh = keptClient(mtls.port, t, c);
          assert.match(await fresh.get(), /^(401|403|error: .*)$/, `certificate ${c.serial} is refused on a new connection`);
          fresh.close();
        }

        // nothing valid is left: revoking again records the later time all the same
        const again = await cli(['revoke', '--principal', 'user/bob', ...storeArgs]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /spiffe:\/\/acme\.test\/user\/bob had no valid certificate and none acted for it; its revocation is recorded/);
        const bad = await cli(['revoke', '--principal', 'user/Bob Smith', ...storeArgs]);
        assert.notEqual(bad.code, 0);
        assert.match(bad.stderr, /Bob Smith/);
        const foreign = await cli(['revoke', '--principal', 'spiffe://other.test/user/bob', ...storeArgs]);
        assert.match(foreign.stderr, /trust domain other\.test, not this CA's \(acme\.test\)/);
      } finally {
        for (const c of [...clients, aliceClient]) c.close();
        mtls.server.closeAllConnections();
        await new Promise((r) => mtls.server.close(r));
      }
    });

    test("a person whose certificates are all revoked or expired, or who never had one, is revoked all the same; their enrollment tokens not used yet enroll nobody after it; alice's still does", async () => {
      const sign = (secret: string) =>
        request(caServe.port, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: createCsr(generateKey('ec-p256'), 'x') });
      const dave = await clientCreds(ca, { id: 'dave', teams: ['sre'] });
      await cliOk(['revoke', dave.serial, '--reason', 'keyCompromise', ...storeArgs]); // a lost laptop: nothing of dave's is valid now
      const daveToken = await createEnrollmentToken(ca, { kind: 'user', id: 'dave', teams: ['sre'], roles: [], ttlMs: 3_600_000 });
      const erinToken = await createEnrollmentToken(ca, { kind: 'user', id: 'erin', teams: [], roles: [], ttlMs: 3_600_000 }); // never had a certificate
      const aliceToken = await createEnrollmentToken(ca, { kind: 'user', id: 'alice', teams: [], roles: [], ttlMs: 3_600_000 });
      for (const [who, token] of [['dave', daveToken], ['erin', erinToken]] as const) {
        const out = await cliOk<{ serials: string[]; tokensDropped: string[] }>(['revoke', '--principal', `user/${who}`, '--reason', 'affiliationChanged', ...storeArgs, '--json']);
        assert.deepEqual(out.serials, []);
        assert.deepEqual(out.tokensDropped, [token.token.id], `${who}'s unused token is removed`);
        assert.ok(await ca.store.principalRevocation(`spiffe://${TD}/user/${who}`), `${who}'s revocation is recorded`);
        const r = await sign(token.secret);
        assert.equal(r.status, 401, `${who}'s token made before the revocation enrolled: ${r.text().slice(0, 120)}`);
        assert.equal(r.json().error?.code, 'TOKEN_INVALID');
      }
      const audit = (await ca.store.readAudit()).filter((a) => a.event === 'token.drop').map((a) => a.tokenId);
      assert.deepEqual(audit, [daveToken.token.id, erinToken.token.id], 'each removal is audited');
      const ok = await sign(aliceToken.secret);
      assert.equal(ok.status, 200, ok.text().slice(0, 200));
    });

    test('a token being made while the person is revoked is dropped with the rest: the revocation waits for it', async () => {
      // token create's transaction has written the token and not committed yet when revoke --principal starts
      const store = ca.store as { transaction: (fn: (tx: unknown) => unknown) => Promise<unknown> };
      const original = store.transaction;
      let written!: () => void;
      const wrote = new Promise<void>((r) => (written = r));
      let commit!: () => void;
      const gate = new Promise<void>((r) => (commit = r));
      store.transaction = (fn) => {
        store.transaction = original;
        return original.call(store, async (tx: unknown) => {
          const r = await fn(tx);
          written();
          await gate;
          return r;
        });
      };
      const creating = createEnrollmentToken(ca, { kind: 'user', id: 'frank', teams: [], roles: [], ttlMs: 3_600_000 });
      await wrote;
      let revoked = false;
      const revoking = revokePrincipal(ca, 'user/frank', 'affiliationChanged').finally(() => (revoked = true));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(revoked, false, 'the revocation waits for the token being made');
      commit();
      const made = await creating;
      const r = await revoking;
      assert.deepEqual(r.tokensDropped, [made.token.id], 'the token made meanwhile is dropped');
      await assert.rejects(enrollWithToken(ca, made.secret, createCsr(generateKey('ec-p256'), 'x')), { code: 'TOKEN_REFUSED', reason: 'unknown' });
    });

    test("a snapshot from before revoke --principal, restored with replace, does not bring back the person's unused tokens", async () => {
      const store = ca.store as unknown as { snapshot(): Promise<unknown>; importAll?(d: unknown, r: boolean): Promise<void>; restore?(d: unknown, r: boolean): Promise<void> };
      const gina = await createEnrollmentToken(ca, { kind: 'user', id: 'gina', teams: [], roles: [], ttlMs: 3_600_000 });
      const hugo = await createEnrollmentToken(ca, { kind: 'user', id: 'hugo', teams: [], roles: [], ttlMs: 3_600_000 });
      const backup = await store.snapshot();
      const r = await revokePrincipal(ca, 'user/gina', 'affiliationChanged');
      assert.deepEqual(r.tokensDropped, [gina.token.id]);
      await (store.importAll ? store.importAll(backup, true) : store.restore!(backup, true));
      const ids = (await ca.store.readTokens()).map((x) => x.id);
      assert.equal(ids.includes(gina.token.id), false, "gina's token stays dropped after the restore");
      assert.ok(ids.includes(hugo.token.id), "hugo's token is restored");
      await assert.rejects(enrollWithToken(ca, gina.secret, createCsr(generateKey('ec-p256'), 'x')), { code: 'TOKEN_REFUSED' });
    });

    test('revoke SERIAL --reason keyCompromise revokes the certificate it renewed from with the same key, and what that one delegated; not one with another key', async () => {
      const carolOld = await clientCreds(ca, { id: 'carol', teams: ['sre'] });
      const platform = await clientCreds(ca, { kind: 'service', id: 'chat-platform' });
      const renewed = await post('/renew', carolOld);
      assert.equal(renewed.status, 200, renewed.text());
      const carolNew: Creds = { cert: renewed.text(), key: carolOld.key, serial: decodeIdentity(readCertificates(renewed.body)[0]!).serial };
      const d = await post('/delegate', platform, { grant: await grant(carolOld) });
      assert.equal(d.status, 200, d.text());
      const delegatedSerial = decodeIdentity(readCertificates(d.body)[0]!, { trustDomains: [TD] }).serial;
      // dan's older certificate has another key (he was issued a new one, renewing with a new key)
      const danOld = await clientCreds(ca, { id: 'dan' });
      const danNew = (await ca.issueClient({ kind: 'user', id: 'dan', teams: [], roles: [], renewedFrom: danOld.serial })).record.serial;

      const out = await cliOk<{ revoked: string[] }>(['revoke', carolNew.serial, '--reason', 'keyCompromise', ...storeArgs, '--json']);
      assert.deepEqual(out.revoked, [carolNew.serial, carolOld.serial, delegatedSerial]);
      const listed = new Set(parseCrl((await ca.store.readCrl('intermediate'))!).entries.map((e) => e.serial));
      for (const s of out.revoked) assert.ok(listed.has(s), `the CRL lists ${s}`);
      const dan = await cliOk<{ revoked: string[] }>(['revoke', danNew, '--reason', 'keyCompromise', ...storeArgs, '--json']);
      assert.deepEqual(dan.revoked, [danNew], 'another key: the renewed-from certificate stays');
      // another reason is not of the key: the certificate it renewed from stays
      const erinOld = await clientCreds(ca, { id: 'erin' });
      const erinNew = await post('/renew', erinOld);
      const erinNewSerial = decodeIdentity(readCertificates(erinNew.body)[0]!).serial;
      const erin = await cliOk<{ revoked: string[] }>(['revoke', erinNewSerial, '--reason', 'unspecified', ...storeArgs, '--json']);
      assert.deepEqual(erin.revoked, [erinNewSerial]);
    });
  });
}

backend('folder');
backend('postgres');
