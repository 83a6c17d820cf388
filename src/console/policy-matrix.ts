/**
 * The policy page: known principals (the certificate inventory) x tools (those a policy names
 * without wildcards, plus config.yaml's `console.tools` or an operator's list), each cell the
 * decision for a call without arguments: `allow`, `deny` (visible, a condition refused it) or
 * `hidden` (answered as an unknown tool), with the deciding rule. The playground compiles a
 * changed policy text and reports which cells differ; nothing is written.
 */
import type { CertificateEntry } from '../ca/list.js';
import type { Policy } from '../policy/compile.js';
import type { PolicySubject } from '../policy/subjects.js';

export type CellOutcome = 'allow' | 'deny' | 'hidden';

export interface MatrixCell {
  readonly principal: string;
  readonly tool: string;
  readonly outcome: CellOutcome;
  readonly ruleId: string | null;
  readonly reason: string;
}

const WILDCARD = /[*?[\]{}]/;

/** The tool names the policy's rules name literally, plus `extra`, sorted, without duplicates. */
export function policyTools(policy: Policy, extra: readonly string[] = []): string[] {
  const names = new Set<string>(extra);
  for (const r of policy.source.rules) for (const t of r.tools ?? []) if (!WILDCARD.test(t)) names.add(t);
  return [...names].sort();
}

/** One subject per principal holding a client certificate (not a delegated one) that is valid now (its latest one's teams and roles). */
export function knownSubjects(entries: readonly CertificateEntry[], trustDomain: string): PolicySubject[] {
  const latest = new Map<string, CertificateEntry>();
  for (const e of entries) {
    // a delegated certificate's record holds the delegator's teams and roles under the actor's
    // principal: as a row it would show the actor with rights it only has acting for someone
    if (e.type !== 'client' || e.status !== 'valid' || !e.principal || !e.kind || e.actingFor) continue;
    const seen = latest.get(e.principal);
    if (!seen || seen.issuedAt <= e.issuedAt) latest.set(e.principal, e);
  }
  return [...latest.values()]
    .map((e) => ({ principal: e.principal as string, trustDomain, kind: e.kind as 'user' | 'service', id: e.id, teams: [...e.teams], roles: [...e.roles], ...(e.email ? { email: e.email } : {}) }))
    .sort((a, b) => a.principal.localeCompare(b.principal));
}

export function policyMatrix(policy: Policy, subjects: readonly PolicySubject[], tools: readonly string[]): MatrixCell[] {
  const cells: MatrixCell[] = [];
  for (const s of subjects) {
    for (const tool of tools) {
      const d = policy.decide(s, { kind: 'tool', name: tool, args: {} });
      cells.push({ principal: s.principal, tool, outcome: d.allowed ? 'allow' : d.visible ? 'deny' : 'hidden', ruleId: d.ruleId, reason: d.reason });
    }
  }
  return cells;
}

/** The cells of `after` with the outcome or rule `before` had, where they differ. */
export function matrixChanges(before: readonly MatrixCell[], after: readonly MatrixCell[]): (MatrixCell & { before: { outcome: CellOutcome; ruleId: string | null } })[] {
  const old = new Map(before.map((c) => [`${c.principal}\u0000${c.tool}`, c]));
  const out = [];
  for (const c of after) {
    const b = old.get(`${c.principal}\u0000${c.tool}`);
    if (!b || b.outcome !== c.outcome || b.ruleId !== c.ruleId) out.push({ ...c, before: { outcome: b?.outcome ?? 'hidden', ruleId: b?.ruleId ?? null } });
  }
  return out;
}
