/**
 * What an MCP request is decided on (authorizationFor, src/policy/mcp.ts): resource URIs in the
 * canonical form the server will act on, over-long names and URIs closed as unknown instead of
 * matched, and the methods that are always allowed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authorizationFor, MAX_NAME, MAX_URI } from '../../src/policy/mcp.js';
import { bob, POLICY } from '../support/public-reads.js';

test('resource URIs are decided on the form the server will act on', () => {
  // a URI without a canonical form (encoded dot segments among them) is refused before any decision
  const d = (uri: string) => {
    const a = authorizationFor('resources/read', { uri });
    return a.kind === 'target' && POLICY.decide(bob, a.target).allowed;
  };
  assert.equal(d('file:///srv/public/readme'), true);
  assert.equal(d('file:///srv/public/../secret'), false);
  assert.equal(d('file:///srv/public/%2e%2e/secret'), false);
  assert.equal(d('file:///srv/public/%2E%2E/%2e%2e/etc/passwd'), false);
  assert.equal(d('FILE:///srv/public/readme'), true, 'the scheme is case-insensitive, as the server parses it');
});

test('over-long names and URIs are closed as unknown instead of being matched', () => {
  assert.equal(authorizationFor('tools/call', { name: 'x'.repeat(MAX_NAME + 1) }).kind, 'unknown');
  assert.equal(authorizationFor('resources/read', { uri: `file:///${'a'.repeat(MAX_URI)}` }).kind, 'unknown');
  for (const m of ['server/discover', 'subscriptions/listen']) assert.equal(authorizationFor(m, {}).kind, 'always');
});
