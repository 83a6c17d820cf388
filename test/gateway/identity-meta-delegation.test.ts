/**
 * The gateway's `_meta["mcp-mtls/identity"]` for a delegated certificate (docs/delegation.md):
 * the actor as principal, and actingFor (the delegator with the delegated teams and roles) and
 * the actor chain; a client-written value is still replaced. The real golden v1.1 vector.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { IDENTITY_META_KEY, withIdentity } from '../../src/gateway/identity-meta.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { ROOT } from '../support/cli.js';

const der = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'delegation', 'delegated-bob-via-platform.der'));

test('a delegated caller reaches the upstream as the platform acting for bob, a forged actingFor is dropped', () => {
  const forged = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', _meta: { [IDENTITY_META_KEY]: { principal: 'spiffe://acme.test/user/mallory', actingFor: { principal: 'spiffe://acme.test/user/admin' } } } } };
  const out = withIdentity(forged, decodeIdentity(der), ['repo:read']);
  assert.deepEqual(out.params?._meta, {
    [IDENTITY_META_KEY]: {
      principal: 'spiffe://acme.test/service/chat-platform',
      teams: [],
      roles: [],
      scopes: ['repo:read'],
      actingFor: { principal: 'spiffe://acme.test/user/bob', teams: ['sre'], roles: ['oncall'] },
      actors: ['spiffe://acme.test/service/chat-platform'],
    },
  });
  const actorOnly = withIdentity(forged, decodeIdentity(der, { delegation: false }), []);
  assert.equal((actorOnly.params?._meta as Record<string, { actingFor?: unknown }>)[IDENTITY_META_KEY]?.actingFor, undefined);
});

test('profile v1.2: a delegation limited to tools reaches the upstream with its globs (actingFor.tools)', () => {
  const limited = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'delegation', 'delegated-tools.der'));
  const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_repo' } };
  const out = withIdentity(call, decodeIdentity(limited), []);
  const meta = (out.params?._meta as Record<string, { actingFor?: { tools?: string[] } }>)[IDENTITY_META_KEY];
  assert.deepEqual(meta?.actingFor?.tools, ['read_*', '{list,get}_issue']);
});
