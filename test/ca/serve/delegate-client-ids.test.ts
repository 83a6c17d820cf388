/**
 * config.yaml: an ID token exchanged at POST /delegate must be one only that actor could have
 * received (#23 review). An actor whose clientId /login/sign also accepts (a provider's clientId or
 * audiences), or two actors with one clientId, are refused when the CA opens: with such a config
 * the platform could trade a person's ID token at /login/sign for the person's own certificate
 * (no actor, no actor rules, renewable), or one platform could exchange another's tokens.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../../src/ca/authority.js';
import { isMtlsError } from '../../../src/errors.js';
import { makeCa } from '../../support/ca-serve.js';

function openWith(login: unknown, actors: unknown[]): unknown {
  const t = makeCa('acme.test');
  const file = path.join(t.dir, 'config.yaml');
  const config = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  Object.assign(config, { login, delegation: { actors } });
  fs.writeFileSync(file, YAML.stringify(config));
  void t.ca.store.close();
  try {
    const ca = Authority.open(t.dir);
    void ca.store.close();
    return undefined;
  } catch (e) {
    return e;
  }
}

const provider = (o: Record<string, unknown> = {}) => ({ name: 'idp', issuer: 'https://idp.acme.test', clientId: 'mcp-mtls-cli', principalClaim: 'preferred_username', ...o });
const actor = (id: string, clientId?: string) => ({ actor: `service/${id}`, for: { any: true }, ...(clientId ? { clientId } : {}) });

test("an actor's clientId that /login/sign accepts (the provider's clientId or one of its audiences) is refused", () => {
  for (const [name, login] of [
    ['clientId', { providers: [provider()] }],
    ['audiences', { providers: [provider({ audiences: ['mcp-mtls-cli', 'chat-platform-x'] })] }],
  ] as const) {
    const clientId = name === 'clientId' ? 'mcp-mtls-cli' : 'chat-platform-x';
    const e = openWith(login, [actor('chat-platform', clientId)]);
    assert.ok(isMtlsError(e, 'CA_CONFIG_INVALID'), `${name}: ${String(e)}`);
    assert.match((e as Error).message, /delegation\.actors\.0\.clientId/, name);
    assert.match((e as Error).message, /login\.providers\[0\]/, name);
  }
});

test('two actors with one clientId are refused; distinct ones, and actors without one, are fine', () => {
  const e = openWith({ providers: [provider()] }, [actor('a', 'platform'), actor('b', 'platform')]);
  assert.ok(isMtlsError(e, 'CA_CONFIG_INVALID'), String(e));
  assert.match((e as Error).message, /delegation\.actors\.1\.clientId/);
  assert.equal(openWith({ providers: [provider()] }, [actor('a', 'platform-a'), actor('b', 'platform-b'), actor('c'), actor('d')]), undefined);
});

test('an actor named twice in delegation.actors is refused: only the first entry would ever be read, whatever the second says', () => {
  const e = openWith(undefined, [actor('chat-platform'), { ...actor('chat-platform'), for: { users: ['bob'] } }]);
  assert.ok(isMtlsError(e, 'CA_CONFIG_INVALID'), String(e));
  assert.match((e as Error).message, /delegation\.actors\.1\.actor/);
});
