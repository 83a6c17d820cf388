/**
 * bench/policy: 1,000 rules, 200 tools, 50 teams. Decision latency (p50, p99 in µs) and
 * decisions per second, without and with CEL conditions, cold (first decision of an
 * identity for a tool) and warm (the same identity again, as in a TLS session), next to a
 * naive engine measured in the same run (every rule's globs and subjects tested per
 * decision, which is what a straightforward implementation does).
 * `npm run bench:policy`; BENCH_POLICY_N=2000 is the smoke run the test suite does.
 */
import { compilePolicy, type PolicySubject, type PolicyTarget } from '../src/policy/compile.js';
import { compilePatterns } from '../src/policy/glob.js';
import { compileSubjects } from '../src/policy/subjects.js';
import { PolicySchema, type RuleDocument } from '../src/policy/schema.js';

const N = Number(process.env.BENCH_POLICY_N ?? 200_000);
let seed = 42;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};

function rules(withWhen: boolean): RuleDocument[] {
  return Array.from({ length: 1000 }, (_, i): RuleDocument => ({
    id: `r${i}`,
    effect: i % 10 === 9 ? 'deny' : 'allow',
    subjects: i % 7 === 0 ? { roles: [`role${i % 5}`] } : { teams: [`team${i % 50}`] },
    tools: i % 13 === 0 ? [`tool${i % 20}*`] : [`tool${i % 200}`],
    ...(withWhen && i % 5 === 0 ? { when: 'args.env == "staging" || "role1" in identity.roles' } : {}),
  }));
}

const identities: PolicySubject[] = Array.from({ length: 300 }, (_, i) => ({
  principal: `spiffe://bench.test/user/u${i}`,
  trustDomain: 'bench.test',
  kind: 'user',
  id: `u${i}`,
  teams: Array.from({ length: 1 + rand(3) }, () => `team${rand(50)}`),
  roles: Array.from({ length: rand(3) }, () => `role${rand(5)}`),
}));
const targets: PolicyTarget[] = Array.from({ length: 200 }, (_, i) => ({ kind: 'tool', name: `tool${i}`, args: { env: i % 2 ? 'staging' : 'prod' } }));

/** The baseline: a literal reading of the semantics, no index, no cache. */
function naiveEngine(docs: RuleDocument[]) {
  const compiled = docs.map((r) => ({ r, subjects: compileSubjects(r.subjects), tools: compilePatterns(r.tools ?? []) }));
  return (s: PolicySubject, t: PolicyTarget & { kind: 'tool' }) => {
    let allow = false;
    for (const c of compiled) {
      if (!c.tools(t.name) || !c.subjects.matches(s)) continue;
      if (c.r.effect === 'deny') return false;
      allow = true;
    }
    return allow;
  };
}

function measure(label: string, decide: (s: PolicySubject, t: PolicyTarget) => unknown, n: number) {
  const samples = new Float64Array(n);
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const s = identities[rand(identities.length)] as PolicySubject;
    const t = targets[rand(targets.length)] as PolicyTarget;
    const t0 = process.hrtime.bigint();
    decide(s, t);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const total = Number(process.hrtime.bigint() - started) / 1e9;
  samples.sort();
  return { label, p50: samples[Math.floor(n * 0.5)] as number, p99: samples[Math.floor(n * 0.99)] as number, perSec: n / total };
}

const plain = compilePolicy(PolicySchema.parse({ version: 1, rules: rules(false) }));
const cel = compilePolicy(PolicySchema.parse({ version: 1, rules: rules(true) }));
const naive = naiveEngine(rules(false));

// cold: every (identity, tool) decided once, in random order, on fresh policies
const coldPolicy = compilePolicy(PolicySchema.parse({ version: 1, rules: rules(false) }));
const rows = [
  measure('naive baseline (no when)', (s, t) => naive(s, t as PolicyTarget & { kind: 'tool' }), Math.min(N, 20_000)),
  measure('mcp-mtls cold (no when)', (s, t) => coldPolicy.decide(s, t), Math.min(N, 20_000)),
];
for (let i = 0; i < 3000; i++) plain.decide(identities[i % identities.length] as PolicySubject, targets[i % targets.length] as PolicyTarget); // warm the JIT
rows.push(measure('mcp-mtls warm (no when)', (s, t) => plain.decide(s, t), N));
rows.push(measure('mcp-mtls warm (20% of rules with CEL)', (s, t) => cel.decide(s, t), N));

const base = rows[0]!;
console.log(`bench/policy: 1000 rules, 200 tools, 50 teams, ${identities.length} identities (node ${process.version})`);
console.log(`${'case'.padEnd(40)}  p50 µs   p99 µs   decisions/s   x baseline`);
for (const r of rows) console.log(`${r.label.padEnd(40)}  ${r.p50.toFixed(2).padStart(6)}   ${r.p99.toFixed(2).padStart(6)}   ${r.perSec.toFixed(0).padStart(11)}   ${(r.perSec / base.perSec).toFixed(1)}x`);
