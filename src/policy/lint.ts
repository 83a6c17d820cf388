/** Warnings for policy authors: see {@link lintPolicy}. */
import { isValidPrincipalId, isValidTeamOrRole } from '../identity/names.js';
import { compilePattern, isPattern } from './glob.js';
import type { PolicyDocument, RuleDocument, SubjectsDocument } from './schema.js';

/** One warning of {@link lintPolicy}. */
export interface PolicyWarning {
  /** The rule the warning is about; null for a warning about `toolScopes`. */
  readonly ruleId: string | null;
  readonly message: string;
}

type Kind = 'tools' | 'resources' | 'prompts';
const KINDS: Kind[] = ['tools', 'resources', 'prompts'];
const SUBJECT_KINDS = ['users', 'services', 'teams', 'roles', 'principals', 'actors'] as const;

/** Every value of `inner` is matched by some pattern of `outer`. */
function covered(inner: readonly string[], outer: readonly string[]): boolean {
  const matchers = outer.map(compilePattern);
  return inner.every((v) => outer.includes(v) || (!isPattern(v) && matchers.some((m) => m(v))));
}

/** Everyone the allow subjects match is matched by the deny subjects. */
function subjectsCovered(allow: SubjectsDocument, deny: SubjectsDocument): boolean {
  if (deny.any) return true;
  if (allow.any) return false;
  // `delegated: true` is implied by `actors` (only a delegated call has an actor)
  if (deny.delegated !== undefined && deny.delegated !== (allow.delegated ?? (allow.actors ? true : undefined))) return false;
  // every kind the deny rule requires must be required by the allow rule too, with values inside the deny's
  return SUBJECT_KINDS.every((k) => deny[k] === undefined || (allow[k] !== undefined && covered(allow[k] as string[], deny[k] as string[])));
}

function neverMatches(r: RuleDocument): string | undefined {
  const s = r.subjects;
  if (s.users && s.services) return 'its subjects require both a user and a service: no principal is both';
  for (const [kind, valid] of [['teams', isValidTeamOrRole], ['roles', isValidTeamOrRole], ['users', isValidPrincipalId], ['services', isValidPrincipalId]] as const) {
    const values = s[kind];
    if (values && values.every((v) => !isPattern(v) && !valid(v))) return `no certificate can carry any of its ${kind} (${values.join(', ')}): invalid names`;
  }
  if (s.principals && s.principals.every((p) => !isPattern(p) && !p.startsWith('spiffe://'))) return 'its principals are not spiffe:// URIs';
  if (r.when !== undefined && /^\s*false\s*$/.test(r.when)) return 'its condition is always false';
  return undefined;
}

/**
 * Warnings for policy authors (what `mcp-mtls policy check` prints): rules that can never
 * allow anything, because an unconditional deny covers them or because no certificate can
 * match their subjects; tools whose scopes nobody is granted. Conservative: a warning is only
 * given when it is certainly true, so an empty list does not mean the policy is right.
 * The loaders do not lint: call this yourself (on {@link Policy.source}, for instance).
 *
 * @param doc - a validated document (from {@link parsePolicyText})
 */
export function lintPolicy(doc: PolicyDocument): PolicyWarning[] {
  const warnings: PolicyWarning[] = [];
  const denies = doc.rules.filter((r) => r.effect === 'deny' && r.when === undefined);
  for (const r of doc.rules) {
    const never = neverMatches(r);
    if (never) {
      warnings.push({ ruleId: r.id, message: `rule "${r.id}" can never match: ${never}` });
      continue;
    }
    if (r.effect !== 'allow') continue;
    const shadow = denies.find((d) => (d.upstreams === undefined || (r.upstreams !== undefined && covered(r.upstreams, d.upstreams))) && subjectsCovered(r.subjects, d.subjects) && KINDS.every((k) => r[k] === undefined || (d[k] !== undefined && covered(r[k] as string[], d[k] as string[]))));
    if (shadow) warnings.push({ ruleId: r.id, message: `rule "${r.id}" never allows anything: deny rule "${shadow.id}" covers all its subjects and targets` });
  }
  const granted = new Set((doc.scopes ?? []).flatMap((g) => g.grant));
  for (const [tool, scopes] of Object.entries(doc.toolScopes ?? {})) {
    const missing = scopes.filter((s) => !granted.has(s));
    if (missing.length > 0) warnings.push({ ruleId: null, message: `tools "${tool}" require ${missing.join(', ')}, which no scope grant gives: nobody can call them` });
  }
  return warnings;
}
