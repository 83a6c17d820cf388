/** The policy semantics as tables: each row is one decision, with the rule that makes it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { policyFromText, type PolicySubject, type PolicyTarget } from '../../src/policy/compile.js';
import { authorizationFor } from '../../src/policy/mcp.js';

const who = (id: string, teams: string[] = [], roles: string[] = [], kind: 'user' | 'service' = 'user', td = 'acme.test'): PolicySubject => ({
  principal: `spiffe://${td}/${kind}/${id}`,
  trustDomain: td,
  kind,
  id,
  teams,
  roles,
});
const tool = (name: string, args: unknown = {}): PolicyTarget => ({ kind: 'tool', name, args });

const POLICY = `
version: 1
rules:
  - id: sre-and-admin
    subjects: { teams: [sre, ops], roles: [admin] }   # (sre OR ops) AND admin
    tools: [restart]
  - id: any-reads
    subjects: { any: true }
    tools: ["read_*"]
    resources: ["docs://**", "repo://{owner}/{name}"]
    prompts: [summarize]
  - id: deny-secrets
    effect: deny
    subjects: { any: true }
    tools: [read_secrets]
  - id: bots
    subjects: { services: ["ci-*"] }
    tools: [build]
  - id: named-users
    subjects: { users: [alice, bob] }
    tools: [chat]
  - id: by-principal
    subjects: { principals: ["spiffe://acme.test/user/*"] }
    tools: [profile]
  - id: staging
    subjects: { teams: [dev] }
    tools: [deploy]
    when: 'args.env == "staging"'
  - id: big-jobs-denied
    effect: deny
    subjects: { teams: [dev] }
    tools: [deploy]
    when: 'has(args.replicas) && args.replicas > 10'
  - id: team-arg
    subjects: { any: true }
    tools: [team_report]
    when: 'args.team in identity.teams'
  - id: office-hours
    subjects: { any: true }
    tools: [pager]
    when: 'now.getHours() >= 9 && now.getHours() < 17'
scopes:
  - subjects: { roles: [billing] }
    grant: [billing:read]
toolScopes:
  "invoice_*": [billing:read]
`;

const clock = { now: new Date('2026-11-23T10:00:00Z') };
// one more rule, appended to the rules list (before the scopes section)
const p = policyFromText(POLICY.replace('scopes:', `  - id: invoices\n    subjects: { any: true }\n    tools: ["invoice_*"]\nscopes:`), 'p.yaml', { clock: () => clock.now });

const rows: [string, PolicySubject, PolicyTarget, boolean, string | null, boolean?][] = [
  // [name, subject, target, allowed, ruleId, visible]
  ['AND across kinds: sre + admin', who('a', ['sre'], ['admin']), tool('restart'), true, 'sre-and-admin'],
  ['OR within a kind: ops + admin', who('a', ['ops'], ['admin']), tool('restart'), true, 'sre-and-admin'],
  ['AND fails without the role', who('a', ['sre']), tool('restart'), false, null, false],
  ['AND fails without the team', who('a', ['dev'], ['admin']), tool('restart'), false, null, false],
  ['glob target', who('z'), tool('read_wiki'), true, 'any-reads'],
  ['explicit deny wins over an allow', who('z'), tool('read_secrets'), false, 'deny-secrets', false],
  ['default deny', who('z'), tool('unknown_tool'), false, null, false],
  ['service glob', who('ci-runner', [], [], 'service'), tool('build'), true, 'bots'],
  ['a user is not a service', who('ci-runner'), tool('build'), false, null, false],
  ['users list', who('bob'), tool('chat'), true, 'named-users'],
  ['a service named like a user is not that user', who('bob', [], [], 'service'), tool('chat'), false, null, false],
  ['principal glob', who('carol'), tool('profile'), true, 'by-principal'],
  ['principal glob is per trust domain', who('carol', [], [], 'user', 'other.test'), tool('profile'), false, null, false],
  ['condition holds', who('d', ['dev']), tool('deploy', { env: 'staging' }), true, 'staging'],
  ['condition fails: visible, names the rule', who('d', ['dev']), tool('deploy', { env: 'prod' }), false, 'staging', true],
  ['condition errors (missing key): denied', who('d', ['dev']), tool('deploy', {}), false, 'staging', true],
  ['conditional deny fires', who('d', ['dev']), tool('deploy', { env: 'staging', replicas: 50 }), false, 'big-jobs-denied', true],
  ['conditional deny does not fire', who('d', ['dev']), tool('deploy', { env: 'staging', replicas: 3 }), true, 'staging'],
  ['args checked against identity', who('e', ['sre']), tool('team_report', { team: 'sre' }), true, 'team-arg'],
  ['args naming another team', who('e', ['sre']), tool('team_report', { team: 'finance' }), false, 'team-arg', true],
  ['now is the injected clock', who('f'), tool('pager'), true, 'office-hours'],
  ['scope held', who('g', [], ['billing']), tool('invoice_list'), true, 'invoices'],
  ['scope missing hides the tool', who('g'), tool('invoice_list'), false, null, false],
  ['resource glob', who('h'), { kind: 'resource', uri: 'docs://guide/intro.md' }, true, 'any-reads'],
  ['resource template variable matches one segment', who('h'), { kind: 'resource', uri: 'repo://acme/app' }, true, 'any-reads'],
  ['resource template variable does not cross /', who('h'), { kind: 'resource', uri: 'repo://acme/app/extra' }, false, null, false],
  ['prompt', who('h'), { kind: 'prompt', name: 'summarize' }, true, 'any-reads'],
  ['a tool name is not a prompt', who('h'), { kind: 'prompt', name: 'read_wiki' }, false, null, false],
];

for (const [name, subject, target, allowed, ruleId, visible] of rows) {
  test(`decide: ${name}`, () => {
    const d = p.decide(subject, target);
    assert.equal(d.allowed, allowed, d.reason);
    assert.equal(d.ruleId, ruleId, d.reason);
    assert.equal(d.visible, visible ?? true, d.reason);
    assert.ok(d.reason.length > 0);
  });
}

test('decide: the clock is read at decision time', () => {
  clock.now = new Date('2026-11-23T20:00:00Z');
  assert.equal(p.decide(who('f'), tool('pager')).allowed, false);
  clock.now = new Date('2026-11-23T10:00:00Z');
  assert.equal(p.decide(who('f'), tool('pager')).allowed, true);
});

test('decisions carry the granted scopes; cached decisions do not leak between identities', () => {
  const billing = who('g', [], ['billing']);
  const plain = who('g');
  assert.deepEqual(p.decide(billing, tool('read_x')).scopes, ['billing:read']);
  assert.deepEqual(p.decide(plain, tool('read_x')).scopes, []);
  for (let i = 0; i < 3; i++) {
    assert.equal(p.decide(billing, tool('invoice_list')).allowed, true);
    assert.equal(p.decide(plain, tool('invoice_list')).allowed, false);
  }
});

test('list filtering keeps exactly the visible targets (conditions are not evaluated for lists)', () => {
  const tools = ['restart', 'read_wiki', 'read_secrets', 'deploy', 'invoice_list', 'nope'].map((name) => ({ name, description: name }));
  assert.deepEqual(p.filterTools(who('d', ['dev']), tools).map((t) => t.name), ['read_wiki', 'deploy']);
  assert.deepEqual(p.filterTools(who('a', ['sre'], ['admin', 'billing']), tools).map((t) => t.name), ['restart', 'read_wiki', 'invoice_list']);
  assert.deepEqual(p.filterResources(who('h'), [{ uri: 'docs://a' }, { uri: 'file:///etc/passwd' }]).map((r) => r.uri), ['docs://a']);
  assert.deepEqual(p.filterResourceTemplates(who('h'), [{ uriTemplate: 'repo://{owner}/{name}' }, { uriTemplate: 'db://{table}' }]).map((r) => r.uriTemplate), ['repo://{owner}/{name}']);
  assert.deepEqual(p.filterPrompts(who('h'), [{ name: 'summarize' }, { name: 'other' }]).map((x) => x.name), ['summarize']);
});

test('a trust domain outside the policy\'s list is denied everything', () => {
  const scoped = policyFromText('version: 1\ntrustDomains: [acme.test]\nrules:\n  - id: all\n    subjects: { any: true }\n    tools: ["*"]\n');
  assert.equal(scoped.decide(who('x'), tool('t')).allowed, true);
  const foreign = scoped.decide(who('x', [], [], 'user', 'evil.test'), tool('t'));
  assert.equal(foreign.allowed, false);
  assert.match(foreign.reason, /trust domain "evil.test" is not accepted/);
});

test('over-large arguments make conditions fail closed', () => {
  const deep: Record<string, unknown> = {};
  let cur = deep;
  for (let i = 0; i < 40; i++) cur = cur.a = {} as Record<string, unknown>;
  const d1 = p.decide(who('d', ['dev']), tool('deploy', { env: 'staging', deep }));
  assert.equal(d1.allowed, false);
  assert.match(d1.reason, /nest deeper/);
  const d2 = p.decide(who('d', ['dev']), tool('deploy', { env: 'staging', list: Array.from({ length: 20_000 }, (_, i) => i) }));
  assert.equal(d2.allowed, false);
  assert.match(d2.reason, /more than 10000 values/);
});

test('MCP methods map to policy questions; unknown methods are closed', () => {
  assert.deepEqual(authorizationFor('tools/call', { name: 'x', arguments: { a: 1 } }), { kind: 'target', target: { kind: 'tool', name: 'x', args: { a: 1 } } });
  assert.deepEqual(authorizationFor('resources/read', { uri: 'docs://a' }), { kind: 'target', target: { kind: 'resource', uri: 'docs://a' } });
  assert.deepEqual(authorizationFor('prompts/get', { name: 'p' }), { kind: 'target', target: { kind: 'prompt', name: 'p', args: {} } });
  assert.deepEqual(authorizationFor('completion/complete', { ref: { type: 'ref/prompt', name: 'p' } }), { kind: 'target', target: { kind: 'prompt', name: 'p', args: {} } });
  for (const m of ['initialize', 'ping', 'notifications/initialized', 'notifications/cancelled']) assert.equal(authorizationFor(m, {}).kind, 'always');
  for (const m of ['tools/list', 'resources/list', 'resources/templates/list', 'prompts/list']) assert.equal(authorizationFor(m, {}).kind, 'list');
  assert.equal(authorizationFor('tools/call', {}).kind, 'unknown');
  assert.equal(authorizationFor('sampling/createMessage', {}).kind, 'unknown');
  assert.equal(authorizationFor('admin/shutdown', {}).kind, 'unknown');
});
