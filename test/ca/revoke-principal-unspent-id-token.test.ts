/**
 * `mcp-mtls revoke --principal user/bob` refuses, from that moment, every ID token for bob issued
 * (iat) at or before the revocation (and up to the 60 s of clock skew the ID-token check allows
 * after it), at POST /login/sign and at POST /delegate {"idToken"}: a token bob (or a platform
 * for him) obtained before and had not traded yet gets PRINCIPAL_REVOKED (403), not a new
 * certificate. A new sign-in after that works again. Through the real CLI, the real OpenID
 * provider of the login tests and a real `ca serve`, on a folder store and on PostgreSQL; and
 * `ca export` / `ca import` carry the record between the two.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { revokePrincipal, writeCrls } from '../../src/ca/revocation.js';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { PostgresStore } from '../../src/ca/store/postgres-store.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { pemEncode, readCertificates } from '../../src/x509/pem.js';
import { bareCopy, cliOk, tmpDir } from '../support/cli.js';
import { clientCreds, makeCa, openCaOn, request, startServer, type Creds, type TestCa } from '../support/ca-serve.js';
import { CLI_CLIENT_ID, OIDC_USERS, OTHER_CLIENT_ID, startOidcProvider, type TestIdp } from '../support/oidc.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

const TD = 'acme.test';
const BOB = `spiffe://${TD}/user/bob`;

const csr = () => pemEncode('CERTIFICATE REQUEST', createCsr(generateKey('ec-p256'), 'ignored'));
const sleepUntil = async (ms: number) => {
  while (Date.now() < ms) await new Promise((r) => setTimeout(r, Math.min(500, ms - Date.now() + 5)));
};

/** The CA's config.yaml with the test provider for sign-in and the platform as an actor that exchanges ID tokens. */
function configure(t: TestCa, idp: TestIdp): void {
  const file = path.join(t.dir, 'config.yaml');
  const config = YAML.parse(fs.readFileSync(file, 'utf8'));
  config.login = { providers: [{ name: 'test-idp', issuer: idp.issuer, clientId: CLI_CLIENT_ID, principalClaim: 'preferred_username', groups: { dev: { teams: ['dev'] }, sre: { teams: ['sre'] } } }] };
  config.delegation = { actors: [{ actor: 'service/chat-platform', for: { any: true }, clientId: OTHER_CLIENT_ID }] };
  fs.writeFileSync(file, YAML.stringify(config));
}

function backend(name: 'folder' | 'postgres') {
  describe(`revoke --principal refuses the principal's unspent ID tokens, ${name} store`, { timeout: 240_000 }, () => {
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
      configure(t, idp);
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

    const loginSign = (idToken: string) =>
      request(caServe.port, t.rootPem, { method: 'POST', path: '/login/sign', headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${idToken}` }, body: csr() });
    const delegate = (idToken: string) =>
      request(caServe.port, t.rootPem, { method: 'POST', path: '/delegate', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idToken }), creds: platform });
    const principalOf = (pem: Buffer) => {
      const id = decodeIdentity(readCertificates(pem)[0]!, { trustDomains: [TD] });
      return id.actingFor?.principal ?? id.principal;
    };
    /** a token of bob's signed by the provider's key, dated `iat` (s) */
    const bobToken = (iat: number, aud: string) => idp.mintIdToken({ ...OIDC_USERS.bob, aud, iat, exp: iat + 300 });

    test("an ID token bob got before revoke --principal is refused at /login/sign and /delegate (PRINCIPAL_REVOKED); alice's is not; a new sign-in after works", async () => {
      // bob signs in once (his own certificate), then holds two more ID tokens he has not traded
      const first = await loginSign((await idp.signIn({ user: 'bob' })).id_token as string);
      assert.equal(first.status, 200, first.text());
      const unspentLogin = (await idp.signIn({ user: 'bob' })).id_token as string;
      const unspentDelegate = (await idp.signIn({ user: 'bob', clientId: OTHER_CLIENT_ID })).id_token as string;
      const aliceLogin = (await idp.signIn({ user: 'alice' })).id_token as string;
      const aliceDelegate = (await idp.signIn({ user: 'alice', clientId: OTHER_CLIENT_ID })).id_token as string;

      const out = await cliOk<{ revokedAt: string; revoked: string[] }>(['revoke', '--principal', 'user/bob', '--reason', 'affiliationChanged', ...storeArgs, '--json']);
      assert.equal(out.revoked.length, 1, "bob's own certificate");
      const revokedAt = Date.parse(out.revokedAt) / 1000;

      const refusedLogin = await loginSign(unspentLogin);
      assert.equal(refusedLogin.status, 403, `an unspent ID token of bob's from before the revocation got a certificate at /login/sign: ${refusedLogin.status} ${refusedLogin.text().slice(0, 200)}`);
      assert.equal(refusedLogin.json().error?.code, 'PRINCIPAL_REVOKED');
      assert.match(refusedLogin.json().error?.message ?? '', new RegExp(`${BOB.replace(/[./]/g, '\\$&')} was revoked at ${out.revokedAt.replace(/[.]/g, '\\.')} \\(affiliationChanged\\)`));
      assert.match(refusedLogin.json().error?.hint ?? '', /sign in again at the identity provider/);
      const refusedDelegate = await delegate(unspentDelegate);
      assert.equal(refusedDelegate.status, 403, `an unspent ID token of bob's from before the revocation got a delegated certificate at /delegate: ${refusedDelegate.status} ${refusedDelegate.text().slice(0, 200)}`);
      assert.equal(refusedDelegate.json().error?.code, 'PRINCIPAL_REVOKED');

      // other people are not touched
      const a1 = await loginSign(aliceLogin);
      assert.equal(a1.status, 200, a1.text());
      const a2 = await delegate(aliceDelegate);
      assert.equal(a2.status, 200, a2.text());
      assert.equal(principalOf(a2.body), `spiffe://${TD}/user/alice`);

      // the clock-skew margin: a token dated within 60 s after the revocation is refused, one after it is not
      await sleepUntil((revokedAt + 2) * 1000);
      const within = await loginSign(await bobToken(revokedAt + 59, CLI_CLIENT_ID));
      assert.equal(within.status, 403, `a token dated 59 s after the revocation (within the skew): ${within.status} ${within.text().slice(0, 200)}`);
      assert.equal(within.json().error?.code, 'PRINCIPAL_REVOKED');
      const past = await delegate(await bobToken(revokedAt + 61, OTHER_CLIENT_ID));
      assert.equal(past.status, 200, `a token dated 61 s after the revocation: ${past.text().slice(0, 300)}`);

      // a real new sign-in, once past the margin: both routes give certificates again
      await sleepUntil((revokedAt + 62) * 1000);
      const again = await loginSign((await idp.signIn({ user: 'bob' })).id_token as string);
      assert.equal(again.status, 200, `a new sign-in after the revocation: ${again.text().slice(0, 300)}`);
      assert.equal(principalOf(again.body), BOB);
      const againDelegate = await delegate((await idp.signIn({ user: 'bob', clientId: OTHER_CLIENT_ID })).id_token as string);
      assert.equal(againDelegate.status, 200, `a new sign-in at the platform after the revocation: ${againDelegate.text().slice(0, 300)}`);
      assert.equal(principalOf(againDelegate.body), BOB);

      // the record is a lookup by principal, on the store and in a transaction
      assert.equal((await ca.store.principalRevocation(BOB))?.revokedAt, out.revokedAt);
      assert.equal(await ca.store.principalRevocation(`spiffe://${TD}/user/alice`), undefined);
    });
  });
}

backend('folder');
backend('postgres');

describe('ca export and ca import carry the revoked principals', { timeout: 120_000 }, () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(() => pg?.stop());

  test('folder -> PostgreSQL -> folder: each store still knows when bob and carol were revoked; a later revocation wins over an older imported one', async () => {
    const base = tmpDir('mcp-mtls-principal-transfer-');
    const t = makeCa(TD, path.join(base, 'pki'));
    const ca = Authority.open(t.dir);
    await writeCrls(ca);
    await ca.issueClient({ kind: 'user', id: 'bob', teams: [], roles: [] });
    await ca.issueClient({ kind: 'user', id: 'carol', teams: [], roles: [] });
    const bob = await revokePrincipal(ca, 'user/bob', 'affiliationChanged', 'test');
    const carol = await revokePrincipal(ca, 'user/carol', 'cessationOfOperation', 'test');
    const carolUri = `spiffe://${TD}/user/carol`;

    const url = await pg.newDatabase();
    await cliOk(['ca', 'migrate', '--store', url]);
    await cliOk(['ca', 'export', '--dir', t.dir, '--to', url, '--json']);
    const db = new PostgresStore(url);
    try {
      assert.deepEqual(await db.principalRevocation(BOB), { principal: BOB, revokedAt: bob.revokedAt, reason: 'affiliationChanged' }, 'ca export did not carry the revocation of bob');
      assert.deepEqual(await db.principalRevocation(carolUri), { principal: carolUri, revokedAt: carol.revokedAt, reason: 'cessationOfOperation' });
      // a later revocation recorded on the database, then an import of the older one: the later stays
      const later = new Date(Date.parse(bob.revokedAt) + 3600_000).toISOString();
      await db.transaction((tx) => tx.recordPrincipalRevocation({ principal: BOB, revokedAt: later, reason: 'keyCompromise' }));
      await cliOk(['ca', 'export', '--dir', t.dir, '--to', url, '--replace']);
      assert.equal((await db.principalRevocation(BOB))?.revokedAt, later, 'an import replaced a later revocation with an older one');

      const copy = bareCopy(t.dir, path.join(base, 'copy'));
      await cliOk(['ca', 'import', '--from', url, '--dir', copy, '--json']);
      const folder = new FsStore(copy);
      assert.deepEqual(await folder.principalRevocation(BOB), { principal: BOB, revokedAt: later, reason: 'keyCompromise' }, 'ca import did not carry the revocation of bob');
      assert.equal((await folder.principalRevocation(carolUri))?.revokedAt, carol.revokedAt);
      assert.equal(fs.statSync(path.join(copy, 'revoked-principals.json')).mode & 0o777, 0o600);
    } finally {
      await db.close();
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
