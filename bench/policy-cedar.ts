/**
 * bench/policy-cedar: the policy engine next to an anchor, Cedar (`@cedar-policy/cedar-wasm`,
 * the engine AWS uses for agent authorization), deciding the same requests on an equivalent
 * policy set in the same run, with 100, 1,000 and 10,000 rules. Every decision timed is also
 * checked for agreement: a benchmark of two engines that disagree measures nothing.
 *
 * The policy set: team or role subjects, exact tool names or a prefix glob, one rule in ten a
 * deny. In Cedar: `permit|forbid (principal in Team::"t3", action == Action::"call", resource)
 * when { resource.name like "tool3*" }` (or `resource == Tool::"tool3"`), users' teams and
 * roles as entity parents. Both engines deny by default and let a deny win.
 *
 * Cedar is used as it is meant to be used at speed: the policy set pre-parsed once
 * (`preparsePolicySet`), then `statefulIsAuthorized` per decision with the request's entities
 * built beforehand (not timed), so what is timed is the decision alone on both sides.
 * mcp-mtls is timed cold (every (identity, tool) decided for the first time, on a freshly
 * compiled policy) and warm (the same pairs again, as within a TLS session).
 *
 * `npm run bench:policy-cedar`; BENCH_CEDAR_N=300 is the smoke run the test suite does.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { compilePolicy, type PolicySubject, type PolicyTarget } from '../src/policy/compile.js';
import { PolicySchema, type RuleDocument } from '../src/policy/schema.js';

const N = Number(process.env.BENCH_CEDAR_N ?? 20_000);
const SIZES = (process.env.BENCH_CEDAR_RULES ?? '100,1000,10000').split(',').map(Number);
const TEAMS = 50;
const ROLES = 5;

// mulberry32: a seeded generator whose low bits are as random as its high ones (a plain LCG
// taken modulo 20 and 50 correlated teams with tools, so some (team, tool) pairs never occurred)
let seed = 7;
const rand = (n: number) => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return (((t ^ (t >>> 14)) >>> 0) % n);
};

interface Rule {
  id: string;
  deny: boolean;
  team?: string;
  role?: string;
  tool: string; // exact name, or a prefix ending in '*'
}

function makeRules(count: number, tools: number): Rule[] {
  return Array.from({ length: count }, (_, i): Rule => ({
    id: `r${i}`,
    deny: i % 10 === 9,
    ...(i % 7 === 0 ? { role: `role${i % ROLES}` } : { team: `team${i % TEAMS}` }),
    tool: i % 13 === 0 ? `tool${i % 20}*` : `tool${i % tools}`,
  }));
}

function asDocument(r: Rule): RuleDocument {
  return { id: r.id, effect: r.deny ? 'deny' : 'allow', subjects: r.team ? { teams: [r.team] } : { roles: [r.role as string] }, tools: [r.tool] };
}

function asCedar(r: Rule): string {
  const principal = r.team ? `principal in Team::"${r.team}"` : `principal in Role::"${r.role}"`;
  const resource = r.tool.endsWith('*') ? `resource) when { resource.name like "${r.tool}" }` : `resource == Tool::"${r.tool}")`;
  return `@id("${r.id}")\n${r.deny ? 'forbid' : 'permit'} (${principal}, action == Action::"call", ${resource};`;
}

interface Case {
  subject: PolicySubject;
  target: PolicyTarget;
  cedar: cedar.StatefulAuthorizationCall;
}

function makeCases(identities: number, tools: number, psetId: string): Case[] {
  const subjects: PolicySubject[] = Array.from({ length: identities }, (_, i) => ({
    principal: `spiffe://bench.test/user/u${i}`,
    trustDomain: 'bench.test',
    kind: 'user',
    id: `u${i}`,
    teams: [...new Set(Array.from({ length: 1 + rand(3) }, () => `team${rand(TEAMS)}`))],
    roles: [...new Set(Array.from({ length: rand(3) }, () => `role${rand(ROLES)}`))],
  }));
  const cases: Case[] = [];
  for (const subject of subjects) {
    for (let k = 0; k < 4; k++) {
      const name = `tool${rand(tools)}`;
      const user = { type: 'User', id: subject.id };
      const tool = { type: 'Tool', id: name };
      cases.push({
        subject,
        target: { kind: 'tool', name, args: {} },
        cedar: {
          principal: user,
          action: { type: 'Action', id: 'call' },
          resource: tool,
          context: {},
          preparsedPolicySetId: psetId,
          entities: [
            { uid: user, attrs: {}, parents: [...subject.teams.map((t) => ({ type: 'Team', id: t })), ...subject.roles.map((r) => ({ type: 'Role', id: r }))] },
            { uid: tool, attrs: { name }, parents: [] },
          ],
        },
      });
    }
  }
  // distinct (identity, tool) pairs only, so that the cold pass decides each pair for the first time
  const seen = new Set<string>();
  return cases.filter((c) => {
    const key = `${c.subject.id}\0${(c.target as { name: string }).name}`;
    return !seen.has(key) && (seen.add(key), true);
  });
}

interface Row {
  label: string;
  p50: number;
  p99: number;
}

function time(label: string, cases: Case[], decide: (c: Case) => boolean, expected: boolean[]): Row {
  const samples = new Float64Array(cases.length);
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i] as Case;
    const t0 = process.hrtime.bigint();
    const allowed = decide(c);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
    if (allowed !== expected[i]) throw new Error(`${label}: disagrees with Cedar on ${c.subject.id} -> ${(c.target as { name: string }).name} (Cedar ${expected[i]}, mcp-mtls ${allowed})`);
  }
  samples.sort();
  return { label, p50: samples[Math.floor(samples.length * 0.5)] as number, p99: samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.99))] as number };
}

// each size runs in a process of its own: one process going from 1,000 to 10,000 Cedar
// policies once died in V8's deoptimizer (Node 20, "unreachable code"), and a fresh process
// also keeps one size's heap and JIT state out of the next size's timings
if (!process.env.BENCH_CEDAR_CHILD) {
  console.log(`bench/policy-cedar: mcp-mtls next to Cedar ${cedar.getCedarVersion()} (cedar-wasm), same decisions checked on every timed case (node ${process.version})`);
  console.log(`${'rules'.padStart(6)}  ${'case'.padEnd(26)}  p50 µs    p99 µs    p99 Cedar / p99 this`);
  for (const size of SIZES) {
    const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      env: { ...process.env, BENCH_CEDAR_CHILD: '1', BENCH_CEDAR_RULES: String(size) },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    process.stdout.write(out);
  }
  process.exit(0);
}
for (const size of SIZES) {
  const tools = Math.max(20, Math.min(2000, size / 5));
  const rules = makeRules(size, tools);
  const psetId = `bench-${size}`;
  const parsed = cedar.preparsePolicySet(psetId, { staticPolicies: rules.map(asCedar).join('\n') });
  if (parsed.type !== 'success') throw new Error(`Cedar refused the policy set: ${JSON.stringify(parsed.errors).slice(0, 500)}`);
  // Cedar evaluates every policy of the set per request (its cost grows with the rules), so
  // the larger sets get fewer cases: 20,000 decisions of 10,000 rules, each decided twice (the
  // expected answers, then timed), ran over 400 s; 2,000 keep a p99 of 20 samples
  const cases = makeCases(Math.ceil(Math.min(N, 20_000_000 / size) / 4), tools, psetId);
  const cedarDecide = (c: Case) => {
    const answer = cedar.statefulIsAuthorized(c.cedar);
    if (answer.type !== 'success') throw new Error(`Cedar failed: ${JSON.stringify(answer.errors).slice(0, 300)}`);
    return answer.response.decision === 'allow';
  };
  // the expected answers come from Cedar, taken once before anything is timed
  const expected = cases.map(cedarDecide);
  const allowed = expected.filter(Boolean).length;
  const cedarRow = time('cedar-wasm', cases, cedarDecide, expected);
  const policy = compilePolicy(PolicySchema.parse({ version: 1, rules: rules.map(asDocument) }));
  const ours = (c: Case) => policy.decide(c.subject, c.target).allowed;
  const cold = time('mcp-mtls cold', cases, ours, expected);
  const warm = time('mcp-mtls warm', cases, ours, expected);
  for (const r of [cedarRow, cold, warm]) {
    const ratio = r === cedarRow ? '1.0x (baseline)' : `${(cedarRow.p99 / r.p99).toFixed(1)}x`;
    console.log(`${String(size).padStart(6)}  ${r.label.padEnd(26)}  ${r.p50.toFixed(2).padStart(8)}  ${r.p99.toFixed(2).padStart(8)}    ${ratio}`);
  }
  console.log(`${String(size).padStart(6)}  agreement: ${cases.length} decisions (${allowed} allowed), identical in both engines`);
}
