/**
 * Delegated calls (docs/delegation.md): the rules decide on the delegator, the actor's deny
 * rules restrict, its allows never count; a certificate read without delegation support is the
 * actor alone. Real certificates from the golden vectors and subjects as decodeIdentity builds them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeIdentity } from '../../src/identity/decode.js';
import { policyFromText } from '../../src/policy/compile.js';
import { ROOT } from '../support/cli.js';

const POLICY = `
version: 1
trustDomains: [acme.test]
rules:
  - id: sre-repos
    subjects: { teams: [sre] }
    tools: ["*_repo", read_*]
  - id: platform-own
    subjects: { services: [chat-platform] }
    tools: ["*"]
  - id: agents-never-delete
    effect: deny
    subjects: { delegated: true }
    tools: [delete_*]
  - id: platform-no-admin
    effect: deny
    subjects: { services: [chat-platform] }
    tools: [admin_*]
  - id: chat-only-for-sre
    effect: deny
    subjects: { actors: [service/chat-platform] }
    tools: ["*"]
    when: "!('sre' in identity.teams)"
  - id: actor-named-in-cel
    effect: deny
    subjects: { any: true }
    tools: [read_audit]
    when: "identity.actor != ''"
`;
const policy = policyFromText(POLICY);
const der = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'delegation', 'delegated-bob-via-platform.der'));
const viaPlatform = decodeIdentity(der, { trustDomains: ['acme.test'] });
const bob = { principal: 'spiffe://acme.test/user/bob', trustDomain: 'acme.test', kind: 'user' as const, id: 'bob', teams: ['sre'], roles: [] };
const tool = (name: string) => ({ kind: 'tool' as const, name });

test("bob himself may delete_repo; bob via chat-platform may not (agents-never-delete restricts delegated calls)", () => {
  assert.equal(policy.decide(bob, tool('delete_repo')).allowed, true);
  const d = policy.decide(viaPlatform, tool('delete_repo'));
  assert.deepEqual([d.allowed, d.ruleId], [false, 'agents-never-delete']);
});

test("a delegated call is allowed by the delegator's rules (bob's team sre), not the actor's own allows", () => {
  const d = policy.decide(viaPlatform, tool('read_file'));
  assert.deepEqual([d.allowed, d.ruleId], [true, 'sre-repos']);
  // platform-own allows chat-platform everything, but not when it acts for someone
  const other = policy.decide(viaPlatform, tool('send_mail'));
  assert.equal(other.allowed, false);
  assert.match(other.reason, /no rule allows tool "send_mail" for spiffe:\/\/acme.test\/user\/bob \(acting through spiffe:\/\/acme.test\/service\/chat-platform\)/);
  assert.equal(policy.visible(viaPlatform, tool('send_mail')), false);
});

test("a deny rule about the actor itself applies to its delegated calls too", () => {
  const d = policy.decide(viaPlatform, tool('admin_repo'));
  assert.deepEqual([d.allowed, d.ruleId], [false, 'platform-no-admin']);
  assert.match(d.reason, /restricts the actor spiffe:\/\/acme.test\/service\/chat-platform/);
});

test('"chat-platform may act only for team sre": a delegation without sre is denied; CEL sees identity.actor', () => {
  const noSre = { ...viaPlatform, actingFor: { ...viaPlatform.actingFor!, teams: ['dev'] } };
  const d = policy.decide(noSre, tool('read_file'));
  assert.equal(d.allowed, false);
  assert.equal(policy.decide(viaPlatform, tool("read_audit")).ruleId, 'actor-named-in-cel');
});

test('a reader without delegation support: the actor alone, its own rules (no delegated team, no actingFor)', () => {
  const actorOnly = decodeIdentity(der, { trustDomains: ['acme.test'], delegation: false });
  assert.equal(actorOnly.actingFor, undefined);
  const d = policy.decide(actorOnly, tool('send_mail'));
  assert.deepEqual([d.allowed, d.ruleId], [true, 'platform-own']);
  assert.equal(policy.decide(actorOnly, tool('delete_repo')).allowed, true); // its own access, never more: bob's sre is not there
  assert.equal(policy.scopesOf(actorOnly).length, 0);
});

test('explain shows both sides', () => {
  const e = policy.explain(viaPlatform, tool('delete_repo'));
  assert.equal(e.delegation?.delegator, 'spiffe://acme.test/user/bob');
  assert.equal(e.delegation?.actor, 'spiffe://acme.test/service/chat-platform');
  assert.deepEqual(e.rules.filter((r) => r.applies).map((r) => r.id), ['sre-repos', 'agents-never-delete', 'chat-only-for-sre']);
  const own = e.delegation?.actorRules.find((r) => r.id === 'platform-own');
  assert.equal(own?.applies, false);
  assert.match(own?.why ?? '', /own allows do not count/);
});
