/**
 * The actor's side of a delegated call (#23 review): a deny rule that names the actor as itself
 * must see that the call is delegated. `{ services: [chat-platform], delegated: true }` ("the
 * platform, when it acts for someone, never deletes") and `identity.actor != ''` in a condition
 * on the platform's own rule were never true on the actor's side (it had no actor), so bob via
 * the platform called delete_repo; `{ services: [chat-platform], delegated: false }` ("only its
 * own calls") and `identity.actor == ''` denied its delegated calls too. Rules about delegated
 * calls only (`delegated` / `actors` and nothing else) stay the delegator's side's: their
 * conditions speak of the delegator. The real golden v1.1 vector (bob via chat-platform, team sre).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeIdentity } from '../../src/identity/decode.js';
import { policyFromText } from '../../src/policy/compile.js';
import { ROOT } from '../support/cli.js';

const der = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'delegation', 'delegated-bob-via-platform.der'));
const POLICY = `
version: 1
rules:
  - id: sre
    subjects: { teams: [sre] }
    tools: ["*"]
  - id: platform-own
    subjects: { services: [chat-platform] }
    tools: ["*"]
  - id: platform-delegated-never-deletes
    effect: deny
    subjects: { services: [chat-platform], delegated: true }
    tools: [delete_*]
  - id: platform-delegated-cel
    effect: deny
    subjects: { services: [chat-platform] }
    tools: [drop_*]
    when: "identity.actor != ''"
  - id: platform-direct-only
    effect: deny
    subjects: { services: [chat-platform], delegated: false }
    tools: [direct_*]
  - id: direct-calls-cel
    effect: deny
    subjects: { any: true }
    tools: [direct2_*]
    when: "identity.actor == ''"
  - id: delegated-only-for-sre
    effect: deny
    subjects: { delegated: true }
    tools: [sre_*]
    when: "!('sre' in identity.teams)"
`;

const policy = policyFromText(POLICY);
const decide = (id: ReturnType<typeof decodeIdentity>, tool: string) => {
  const d = policy.decide(id, { kind: 'tool', name: tool, args: {} });
  return `${d.allowed ? 'allow' : 'deny'} ${d.ruleId}`;
};

test("a deny rule naming the actor sees that its call is delegated: the platform's restrictions for its delegated calls hold, its own-calls-only rules leave them alone", () => {
  const delegated = decodeIdentity(der);
  assert.equal(decide(delegated, 'delete_repo'), 'deny platform-delegated-never-deletes');
  assert.equal(decide(delegated, 'drop_db'), 'deny platform-delegated-cel');
  assert.equal(decide(delegated, 'direct_x'), 'allow sre');
  assert.equal(decide(delegated, 'direct2_x'), 'allow sre');
  // a rule about delegated calls only is decided on bob's side (he is in sre): not on the platform's, which has no teams
  assert.equal(decide(delegated, 'sre_tool'), 'allow sre');
  assert.equal(policy.visible(delegated, { kind: 'tool', name: 'delete_repo' }), false);
  assert.equal(policy.visible(delegated, { kind: 'tool', name: 'direct_x' }), true);
});

test('the same certificate read without delegation support is the platform calling for itself', () => {
  const actorOnly = decodeIdentity(der, { delegation: false });
  assert.equal(decide(actorOnly, 'delete_repo'), 'allow platform-own');
  assert.equal(decide(actorOnly, 'drop_db'), 'allow platform-own');
  assert.equal(decide(actorOnly, 'direct_x'), 'deny platform-direct-only');
  assert.equal(decide(actorOnly, 'direct2_x'), 'deny direct-calls-cel');
});

test('policy explain shows the actor-side rule that decided, and why a delegated-only rule is not the actor\'s', () => {
  const e = policy.explain(decodeIdentity(der), { kind: 'tool', name: 'delete_repo', args: {} });
  const actorRule = e.delegation?.actorRules.find((r) => r.id === 'platform-delegated-never-deletes');
  assert.equal(actorRule?.applies, true, JSON.stringify(actorRule));
  const onlyDelegated = policy.explain(decodeIdentity(der), { kind: 'tool', name: 'sre_tool', args: {} }).delegation?.actorRules.find((r) => r.id === 'delegated-only-for-sre');
  assert.equal(onlyDelegated?.applies, false);
  assert.match(onlyDelegated?.why ?? '', /delegator's side/);
});
