/**
 * POST /delegate with an ID token as the delegator's proof (docs/delegation.md): a platform that
 * signed bob in at the real OpenID provider of the login tests (test/support/oidc.ts) exchanges
 * his ID token, whose audience must be the platform's own client id (config.yaml
 * delegation.actors[].clientId); a token for another audience, a replay, and alice's token never
 * yield bob. The ID tokens are verified by src/ca/oidc (#22).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../../src/ca/authority.js';
import { decodeIdentity } from '../../../src/identity/decode.js';
import { readCertificates } from '../../../src/x509/pem.js';
import { clientCreds, makeCa, request, startServer, type Creds, type TestCa } from '../../support/ca-serve.js';
import { CLI_CLIENT_ID, OTHER_CLIENT_ID, startOidcProvider, type TestIdp } from '../../support/oidc.js';

let idp: TestIdp;
let t: TestCa;
let port: number;
let audit: Record<string, unknown>[];
let stop: () => Promise<void>;
let platform: Creds;
let otherBot: Creds;

before(async () => {
  idp = await startOidcProvider();
  t = makeCa('acme.test');
  const file = path.join(t.dir, 'config.yaml');
  const config = YAML.parse(fs.readFileSync(file, 'utf8'));
  config.login = { providers: [{ name: 'test-idp', issuer: idp.issuer, clientId: CLI_CLIENT_ID, principalClaim: 'preferred_username', groups: { sre: { teams: ['sre'], roles: ['oncall'] }, dev: { teams: ['dev'] } } }] };
  config.delegation = {
    actors: [
      // the platform's users sign in at the provider through the platform's own client (other-app)
      { actor: 'service/chat-platform', for: { teams: ['sre', 'dev'] }, clientId: OTHER_CLIENT_ID },
      { actor: 'service/other-bot', for: { any: true } },
    ],
  };
  fs.writeFileSync(file, YAML.stringify(config));
  t = { ...t, ca: Authority.open(t.dir) };
  platform = await clientCreds(t.ca, { kind: 'service', id: 'chat-platform' });
  otherBot = await clientCreds(t.ca, { kind: 'service', id: 'other-bot' });
  const s = await startServer(t, { login: { cooldownMs: 0, timeoutMs: 2000 } });
  port = s.port;
  audit = s.audit;
  stop = async () => {
    await s.server.shutdown(100);
    await idp.stop();
    await t.ca.store.close();
  };
});
after(() => stop?.());

async function exchange(actor: Creds, body: unknown) {
  const n = audit.length;
  const r = await request(port, t.rootPem, { method: 'POST', path: '/delegate', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), creds: { cert: actor.cert, key: actor.key } });
  for (let i = 0; i < 200 && audit.length === n; i++) await new Promise((res) => setTimeout(res, 10));
  return { r, line: audit.findLast((a) => a.event === 'ca.delegate') };
}

test("the platform exchanges bob's ID token (its own audience): a certificate acting for bob with his provider groups' teams, ending with the token", async () => {
  const tokens = await idp.signIn({ user: 'bob', clientId: OTHER_CLIENT_ID });
  const { r, line } = await exchange(platform, { idToken: tokens.id_token });
  assert.equal(r.status, 200, r.body.toString());
  const id = decodeIdentity(readCertificates(r.body)[0]!);
  assert.deepEqual([id.principal, id.actingFor?.principal, id.actingFor?.teams], ['spiffe://acme.test/service/chat-platform', 'spiffe://acme.test/user/bob', ['dev']]);
  const exp = JSON.parse(Buffer.from(tokens.id_token.split('.')[1]!, 'base64url').toString()).exp as number;
  assert.ok(id.notAfter.getTime() <= exp * 1000, `${id.notAfter.toISOString()} after the token's exp`);
  assert.deepEqual([line?.actor, line?.delegator, line?.status], ['spiffe://acme.test/service/chat-platform', 'spiffe://acme.test/user/bob', 200]);
  // used once
  const again = await exchange(platform, { idToken: tokens.id_token });
  assert.deepEqual([again.r.status, JSON.parse(again.r.body.toString()).error.code], [401, 'OIDC_REPLAY']);
});

test('refusals: an ID token for another audience (the CLI client), an actor without a clientId, alice\'s token is alice', async () => {
  const cli = await idp.signIn({ user: 'bob', clientId: CLI_CLIENT_ID });
  const wrong = await exchange(platform, { idToken: cli.id_token });
  assert.equal(wrong.r.status, 401, wrong.r.body.toString());
  assert.equal(JSON.parse(wrong.r.body.toString()).error.code, 'OIDC_AUDIENCE');
  assert.equal(wrong.line?.actor, 'spiffe://acme.test/service/chat-platform');
  const bot = await exchange(otherBot, { idToken: (await idp.signIn({ user: 'bob', clientId: OTHER_CLIENT_ID })).id_token });
  assert.deepEqual([bot.r.status, JSON.parse(bot.r.body.toString()).error.code], [403, 'ID_TOKEN_NOT_ACCEPTED']);
  const alice = await exchange(platform, { idToken: (await idp.signIn({ user: 'alice', clientId: OTHER_CLIENT_ID })).id_token });
  assert.equal(alice.r.status, 200, alice.r.body.toString());
  assert.equal(decodeIdentity(readCertificates(alice.r.body)[0]!).actingFor?.principal, 'spiffe://acme.test/user/alice');
});

test('profile v1.2: the ID-token request\'s "tools" limit the delegated certificate to those globs', async () => {
  const { r, line } = await exchange(platform, { idToken: (await idp.signIn({ user: 'bob', clientId: OTHER_CLIENT_ID })).id_token, tools: ['read_*', 'list_issues'] });
  assert.equal(r.status, 200, r.body.toString());
  const id = decodeIdentity(readCertificates(r.body)[0]!);
  assert.deepEqual([id.actingFor?.principal, id.actingFor?.tools], ['spiffe://acme.test/user/bob', ['list_issues', 'read_*']]);
  assert.deepEqual(line?.tools, ['list_issues', 'read_*']);
});
