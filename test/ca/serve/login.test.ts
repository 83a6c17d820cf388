/**
 * Sign-in at `ca serve` (#22): GET /login, POST /login/sign with ID tokens from a real OpenID
 * provider (oidc-provider, test/support/oidc.ts) and forged ones (jose), GET /ca/root.crt.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import YAML from 'yaml';
import { Authority } from '../../../src/ca/authority.js';
import { decodeIdentity } from '../../../src/identity/decode.js';
import { createCsr } from '../../../src/x509/csr.js';
import { generateKey, privateKeyPem } from '../../../src/x509/keys.js';
import { pemEncode, readCertificates } from '../../../src/x509/pem.js';
import { makeCa, request, serverCreds, startServer, type TestCa } from '../../support/ca-serve.js';
import { tmpDir } from '../../support/cli.js';
import { connect, startFixture, type McpFixture } from '../../support/mcp.js';
import { CLI_CLIENT_ID, OIDC_USERS, OTHER_CLIENT_ID, startOidcProvider, type TestIdp } from '../../support/oidc.js';

const GROUPS = { sre: { teams: ['sre'], roles: ['oncall'] }, dev: { teams: ['dev'] } };

/** Writes `login:` into the CA's config.yaml and opens the CA again. */
function withLogin(t: TestCa, login: unknown): TestCa {
  const file = path.join(t.dir, 'config.yaml');
  const config = YAML.parse(fs.readFileSync(file, 'utf8'));
  config.login = login;
  fs.writeFileSync(file, YAML.stringify(config));
  return { ...t, ca: Authority.open(t.dir) };
}

const provider = (idp: TestIdp, over: Record<string, unknown> = {}) => ({ name: 'test-idp', issuer: idp.issuer, clientId: CLI_CLIENT_ID, principalClaim: 'preferred_username', groups: GROUPS, ...over });

function newCsr(): { pem: string; keyPem: string } {
  const key = generateKey('ec-p256');
  return { pem: pemEncode('CERTIFICATE REQUEST', createCsr(key, 'ignored')), keyPem: privateKeyPem(key.pkcs8) };
}

interface Ctx {
  idp: TestIdp;
  t: TestCa;
  port: number;
  audit: Record<string, unknown>[];
  close(): Promise<void>;
}

async function setup(opts: { login?: (idp: TestIdp) => unknown; idp?: TestIdp; cooldownMs?: number; base?: TestCa } = {}): Promise<Ctx> {
  const idp = opts.idp ?? (await startOidcProvider());
  const t = withLogin(opts.base ?? makeCa(), opts.login ? opts.login(idp) : { providers: [provider(idp)] });
  const { server, port, audit } = await startServer(t, { login: { cooldownMs: opts.cooldownMs ?? 0, timeoutMs: 2000 } });
  return {
    idp,
    t,
    port,
    audit,
    close: async () => {
      await server.shutdown(100);
      if (!opts.idp) await idp.stop();
    },
  };
}

function loginSign(c: Ctx, idToken: string | undefined, extra: { nonce?: string; csr?: string } = {}) {
  return request(c.port, c.t.rootPem, {
    method: 'POST',
    path: '/login/sign',
    headers: { 'content-type': 'application/pkcs10', ...(idToken !== undefined ? { authorization: `Bearer ${idToken}` } : {}), ...(extra.nonce !== undefined ? { 'mcp-mtls-nonce': extra.nonce } : {}) },
    body: extra.csr ?? newCsr().pem,
  });
}

/** the audit line is written when the answer's connection closes: a moment after the client has it */
async function until<T>(get: () => T | undefined): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = get();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out waiting for the audit line');
}

/** the refusal's code, or what came instead (a certificate: the check did not refuse) */
const codeOf = (r: { status: number; text(): string }): string | undefined => {
  try {
    return (JSON.parse(r.text()) as { error?: { code?: string } }).error?.code;
  } catch {
    return `${r.status} with no error (${r.text().slice(0, 27)}...)`;
  }
};

const refusal = (r: { status: number; text(): string }) => `${r.status} ${r.text().slice(0, 300)}`;

describe('ca serve: sign-in with an OpenID provider', { timeout: 120_000 }, () => {
  let c: Ctx;
  before(async () => {
    c = await setup();
  });
  after(() => c.close());

  test('GET /login names the providers; GET /ca/root.crt is the root whose SHA-256 clients pin', async () => {
    const r = await request(c.port, c.t.rootPem, { path: '/login' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { version: 1, trustDomain: 'acme.test', providers: [{ name: 'test-idp', issuer: c.idp.issuer, clientId: CLI_CLIENT_ID, scopes: ['openid', 'email', 'profile', 'groups'] }], sign: '/login/sign', renew: '/renew' });
    const root = await request(c.port, c.t.rootPem, { path: '/ca/root.crt' });
    assert.equal(root.status, 200);
    assert.equal(root.text(), c.t.rootPem);
    const chain = await request(c.port, c.t.rootPem, { path: '/ca/chain.pem' });
    assert.equal(readCertificates(chain.body).length, 2);
  });

  test('alice signs in (code + PKCE, nonce) and gets a certificate with her mapped teams and roles, audited with her IdP subject', async () => {
    const nonce = crypto.randomBytes(16).toString('base64url');
    const tokens = await c.idp.signIn({ user: 'alice', nonce });
    const r = await loginSign(c, tokens.id_token, { nonce });
    assert.equal(r.status, 200, r.text());
    const [leaf] = readCertificates(r.body);
    const id = decodeIdentity(leaf!);
    assert.equal(id.principal, 'spiffe://acme.test/user/alice');
    assert.deepEqual([...id.teams], ['dev', 'sre']);
    assert.deepEqual([...id.roles], ['oncall']);
    assert.equal(id.email, 'alice@example.com');
    const line = await until(() => c.audit.find((a) => a.event === 'ca.login-sign' && a.status === 200));
    assert.equal(line.provider, 'test-idp');
    assert.equal(line.idpSubject, 'alice');
    assert.ok(!JSON.stringify(c.audit).includes(tokens.id_token.split('.')[2]!), 'the token is never audited');
  });

  test('the certificate lives 12h by default', async () => {
    const r = await loginSign(c, (await c.idp.signIn({ user: 'bob' })).id_token);
    assert.equal(r.status, 200, r.text());
    const ms = Date.parse(new crypto.X509Certificate(readCertificates(r.body)[0]!).validTo) - Date.now();
    assert.ok(ms > 11.9 * 3600_000 && ms <= 12 * 3600_000 + 60_000, `${ms}`);
    assert.deepEqual([...decodeIdentity(readCertificates(r.body)[0]!).teams], ['dev']);
  });

  test('a replayed ID token is refused (OIDC_REPLAY), also with its signature re-encoded', async () => {
    const tokens = await c.idp.signIn({ user: 'bob' });
    assert.equal((await loginSign(c, tokens.id_token)).status, 200);
    const again = await loginSign(c, tokens.id_token);
    assert.equal(again.status, 401);
    assert.equal(codeOf(again), 'OIDC_REPLAY', refusal(again));
    // base64url's last character carries spare bits: another string, the same signature bytes
    const [h, p, s] = tokens.id_token.split('.') as [string, string, string];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(s.at(-1)!);
    const twin = `${h}.${p}.${s.slice(0, -1)}${alphabet[last ^ 1]}`;
    assert.deepEqual(Buffer.from(twin.split('.')[2]!, 'base64url'), Buffer.from(s, 'base64url'), 'same bytes');
    const r = await loginSign(c, twin);
    assert.equal(codeOf(r), 'OIDC_REPLAY', refusal(r));
  });

  test('nonce: required when the token carries one, and compared; a header with a token that carries none is refused', async () => {
    const tokens = await c.idp.signIn({ user: 'alice', nonce: 'n-1' });
    const none = await loginSign(c, tokens.id_token);
    assert.equal(codeOf(none), 'OIDC_NONCE', refusal(none));
    const wrong = await loginSign(c, tokens.id_token, { nonce: 'n-2' });
    assert.equal(codeOf(wrong), 'OIDC_NONCE', refusal(wrong));
    assert.equal((await loginSign(c, tokens.id_token, { nonce: 'n-1' })).status, 200, 'the refusals did not use the token up');
    // a header says the flow put a nonce in the token: one without (not that flow's ID token, e.g. an access token) is refused
    const noNonce = (await c.idp.signIn({ user: 'bob' })).id_token;
    const stray = await loginSign(c, noNonce, { nonce: 'n-3' });
    assert.equal(codeOf(stray), 'OIDC_NONCE', refusal(stray));
    // without the header (the device flow) it passes
    assert.equal((await loginSign(c, noNonce)).status, 200);
  });

  test('claims come from the token only: the CSR names nobody', async () => {
    const key = generateKey('ec-p256');
    const csr = pemEncode('CERTIFICATE REQUEST', createCsr(key, 'spiffe://acme.test/user/admin'));
    const r = await loginSign(c, (await c.idp.signIn({ user: 'bob' })).id_token, { csr });
    assert.equal(decodeIdentity(readCertificates(r.body)[0]!).principal, 'spiffe://acme.test/user/bob');
  });

  test('refused: a token for another audience, another issuer, expired, issued long ago, alg none, HS256 keyed with the public key, an unknown key', async () => {
    const cases: [string, () => Promise<string>, string][] = [
      ['another audience (a real token of the other client)', async () => (await c.idp.signIn({ user: 'alice', clientId: OTHER_CLIENT_ID })).id_token, 'OIDC_AUDIENCE'],
      ['several audiences, no azp', () => c.idp.mintIdToken({ aud: [CLI_CLIENT_ID, OTHER_CLIENT_ID] }), 'OIDC_AUDIENCE'],
      ['azp another client', () => c.idp.mintIdToken({ aud: [CLI_CLIENT_ID, OTHER_CLIENT_ID], azp: OTHER_CLIENT_ID }), 'OIDC_AUDIENCE'],
      ['another issuer', () => c.idp.mintIdToken({ iss: 'https://evil.example' }), 'OIDC_ISSUER'],
      ['the issuer with a trailing slash', () => c.idp.mintIdToken({ iss: `${c.idp.issuer}/` }), 'OIDC_ISSUER'],
      ['expired beyond the skew', () => c.idp.mintIdToken({ iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 61 }), 'OIDC_EXPIRED'],
      ['issued 20 minutes ago', () => c.idp.mintIdToken({ iat: Math.floor(Date.now() / 1000) - 1200, exp: Math.floor(Date.now() / 1000) + 600 }), 'OIDC_EXPIRED'],
      ['not valid before an hour from now', () => c.idp.mintIdToken({ nbf: Math.floor(Date.now() / 1000) + 3600 }), 'OIDC_TOKEN_INVALID'],
      ['no sub', () => c.idp.mintIdToken({ sub: null }), 'OIDC_TOKEN_INVALID'],
      ['an access token (typ at+jwt)', () => c.idp.mintIdToken({}, { header: { typ: 'at+jwt' } }), 'OIDC_TOKEN_INVALID'],
      ['alg none', async () => new UnsecuredJWT({ iss: c.idp.issuer, aud: CLI_CLIENT_ID, sub: 'alice', preferred_username: 'alice', groups: ['sre'], iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300 }).encode(), 'OIDC_TOKEN_INVALID'],
      [
        'HS256 with the public key as the secret',
        async () => {
          const k = c.idp.keys()[0]!;
          const secret = new TextEncoder().encode(JSON.stringify(k.publicJwk));
          return new SignJWT({ iss: c.idp.issuer, aud: CLI_CLIENT_ID, sub: 'alice', preferred_username: 'alice' }).setProtectedHeader({ alg: 'HS256', kid: k.kid }).setIssuedAt().setExpirationTime('5m').sign(secret);
        },
        'OIDC_TOKEN_INVALID',
      ],
      [
        'signed by a key the provider does not publish (its kid)',
        async () => {
          const { privateKey } = await generateKeyPair('RS256');
          return c.idp.mintIdToken({}, { key: { ...c.idp.keys()[0]!, privateKey } });
        },
        'OIDC_TOKEN_INVALID',
      ],
      [
        'signed by an unknown key with its own kid',
        async () => {
          const { privateKey, publicKey } = await generateKeyPair('ES256');
          return c.idp.mintIdToken({}, { key: { kid: 'attacker', alg: 'RS256', privateKey, publicJwk: await exportJWK(publicKey), privateJwk: {} }, alg: 'ES256' });
        },
        'OIDC_TOKEN_INVALID',
      ],
      ['not a JWT', async () => 'mcpt_0123456789abcdef_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'OIDC_TOKEN_INVALID'],
    ];
    for (const [name, make, code] of cases) {
      const r = await loginSign(c, await make());
      assert.equal(codeOf(r), code, `${name}: ${refusal(r)}`);
      assert.ok(r.status === 401, `${name}: ${r.status}`);
    }
    const missing = await loginSign(c, undefined);
    assert.equal(codeOf(missing), 'OIDC_TOKEN_REQUIRED');
    await until(() => c.audit.filter((a) => a.event === 'ca.login-sign' && a.status === 401).length > cases.length || undefined);
    const refused = c.audit.filter((a) => a.event === 'ca.login-sign' && a.status === 401);
    assert.ok(refused.length >= cases.length, 'every refusal is audited');
    assert.ok(refused.some((a) => a.provider === 'test-idp' && a.idpSubject === 'alice' && a.reason === 'OIDC_AUDIENCE'), JSON.stringify(refused.slice(0, 3)));
  });

  test('a principal claim that breaks the id rules is refused, not rewritten (OIDC_PRINCIPAL)', async () => {
    const r = await loginSign(c, (await c.idp.signIn({ user: 'eve' })).id_token);
    assert.equal(r.status, 403);
    assert.equal(codeOf(r), 'OIDC_PRINCIPAL', refusal(r));
    assert.match(r.json().error!.message, /"eve\/admin" is not a valid principal id/);
  });

  test('groups that map to nothing give a certificate with no teams or roles; no groups claim likewise', async () => {
    for (const user of ['carol', 'frank']) {
      const r = await loginSign(c, (await c.idp.signIn({ user })).id_token);
      assert.equal(r.status, 200, r.text());
      const id = decodeIdentity(readCertificates(r.body)[0]!);
      assert.equal(id.principal, `spiffe://acme.test/user/${user}`);
      assert.deepEqual([[...id.teams], [...id.roles]], [[], []]);
    }
  });
});

describe('ca serve: sign-in, provider keys and config', { timeout: 120_000 }, () => {
  test('the JWKS rotated: a token with the new key is accepted after one refetch; the keys are fetched once, not per sign-in', async () => {
    const c = await setup({ cooldownMs: 1000 });
    try {
      for (const user of ['alice', 'bob']) assert.equal((await loginSign(c, (await c.idp.signIn({ user })).id_token)).status, 200);
      assert.equal(c.idp.hits('/jwks'), 1, 'kept, not fetched per sign-in');
      await c.idp.rotateKeys();
      await new Promise((r) => setTimeout(r, 1100)); // past the refetch cooldown
      const r = await loginSign(c, (await c.idp.signIn({ user: 'alice' })).id_token);
      assert.equal(r.status, 200, refusal(r));
      assert.equal(c.idp.hits('/jwks'), 2);
      // made-up kids within the cooldown: refused without a fetch each
      const { privateKey } = await generateKeyPair('RS256');
      for (let i = 0; i < 5; i++) {
        const x = await loginSign(c, await c.idp.mintIdToken({}, { key: { ...c.idp.keys()[0]!, kid: `made-up-${i}`, privateKey } }));
        assert.equal(codeOf(x), 'OIDC_TOKEN_INVALID');
      }
      assert.ok(c.idp.hits('/jwks') <= 3, `${c.idp.hits('/jwks')} JWKS fetches`);
    } finally {
      await c.close();
    }
  });

  test('the provider down: 503 OIDC_PROVIDER_UNAVAILABLE with Retry-After, naming the provider', async () => {
    const idp = await startOidcProvider();
    const token = (await idp.signIn({ user: 'alice' })).id_token;
    const c = await setup({ idp });
    try {
      await idp.stop();
      const r = await loginSign(c, token);
      assert.equal(r.status, 503);
      assert.equal(codeOf(r), 'OIDC_PROVIDER_UNAVAILABLE');
      assert.match(r.json().error!.message, /identity provider test-idp \(http:\/\/127\.0\.0\.1:\d+\) cannot be reached for its keys: .*ECONNREFUSED/);
      assert.ok(r.headers['retry-after']);
    } finally {
      await c.close();
    }
  });

  test('an https issuer: its TLS is verified with caFile; without caFile (the system CAs) the provider is unavailable', async () => {
    const idpCa = makeCa('idp.test');
    const idp = await startOidcProvider({ tls: await serverCreds(idpCa.ca) });
    const trusted = await setup({ idp, login: (i) => ({ providers: [provider(i, { caFile: idpCa.rootFile })] }) });
    const untrusted = await setup({ idp });
    try {
      assert.match(idp.issuer, /^https:/);
      const ok = await loginSign(trusted, await idp.mintIdToken());
      assert.equal(ok.status, 200, refusal(ok));
      const r = await loginSign(untrusted, await idp.mintIdToken());
      assert.equal(codeOf(r), 'OIDC_PROVIDER_UNAVAILABLE', refusal(r));
      assert.match(r.json().error!.message, /cannot be reached for its keys: .*(certificate|SELF_SIGNED|UNABLE_TO)/i);
    } finally {
      await trusted.close();
      await untrusted.close();
      await idp.stop();
    }
  });

  test('requireMappedGroup: groups that map to nothing are refused (OIDC_NO_GROUPS); principalClaim sub; limits cap the lifetime', async () => {
    const base = makeCa();
    const file = path.join(base.dir, 'config.yaml');
    const cfg = YAML.parse(fs.readFileSync(file, 'utf8'));
    cfg.limits = { client: { maxTtl: '2h' } };
    fs.writeFileSync(file, YAML.stringify(cfg));
    const c = await setup({ base, login: (idp) => ({ providers: [provider(idp, { principalClaim: 'sub', requireMappedGroup: true })] }) });
    try {
      const carol = await loginSign(c, (await c.idp.signIn({ user: 'carol' })).id_token);
      assert.equal(codeOf(carol), 'OIDC_NO_GROUPS', refusal(carol));
      const eve = await loginSign(c, (await c.idp.signIn({ user: 'eve' })).id_token);
      assert.equal(eve.status, 200, refusal(eve)); // sub "eve" fits
      assert.equal(decodeIdentity(readCertificates(eve.body)[0]!).principal, 'spiffe://acme.test/user/eve');
      assert.equal(decodeIdentity(readCertificates(eve.body)[0]!).email, undefined, 'an unverified email is not put in');
      const ms = Date.parse(new crypto.X509Certificate(readCertificates(eve.body)[0]!).validTo) - Date.now();
      assert.ok(ms <= 2 * 3600_000 && ms > 1.9 * 3600_000, `${ms}: min(12h, limits 2h)`);
    } finally {
      await c.close();
    }
  });

  test('principalClaim: email with emailDomain: a verified address there is user/<local part>; an unverified one or one elsewhere is refused', async () => {
    const c = await setup({ login: (idp) => ({ providers: [provider(idp, { principalClaim: 'email', emailDomain: 'example.com' })] }) });
    try {
      const alice = await loginSign(c, (await c.idp.signIn({ user: 'alice' })).id_token);
      assert.equal(alice.status, 200, refusal(alice));
      const id = decodeIdentity(readCertificates(alice.body)[0]!);
      assert.equal(id.principal, 'spiffe://acme.test/user/alice');
      assert.equal(id.email, 'alice@example.com');
      const eve = await loginSign(c, (await c.idp.signIn({ user: 'eve' })).id_token); // email_verified: false
      assert.equal(codeOf(eve), 'OIDC_PRINCIPAL', refusal(eve));
      // the same person's address at a domain that merely ends like the configured one
      const elsewhere = await loginSign(c, await c.idp.mintIdToken({ sub: 'mallory', email: 'alice@example.com.evil.example', email_verified: true }));
      assert.equal(codeOf(elsewhere), 'OIDC_PRINCIPAL', refusal(elsewhere));
      assert.match(elsewhere.text(), /not at the domain example\.com/);
    } finally {
      await c.close();
    }
  });

  test('config.yaml login: bad fields are refused at load, naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ providers: [{ name: 'x', issuer: 'http://idp.example.com', clientId: 'c', principalClaim: 'email', emailDomain: 'example.com' }] }, /login\.providers\.0\.issuer: must be an https:\/\/ URL \(http:\/\/ only on a loopback address/],
      [{ providers: [{ name: 'x', issuer: 'https://idp.example.com', clientId: 'c', principalClaim: 'email' }] }, /login\.providers\.0\.emailDomain: is required with principalClaim: email/],
      [{ providers: [{ name: 'x', issuer: 'https://idp.example.com', clientId: 'c', principalClaim: 'name' }] }, /login\.providers\.0\.principalClaim/],
      [{ providers: [{ name: 'x', issuer: 'https://idp.example.com', clientId: 'c', principalClaim: 'sub', groups: { g: { teams: ['bad team'] } } }] }, /login\.providers\.0\.groups\.g\.teams\.0: must be a team or role name/],
      [{ providers: [{ name: 'x', issuer: 'https://idp.example.com', clientId: 'c', principalClaim: 'sub', scopes: ['email'] }] }, /scopes: must include openid/],
      [{ providers: [{ name: 'x', issuer: 'https://a.example', clientId: 'c', principalClaim: 'sub' }, { name: 'x', issuer: 'https://b.example', clientId: 'c', principalClaim: 'sub' }] }, /providers\.1\.name: name "x" is also providers\[0\]'s/],
      [{ providers: [{ name: 'x', issuer: 'https://idp.example.com', clientId: 'c', principalClaim: 'sub', clientSecret: 's' }] }, /login\.providers\.0: Unrecognized key: "clientSecret"/],
    ];
    for (const [login, re] of cases) {
      const t = makeCa('acme.test', tmpDir('login-cfg-'));
      assert.throws(() => withLogin(t, login), (e: Error) => re.test(e.message), `${JSON.stringify(login)}`);
    }
    // checks that need the file system or the limits: at `ca serve` start
    const t = makeCa('acme.test', tmpDir('login-cfg-'));
    const file = path.join(t.dir, 'config.yaml');
    const cfg = YAML.parse(fs.readFileSync(file, 'utf8'));
    cfg.limits = { client: { teams: ['sre'] } };
    fs.writeFileSync(file, YAML.stringify(cfg));
    const limited = withLogin(t, { providers: [{ name: 'x', issuer: 'https://idp.example.com', clientId: 'c', principalClaim: 'sub', groups: GROUPS }] });
    await assert.rejects(startServer(limited), /login\.providers\[0\]\.groups\.dev: maps to team "dev", which limits\.client\.teams does not allow/);
    const noCa = withLogin(t, { providers: [{ name: 'x', issuer: 'https://idp.example.com', clientId: 'c', principalClaim: 'sub', caFile: 'nope.pem' }] });
    await assert.rejects(startServer(noCa), /login\.providers\[0\]\.caFile: cannot read .*nope\.pem: ENOENT/);
  });

  test('without login: configured, /login says so (404 LOGIN_NOT_CONFIGURED) and /ca/root.crt still answers', async () => {
    const t = makeCa();
    const { server, port } = await startServer(t);
    try {
      const r = await request(port, t.rootPem, { path: '/login' });
      assert.equal(codeOf(r), 'LOGIN_NOT_CONFIGURED');
      assert.equal((await request(port, t.rootPem, { path: '/ca/root.crt' })).text(), t.rootPem);
    } finally {
      await server.shutdown(100);
    }
  });
});

describe('ca serve: a person signs in and calls an MCP server as themselves', { timeout: 120_000 }, () => {
  let f: McpFixture;
  let c: Ctx;
  before(async () => {
    f = await startFixture();
    const t: TestCa = { dir: f.pki.pki, ca: Authority.open(f.pki.pki), rootPem: fs.readFileSync(path.join(f.pki.pki, 'root.crt'), 'utf8'), chainFile: '', rootFile: path.join(f.pki.pki, 'root.crt'), intermediateFile: '' };
    c = await setup({ base: t });
  });
  after(async () => {
    await c.close();
    await f.close();
  });

  test('alice (IdP groups sre, dev) may deploy; bob (dev) may not, and may deploy to staging', async () => {
    const dir = tmpDir('login-mcp-');
    const signInAs = async (user: string) => {
      const csr = newCsr();
      const r = await loginSign(c, (await c.idp.signIn({ user })).id_token, { csr: csr.pem });
      assert.equal(r.status, 200, r.text());
      const files = { cert: path.join(dir, `${user}.crt`), key: path.join(dir, `${user}.key`), ca: c.t.rootFile };
      fs.writeFileSync(files.cert, r.body);
      fs.writeFileSync(files.key, csr.keyPem);
      return connect(f.url, files);
    };
    const alice = await signInAs('alice');
    try {
      const who = await alice.client.callTool({ name: 'whoami', arguments: {} });
      assert.match(JSON.stringify(who), /spiffe:\/\/acme\.test\/user\/alice/);
      const deployed = await alice.client.callTool({ name: 'deploy', arguments: { env: 'prod' } });
      assert.equal(deployed.isError, undefined, JSON.stringify(deployed));
      assert.match(JSON.stringify(deployed), /deployed to prod/);
    } finally {
      await alice.close();
    }
    const bob = await signInAs('bob');
    try {
      const denied = await bob.client.callTool({ name: 'deploy', arguments: { env: 'prod' } }).catch((e: Error) => ({ isError: true, content: [{ type: 'text', text: e.message }] }));
      assert.equal(denied.isError, true, JSON.stringify(denied));
      const staging = await bob.client.callTool({ name: 'deploy_staging', arguments: { env: 'staging' } });
      assert.match(JSON.stringify(staging), /deployed to staging/);
    } finally {
      await bob.close();
    }
  });
});
