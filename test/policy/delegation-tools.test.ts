/**
 * Profile v1.2 in the policy (docs/delegation.md): a delegation limited to tool globs denies
 * every other tool first, as rule "(delegation-grant)", hidden (listed nowhere, answered as
 * unknown), whatever the delegator's rules allow; the globs never allow anything themselves.
 * Real certificates from the golden vectors (delegated-tools: read_* and {list,get}_issue), and
 * `policy explain --via --grant-tool` / `policy test` with `viaTools` through the CLI.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeIdentity } from '../../src/identity/decode.js';
import { DELEGATION_GRANT_RULE, policyFromText } from '../../src/policy/compile.js';
import { cli, cliOk, ROOT, tmpDir } from '../support/cli.js';

const POLICY = `
version: 1
trustDomains: [acme.test]
rules:
  - id: sre-all
    subjects: { teams: [sre] }
    tools: ["*"]
  - id: never-get
    effect: deny
    subjects: { any: true }
    tools: [get_issue]
`;
const cert = (name: string) => decodeIdentity(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'delegation', `${name}.der`)), { trustDomains: ['acme.test'] });

test('a delegation limited to read_* and {list,get}_issue: those tools as the rules decide, every other one denied by "(delegation-grant)" and hidden', () => {
  const p = policyFromText(POLICY);
  const id = cert('delegated-tools');
  assert.deepEqual(id.actingFor?.tools, ['read_*', '{list,get}_issue']);
  assert.equal(p.decide(id, { kind: 'tool', name: 'read_repo' }).allowed, true);
  assert.equal(p.decide(id, { kind: 'tool', name: 'list_issue' }).ruleId, 'sre-all');
  // within the globs, the policy still decides: never-get denies get_issue
  assert.equal(p.decide(id, { kind: 'tool', name: 'get_issue' }).ruleId, 'never-get');
  const d = p.decide(id, { kind: 'tool', name: 'delete_repo' });
  assert.deepEqual([d.allowed, d.ruleId, d.visible], [false, DELEGATION_GRANT_RULE, false]);
  assert.match(d.reason, /tool "delete_repo" is outside the delegation's tools \(read_\*, \{list,get\}_issue\) that spiffe:\/\/acme\.test\/user\/bob granted spiffe:\/\/acme\.test\/service\/chat-platform/);
  assert.deepEqual(p.filterTools(id, [{ name: 'read_repo' }, { name: 'delete_repo' }, { name: 'list_issue' }, { name: 'readme' }]).map((t) => t.name), ['read_repo', 'list_issue']);
  // resources and prompts are not tools: the limit does not touch them (bob's rules decide)
  assert.equal(p.decide(id, { kind: 'prompt', name: 'anything' }).ruleId, null);
  // the globs allow nothing by themselves: a delegator without a rule for read_x is denied
  const none = policyFromText('version: 1\ntrustDomains: [acme.test]\nrules: []\n');
  assert.equal(none.decide(id, { kind: 'tool', name: 'read_repo' }).allowed, false);
  // the same certificate without a limit (v1.1's delegated-no-claims has no teams: bob's sre is not there)
  assert.equal(p.decide(cert('delegated-bob-via-platform'), { kind: 'tool', name: 'delete_repo' }).ruleId, 'sre-all');
  const e = p.explain(id, { kind: 'tool', name: 'delete_repo' });
  assert.deepEqual(e.delegation?.tools, ['read_*', '{list,get}_issue']);
  assert.equal(e.decision.ruleId, DELEGATION_GRANT_RULE);
});

test('policy explain --via --grant-tool and policy test cases with viaTools show the limit', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'policy.yaml');
  fs.writeFileSync(file, POLICY);
  const text = await cliOk<string>(['policy', 'explain', file, '--user', 'bob', '--team', 'sre', '--via', 'service/chat-platform', '--grant-tool', 'read_*', '--tool', 'delete_repo']);
  assert.match(text, /^DENY by rule "\(delegation-grant\)": tool "delete_repo" is outside the delegation's tools \(read_\*\)/);
  assert.match(text, /the delegation limited to tools \[read_\*\]/);
  const json = await cliOk<{ decision: { ruleId: string }; delegation: { tools: string[] } }>(['policy', 'explain', file, '--user', 'bob', '--team', 'sre', '--via', 'service/chat-platform', '--grant-tool', 'read_*', '--tool', 'read_repo', '--json']);
  assert.deepEqual([json.decision.ruleId, json.delegation.tools], ['sre-all', ['read_*']]);
  const noVia = await cli(['policy', 'explain', file, '--user', 'bob', '--grant-tool', 'read_*', '--tool', 'read_repo']);
  assert.notEqual(noVia.code, 0);
  assert.match(noVia.stderr, /need an actor/);
  const cases = path.join(dir, 'cases.yaml');
  fs.writeFileSync(cases, `cases:
  - { identity: { user: bob, teams: [sre], via: service/chat-platform, viaTools: [read_*] }, tool: read_repo, expect: allow }
  - { identity: { user: bob, teams: [sre], via: service/chat-platform, viaTools: [read_*] }, tool: delete_repo, expect: hidden, rule: "(delegation-grant)" }
`);
  const r = await cli(['policy', 'test', file, cases]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /2 passed, 0 failed/);
  fs.rmSync(dir, { recursive: true, force: true });
});
