/**
 * Who a rule (or a scope grant) is about. Listed kinds combine as AND, values within a kind
 * as OR: `{ teams: [sre, ops], roles: [admin] }` is "(in sre or ops) and holds admin".
 * Values are exact names or globs; users and services match the id of a principal of that
 * kind, principals match the whole URI. For a delegated call (docs/delegation.md) the rules see
 * the delegator, with the actor beside it: `actors` matches the actor as `<kind>/<id>`
 * (`service/chat-platform`), `delegated: true|false` whether there is one.
 */
import { compilePattern, compilePatterns, type Matcher } from './glob.js';
import type { SubjectsDocument } from './schema.js';

/** Who a principal is, as rules match it: the holder of a certificate, or the one it acts for. */
export interface SubjectPrincipal {
  readonly principal: string;
  readonly trustDomain: string;
  readonly kind: 'user' | 'service';
  readonly id: string;
  readonly teams: readonly string[];
  readonly roles: readonly string[];
}

/** What a policy reads of an identity (an Identity from src/identity satisfies it). */
export interface PolicySubject extends SubjectPrincipal {
  readonly email?: string;
  /**
   * Profile v1.1: the principal a delegated certificate's holder acts for (Identity.actingFor).
   * Policy decides such a call on it, restricted by the holder (docs/delegation.md).
   */
  readonly actingFor?: SubjectPrincipal & {
    /** profile v1.2: the tool globs the delegation is limited to (absent: no limit); a call to any other tool is denied */
    readonly tools?: readonly string[];
  };
  /** Set by the policy on the delegator's side of a delegated call: who acts for it. Not read from an Identity. */
  readonly actor?: { readonly principal: string; readonly kind: 'user' | 'service'; readonly id: string };
  /**
   * Set by the policy on the actor's side of a delegated call: the principal it acts for. Its
   * deny rules see the call as delegated (`delegated: true`, CEL `identity.actor` = itself); rules
   * about delegated calls only (`delegated` / `actors` and no other kind) are not the actor's side's.
   */
  readonly actsFor?: string;
}

export interface SubjectMatcher {
  matches(s: PolicySubject): boolean;
  /** why the subject does not match (for explain), or undefined when it does */
  mismatch(s: PolicySubject): string | undefined;
}

type Check = { kind: string; test: (s: PolicySubject) => boolean; values: readonly string[] };

export function compileSubjects(doc: SubjectsDocument): SubjectMatcher {
  if (doc.any) return { matches: () => true, mismatch: () => undefined };
  const checks: Check[] = [];
  const m = (values: readonly string[]): Matcher => {
    values.forEach((v) => compilePattern(v)); // throws with the message for a bad pattern
    return compilePatterns(values);
  };
  if (doc.users) {
    const f = m(doc.users);
    checks.push({ kind: 'users', values: doc.users, test: (s) => s.kind === 'user' && f(s.id) });
  }
  if (doc.services) {
    const f = m(doc.services);
    checks.push({ kind: 'services', values: doc.services, test: (s) => s.kind === 'service' && f(s.id) });
  }
  if (doc.teams) {
    const f = m(doc.teams);
    checks.push({ kind: 'teams', values: doc.teams, test: (s) => s.teams.some(f) });
  }
  if (doc.roles) {
    const f = m(doc.roles);
    checks.push({ kind: 'roles', values: doc.roles, test: (s) => s.roles.some(f) });
  }
  if (doc.principals) {
    const f = m(doc.principals);
    checks.push({ kind: 'principals', values: doc.principals, test: (s) => f(s.principal) });
  }
  if (doc.actors) {
    const f = m(doc.actors);
    checks.push({ kind: 'actors', values: doc.actors, test: (s) => s.actor !== undefined && f(`${s.actor.kind}/${s.actor.id}`) });
  }
  if (doc.delegated !== undefined) {
    const want = doc.delegated;
    checks.push({ kind: 'delegated', values: [String(want)], test: (s) => (s.actor !== undefined || s.actsFor !== undefined) === want });
  }
  // a rule about delegated calls only speaks of the delegator (its conditions too): never matched on the actor's side
  const delegationOnly = checks.every((c) => c.kind === 'actors' || c.kind === 'delegated');
  return {
    matches: (s) => {
      if (delegationOnly && s.actsFor !== undefined) return false;
      for (const c of checks) if (!c.test(s)) return false;
      return true;
    },
    mismatch: (s) => {
      if (delegationOnly && s.actsFor !== undefined) return "a rule about delegated calls only (delegated / actors) is decided on the delegator's side";
      const failed = checks.find((c) => !c.test(s));
      return failed ? `not in ${failed.kind} [${failed.values.join(', ')}]` : undefined;
    },
  };
}
