/**
 * A delegated certificate (bob via chat-platform, docs/delegation.md) behind the gateway's
 * upstreams: a stdio route's process, its {principal.id} and its credential, and an HTTP
 * route's credential header, are bob's, with the delegated teams and roles; never the
 * platform's, which would give everyone the platform serves one process and one credential.
 * Bob's own process and the platform-for-bob process stay apart. With the reader in v1 mode
 * (delegation: false) the caller is the platform alone. The real golden v1.1 vector.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { withIdentity } from '../../src/gateway/identity-meta.js';
import { stdioCallerOf } from '../../src/gateway/stdio-upstream.js';
import { UpstreamCredentials } from '../../src/gateway/upstream-credentials.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { ROOT } from '../support/cli.js';

const der = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'delegation', 'delegated-bob-via-platform.der'));
const call = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} };

test("a stdio route sees the person a delegated certificate acts for, via the platform; a v1 reader sees the platform", () => {
  const delegated = stdioCallerOf(withIdentity(call, decodeIdentity(der), []) as { params?: Record<string, unknown> });
  assert.deepEqual(delegated, {
    principal: 'spiffe://acme.test/user/bob',
    trustDomain: 'acme.test',
    kind: 'user',
    id: 'bob',
    teams: ['sre'],
    roles: ['oncall'],
    via: 'spiffe://acme.test/service/chat-platform',
  });
  const actorOnly = stdioCallerOf(withIdentity(call, decodeIdentity(der, { delegation: false }), []) as { params?: Record<string, unknown> });
  assert.equal(actorOnly?.principal, 'spiffe://acme.test/service/chat-platform');
  assert.equal(actorOnly?.via, undefined);
  // a malformed delegator is no caller at all, not the platform
  const bad = { params: { _meta: { 'mcp-mtls/identity': { principal: 'spiffe://acme.test/service/chat-platform', actingFor: { principal: 'spiffe://acme.test/user/../admin' } } } } };
  assert.equal(stdioCallerOf(bad), undefined);
});

test("an HTTP route's credential for a delegated caller is the person's, not the platform's", () => {
  const creds = new UpstreamCredentials(
    '/x',
    [
      { principals: ['spiffe://acme.test/service/chat-platform'], headers: { Authorization: { env: 'PLATFORM', format: 'Bearer {secret}' } } },
      { principals: ['bob'], headers: { Authorization: { env: 'BOB', format: 'Bearer {secret}' } } },
    ],
    true,
    () => undefined,
  );
  creds.load({ PLATFORM: 'platform-token', BOB: 'bob-token' });
  assert.deepEqual(creds.for(decodeIdentity(der)), { headers: { authorization: 'Bearer bob-token' } });
  assert.deepEqual(creds.for(decodeIdentity(der, { delegation: false })), { headers: { authorization: 'Bearer platform-token' } });
  const onlyPlatform = new UpstreamCredentials('/x', [{ principals: ['spiffe://acme.test/service/chat-platform'], headers: { Authorization: { env: 'PLATFORM' } } }], true, () => undefined);
  onlyPlatform.load({ PLATFORM: 'platform-token' });
  const refused = onlyPlatform.for(decodeIdentity(der));
  assert.ok('refused' in refused && /none for spiffe:\/\/acme\.test\/user\/bob \(via spiffe:\/\/acme\.test\/service\/chat-platform\)/.test(refused.refused), JSON.stringify(refused));
});
