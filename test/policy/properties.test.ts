/**
 * Properties of the policy semantics over random policies, identities and targets
 * (fast-check): a deny added or an allow removed never makes anything more allowed; a
 * hidden target is never allowed; and the compiled, cached engine agrees with a naive
 * reading of the rules written from docs/policy.md.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import YAML from 'yaml';
import { compilePolicy, type PolicySubject, type PolicyTarget } from '../../src/policy/compile.js';
import { PolicySchema, type PolicyDocument, type RuleDocument } from '../../src/policy/schema.js';

const TEAMS = ['sre', 'dev', 'ops'];
const ROLES = ['admin', 'viewer'];
const TOOLS = ['deploy', 'deploy_prod', 'read', 'read_all', 'drop'];
const IDS = ['alice', 'bob', 'ci'];

const subjectsArb = fc.oneof(
  fc.constant({ any: true as const }),
  fc.record(
    {
      teams: fc.subarray(TEAMS, { minLength: 1 }),
      roles: fc.subarray(ROLES, { minLength: 1 }),
      users: fc.subarray(IDS, { minLength: 1 }),
      services: fc.subarray(IDS, { minLength: 1 }),
    },
    { requiredKeys: [] },
  ).filter((s) => Object.keys(s).length > 0),
);
const toolsArb = fc.subarray([...TOOLS, 'deploy*', 'read_*', '*'], { minLength: 1 });
const whenArb = fc.option(fc.constantFrom('args.env == "staging"', '"admin" in identity.roles', 'args.n > 3'), { nil: undefined });

const ruleArb = (id: string) =>
  fc.record({ effect: fc.constantFrom<'allow' | 'deny'>('allow', 'allow', 'deny'), subjects: subjectsArb, tools: toolsArb, when: whenArb }).map(
    (r): RuleDocument => ({ id, effect: r.effect, subjects: r.subjects, tools: r.tools, ...(r.when ? { when: r.when } : {}) }),
  );
const rulesArb = fc.integer({ min: 0, max: 8 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => ruleArb(`r${i}`))));

const identityArb = fc.record({ kind: fc.constantFrom<'user' | 'service'>('user', 'service'), id: fc.constantFrom(...IDS), teams: fc.subarray(TEAMS), roles: fc.subarray(ROLES) }).map(
  (i): PolicySubject => ({ ...i, trustDomain: 'acme.test', principal: `spiffe://acme.test/${i.kind}/${i.id}` }),
);
const targetArb = fc.record({ name: fc.constantFrom(...TOOLS), env: fc.constantFrom('staging', 'prod'), n: fc.integer({ min: 0, max: 6 }) }).map(
  (t): PolicyTarget => ({ kind: 'tool', name: t.name, args: { env: t.env, n: t.n } }),
);

const doc = (rules: RuleDocument[]): PolicyDocument => PolicySchema.parse({ version: 1, rules });
const compile = (rules: RuleDocument[]) => compilePolicy(doc(rules));
const cases = fc.array(fc.tuple(identityArb, targetArb), { minLength: 1, maxLength: 12 });

test('adding a deny rule never makes anything more allowed', () => {
  fc.assert(
    fc.property(rulesArb, ruleArb('extra-deny'), cases, (rules, extra, checks) => {
      const before = compile(rules);
      const after = compile([...rules, { ...extra, effect: 'deny' }]);
      for (const [who, what] of checks) if (after.decide(who, what).allowed) assert.ok(before.decide(who, what).allowed);
    }),
    { numRuns: 300 },
  );
});

test('removing an allow rule never makes anything more allowed', () => {
  fc.assert(
    fc.property(rulesArb, fc.nat(), cases, (rules, pick, checks) => {
      const allows = rules.map((r, i) => [r, i] as const).filter(([r]) => r.effect === 'allow');
      fc.pre(allows.length > 0);
      const drop = allows[pick % allows.length]![1];
      const before = compile(rules);
      const after = compile(rules.filter((_, i) => i !== drop));
      for (const [who, what] of checks) if (after.decide(who, what).allowed) assert.ok(before.decide(who, what).allowed);
    }),
    { numRuns: 300 },
  );
});

/** docs/policy.md, read literally, with no caching and no indexes. */
function naive(rules: RuleDocument[], who: PolicySubject, what: PolicyTarget & { kind: 'tool' }): boolean {
  const args = what.args as { env: string; n: number };
  const glob = (p: string, v: string) => (p.endsWith('*') ? v.startsWith(p.slice(0, -1)) : p === v);
  const subjectMatches = (s: RuleDocument['subjects']) =>
    s.any === true ||
    ((!s.teams || s.teams.some((t) => who.teams.includes(t))) &&
      (!s.roles || s.roles.some((r) => who.roles.includes(r))) &&
      (!s.users || (who.kind === 'user' && s.users.includes(who.id))) &&
      (!s.services || (who.kind === 'service' && s.services.includes(who.id))));
  const holds = (when?: string) =>
    when === undefined || (when === 'args.env == "staging"' ? args.env === 'staging' : when === '"admin" in identity.roles' ? who.roles.includes('admin') : args.n > 3);
  const applicable = rules.filter((r) => subjectMatches(r.subjects) && (r.tools ?? []).some((p) => glob(p, what.name)) && holds(r.when));
  return !applicable.some((r) => r.effect === 'deny') && applicable.some((r) => r.effect === 'allow');
}

test('the compiled engine agrees with a naive reading of the rules; hidden implies denied', () => {
  fc.assert(
    fc.property(rulesArb, cases, (rules, checks) => {
      const p = compile(rules);
      for (const [who, what] of checks) {
        const d = p.decide(who, what);
        assert.equal(d.allowed, naive(rules, who, what as PolicyTarget & { kind: 'tool' }), `${YAML.stringify(rules)}\n${JSON.stringify(who)} ${JSON.stringify(what)}: ${d.reason}`);
        if (!d.visible) assert.equal(d.allowed, false);
        assert.equal(p.decide(who, what).allowed, d.allowed, 'the cached decision is the same');
      }
    }),
    { numRuns: 400 },
  );
});
