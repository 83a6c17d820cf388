/**
 * A compiled policy: identity + MCP target -> Decision. Pure: no I/O; the clock is injected.
 *
 * Semantics (docs/policy.md): an explicit deny wins over any allow; otherwise any matching
 * allow allows; otherwise deny. A tool also needs every scope the policy (toolScopes) or the
 * server declares for it. Conditions (`when`, CEL) that fail to evaluate deny.
 *
 * Delegated calls (profile v1.1, docs/delegation.md): the rules decide on the delegator (its
 * delegated teams and roles, with the actor beside it for `actors:` / `delegated:` subjects and
 * `identity.actor`), and every deny rule that matches the actor as itself also applies. Allows
 * and scopes come from the delegator's side only: the actor's own permissions never add to it.
 * A delegation limited to tool globs (profile v1.2, `actingFor.tools`) denies every other tool
 * first, as rule {@link DELEGATION_GRANT_RULE}, and hides it from lists.
 *
 * Speed: everything that does not depend on the arguments (which rules apply to this
 * target, for this identity, and which scopes it holds) is computed once per identity and
 * target and cached on the identity object (the server caches one Identity per TLS
 * session), so a decision without conditions is two map lookups.
 */
import { celValues, compileCondition, type CelValues, type Condition } from './cel.js';
import { compilePattern, compilePatterns, type Matcher } from './glob.js';
import { toolGlobsTooLarge } from '../identity/names.js';
import { parsePolicyText, problemsError, type Locator, type PathPart, type PolicyProblem } from './parse.js';
import type { PolicyDocument, RuleDocument, SubjectsDocument } from './schema.js';
import { compileSubjects, type PolicySubject, type SubjectMatcher } from './subjects.js';
import { TargetIndex } from './target-index.js';
import { canonicalizeTemplate, canonicalizeUri } from './uri.js';
import { resourcePatternProblem } from './uri-pattern.js';

export type { PolicySubject } from './subjects.js';

/** The three things an MCP request can act on, which policy rules name under `tools`, `resources` and `prompts`. */
export type TargetKind = 'tool' | 'resource' | 'prompt';

/**
 * What one request asks for, as the policy decides on it: a tool or prompt by name, with its
 * arguments (JSON; conditions see them as `args`), or a resource by URI. The policy decides on
 * the URI's canonical form ({@link canonicalUri}); a URI without one is denied as unknown.
 * {@link authorizationFor} builds it from an MCP request.
 */
export type PolicyTarget =
  | { readonly kind: 'tool'; readonly name: string; readonly args?: unknown }
  | { readonly kind: 'resource'; readonly uri: string }
  | { readonly kind: 'prompt'; readonly name: string; readonly args?: unknown };

/** The answer of {@link Policy.decide} for one identity and one target. */
export interface Decision {
  readonly allowed: boolean;
  /**
   * The rule that decided; null when nothing matched (default deny), a scope is missing or
   * the trust domain is not accepted.
   */
  readonly ruleId: string | null;
  /** Why, in one sentence for logs and error messages, e.g. `allowed by rule "sre-read"`. */
  readonly reason: string;
  /** The scopes the policy grants this identity, sorted. */
  readonly scopes: readonly string[];
  /**
   * false when the caller may not even know the target exists (no allow applies, an
   * unconditional deny applies, or a required scope is missing): answer as for an unknown
   * tool. A target that is visible but denied failed a condition: name the rule.
   */
  readonly visible: boolean;
}

/** Options of {@link compilePolicy}, {@link policyFromText} and {@link loadPolicy}. */
export interface CompileOptions {
  /**
   * Scopes the server declares for its tools (tool name or pattern -> scopes, all of which
   * a caller needs), added to the policy's `toolScopes`.
   */
  readonly toolScopes?: Readonly<Record<string, readonly string[]>>;
  /** The clock for `now` in conditions; default the system clock. */
  readonly clock?: () => Date;
}

interface CompiledRule {
  readonly id: string;
  readonly index: number;
  readonly effect: 'allow' | 'deny';
  readonly subjects: SubjectMatcher;
  readonly targets: Partial<Record<TargetKind, Matcher>>;
  /** the upstreams it is for (a gateway's shared policy); absent: every one */
  readonly upstreams?: Matcher;
  readonly when?: Condition;
  readonly source: RuleDocument;
}

/** One rule in {@link Policy.explain}: whether it applies to the subject and target, and why. */
export interface ExplainedRule {
  readonly id: string;
  readonly effect: string;
  readonly applies: boolean;
  readonly why: string;
}

/**
 * The rule id of a denial by a delegation's tool globs (profile v1.2): no policy rule can have it
 * (rule ids start with a letter or digit), so an audit line tells it from the policy's own rules.
 */
export const DELEGATION_GRANT_RULE = '(delegation-grant)';

/** The two subjects a delegated call is decided on (see {@link Policy.decide}). */
interface Sides {
  readonly delegator: PolicySubject;
  readonly actor: PolicySubject;
  /** profile v1.2: the delegation's tool globs, compiled once per identity (undefined: no limit) */
  readonly tools?: Matcher;
}

/** What applies to one identity for one target, independent of the arguments. */
interface Applicable {
  readonly foreign: boolean;
  readonly unconditionalDeny?: CompiledRule;
  readonly conditionalDenies: readonly CompiledRule[];
  readonly unconditionalAllow?: CompiledRule;
  readonly conditionalAllows: readonly CompiledRule[];
  readonly missingScopes: readonly string[];
}

const CACHE_LIMIT = 4096;

/**
 * A delegation's tool globs as one matcher, its answers kept per tool name (bounded: a client
 * naming endless tools refills it), so a call costs a map lookup, not a glob walk; a glob that
 * does not compile (the reader checked them) matches nothing: deny.
 */
function toolGlobs(globs: readonly string[]): Matcher {
  let matches: Matcher;
  // more than a delegation may carry (another build's CA): every tool denied, not a walk of seconds per name
  if (toolGlobsTooLarge(globs)) return () => false;
  try {
    matches = compilePatterns(globs);
  } catch {
    return () => false;
  }
  const seen = new Map<string, boolean>();
  return (name) => {
    let v = seen.get(name);
    if (v === undefined) {
      v = matches(name);
      if (seen.size >= CACHE_LIMIT) seen.clear();
      seen.set(name, v);
    }
    return v;
  };
}

function targetKey(t: PolicyTarget): string {
  return t.kind === 'resource' ? `r:${t.uri}` : `${t.kind === 'tool' ? 't' : 'p'}:${t.name}`;
}

function targetValue(t: PolicyTarget): string {
  return t.kind === 'resource' ? t.uri : t.name;
}

/** The target with its resource URI in canonical form, or the problem that refuses the URI. */
function canonicalTarget(t: PolicyTarget): PolicyTarget | string {
  if (t.kind !== 'resource') return t;
  const c = canonicalizeUri(t.uri);
  if (!c.ok) return c.problem;
  return c.uri === t.uri ? t : { kind: 'resource', uri: c.uri };
}

const NO_SCOPES: readonly string[] = Object.freeze([]);

/**
 * A compiled policy: decides whether an identity may use a tool, resource or prompt (an
 * explicit deny wins, then any allow, else deny; a tool also needs its required scopes).
 * Build it with {@link compilePolicy}, {@link policyFromText} or {@link loadPolicy}. Pure
 * (no I/O) and safe to share between requests.
 *
 * What does not depend on the arguments is cached per subject object (weakly), so pass the
 * same, unchanging object for the same client (the server keeps one Identity per TLS session).
 */
export class Policy {
  /** The validated document this policy was compiled from. */
  readonly source: PolicyDocument;
  /** The compiled rules, in document order. */
  readonly rules: readonly CompiledRule[];
  readonly #trustDomains: ReadonlySet<string> | undefined;
  readonly #grants: readonly { subjects: SubjectMatcher; grant: readonly string[] }[];
  readonly #toolScopes: readonly { matches: Matcher; scopes: readonly string[] }[];
  readonly #clock: () => Date;
  readonly #options: CompileOptions;
  /** the upstream this policy is for ({@link Policy.forUpstream}); undefined: none (an adapter's) */
  readonly upstream: string | undefined;
  readonly #forUpstream = new Map<string, Policy>();
  /** rules whose targets match, per target (independent of the identity) */
  readonly #byTarget = new Map<string, readonly CompiledRule[]>();
  /** exact tool and prompt names to their rules, so a new target tests only pattern rules */
  readonly #index: TargetIndex<CompiledRule>;
  /** per identity object: target -> applicable rules, and the scopes it holds */
  readonly #perSubject = new WeakMap<object, { applicable: Map<string, Applicable>; scopes: readonly string[] }>();
  /** per delegated identity object: the two subjects the rules see (stable objects, so the caches above hold) */
  readonly #sides = new WeakMap<object, Sides>();
  readonly #requiredScopes = new Map<string, readonly string[]>();

  /** Not for direct use: build a Policy with {@link compilePolicy}, which validates and compiles the rules. */
  constructor(source: PolicyDocument, rules: CompiledRule[], grants: { subjects: SubjectMatcher; grant: readonly string[] }[], toolScopes: { matches: Matcher; scopes: readonly string[] }[], options: CompileOptions, upstream?: string) {
    this.source = source;
    this.rules = rules;
    this.#options = options;
    this.upstream = upstream;
    this.#trustDomains = source.trustDomains ? new Set(source.trustDomains) : undefined;
    this.#grants = grants;
    this.#toolScopes = toolScopes;
    this.#clock = options.clock ?? (() => new Date());
    // a rule naming upstreams is in force only in the policy for one of them: never in an adapter's, which fronts no upstream
    const active = rules.filter((r) => !r.upstreams || (upstream !== undefined && r.upstreams(upstream)));
    this.#index = new TargetIndex(active, (r, kind) => (kind === 'tool' ? r.source.tools : kind === 'prompt' ? r.source.prompts : r.source.resources));
  }

  /**
   * This policy as one upstream of a gateway sees it: the rules without `upstreams`, and those
   * whose `upstreams` match `name` (docs/gateway.md, a shared policy). Built once per name: the
   * gateway asks for it per request.
   */
  forUpstream(name: string): Policy {
    let p = this.#forUpstream.get(name);
    if (!p) {
      p = new Policy(this.source, this.rules as CompiledRule[], this.#grants as { subjects: SubjectMatcher; grant: readonly string[] }[], this.#toolScopes as { matches: Matcher; scopes: readonly string[] }[], this.#options, name);
      if (this.#forUpstream.size < 1024) this.#forUpstream.set(name, p);
    }
    return p;
  }

  /**
   * The decision for one request. `target.args` are the tool or prompt arguments. Never
   * throws: a condition that cannot be evaluated, or arguments over the size bounds, deny.
   */
  decide(subject: PolicySubject, target: PolicyTarget): Decision {
    const sides = this.#sidesOf(subject);
    const primary = sides?.delegator ?? subject;
    const canonical = canonicalTarget(target);
    if (typeof canonical === 'string') return { allowed: false, ruleId: null, reason: `resource URI refused: ${canonical}`, scopes: this.#state(primary).scopes, visible: false };
    target = canonical;
    const { applicable: a, scopes } = this.#applicable(primary, target);
    const r = sides ? this.#applicable(sides.actor, target).applicable : undefined;
    const deny = (rule: CompiledRule | undefined, reason: string, visible: boolean): Decision => ({ allowed: false, ruleId: rule?.id ?? null, reason, scopes, visible });
    const forActor = sides ? ` (it restricts the actor ${sides.actor.principal})` : '';
    if (a.foreign || r?.foreign) return deny(undefined, `trust domain "${primary.trustDomain}" is not accepted by this policy`, false);
    if (sides?.tools && target.kind === 'tool' && !sides.tools(target.name)) {
      return deny({ id: DELEGATION_GRANT_RULE } as CompiledRule, `tool "${target.name}" is outside the delegation's tools (${(subject.actingFor?.tools ?? []).join(', ')}) that ${primary.principal} granted ${sides.actor.principal}`, false);
    }
    if (a.unconditionalDeny) return deny(a.unconditionalDeny, `denied by rule "${a.unconditionalDeny.id}"`, false);
    if (r?.unconditionalDeny) return deny(r.unconditionalDeny, `denied by rule "${r.unconditionalDeny.id}"${forActor}`, false);
    if (!a.unconditionalAllow && a.conditionalAllows.length === 0) return deny(undefined, `no rule allows ${target.kind} "${targetValue(target)}"${sides ? ` for ${primary.principal} (acting through ${sides.actor.principal})` : ''}`, false);
    if (a.missingScopes.length > 0) return deny(undefined, `missing required scope${a.missingScopes.length > 1 ? 's' : ''}: ${a.missingScopes.join(', ')}`, false);

    const values = new Map<PolicySubject, CelValues | Error>();
    const holds = (rule: CompiledRule, who: PolicySubject = primary): true | false | Error => {
      let v = values.get(who);
      if (v === undefined) {
        try {
          v = celValues({
            identity: { principal: who.principal, id: who.id, kind: who.kind, trustDomain: who.trustDomain, teams: who.teams, roles: who.roles, email: who.email ?? '', actor: who.actor?.principal ?? (who.actsFor !== undefined ? who.principal : '') },
            args: target.kind === 'resource' ? {} : (target.args ?? {}),
            uri: target.kind === 'resource' ? target.uri : '',
            now: this.#clock(),
          });
        } catch (e) {
          v = e as Error;
        }
        values.set(who, v);
      }
      if (v instanceof Error) return v;
      try {
        return (rule.when as Condition)(v);
      } catch (e) {
        return new Error(String((e as Error)?.message ?? e).split('\n')[0]);
      }
    };
    const denies: [CompiledRule, PolicySubject, string][] = [...a.conditionalDenies.map((d): [CompiledRule, PolicySubject, string] => [d, primary, '']), ...(sides && r ? r.conditionalDenies.map((d): [CompiledRule, PolicySubject, string] => [d, sides.actor, forActor]) : [])];
    for (const [rule, who, note] of denies) {
      const h = holds(rule, who);
      if (h === true) return deny(rule, `denied by rule "${rule.id}" (its condition holds)${note}`, true);
      if (h instanceof Error) return deny(rule, `rule "${rule.id}": the condition could not be evaluated (${h.message}); denied${note}`, true);
    }
    if (a.unconditionalAllow) return { allowed: true, ruleId: a.unconditionalAllow.id, reason: `allowed by rule "${a.unconditionalAllow.id}"`, scopes, visible: true };
    let firstFailure: { rule: CompiledRule; why: string } | undefined;
    for (const rule of a.conditionalAllows) {
      const h = holds(rule);
      if (h === true) return { allowed: true, ruleId: rule.id, reason: `allowed by rule "${rule.id}" (its condition holds)`, scopes, visible: true };
      firstFailure ??= { rule, why: h instanceof Error ? `could not be evaluated (${h.message})` : 'does not hold' };
    }
    const f = firstFailure as { rule: CompiledRule; why: string };
    return deny(f.rule, `the condition of rule "${f.rule.id}" ${f.why}`, true);
  }

  /** Whether the identity may see the target at all (list filtering): conditions are not evaluated. */
  visible(subject: PolicySubject, target: PolicyTarget): boolean {
    const canonical = canonicalTarget(target);
    return typeof canonical !== 'string' && this.#visibleCanonical(subject, canonical);
  }

  #visibleCanonical(subject: PolicySubject, target: PolicyTarget): boolean {
    const sides = this.#sidesOf(subject);
    const { applicable: a } = this.#applicable(sides?.delegator ?? subject, target);
    const visible = !a.foreign && !a.unconditionalDeny && (a.unconditionalAllow !== undefined || a.conditionalAllows.length > 0) && a.missingScopes.length === 0;
    if (!visible || !sides) return visible;
    if (sides.tools && target.kind === 'tool' && !sides.tools(target.name)) return false;
    const r = this.#applicable(sides.actor, target).applicable;
    return !r.foreign && !r.unconditionalDeny;
  }

  /**
   * A delegated identity's two sides (undefined for any other subject): the delegator, as the
   * rules see it (its delegated teams and roles, the actor beside it), and the actor as itself
   * (whose deny rules also apply). Built once per identity object.
   */
  #sidesOf(subject: PolicySubject): Sides | undefined {
    const af = subject.actingFor;
    if (!af) return undefined;
    let sides = this.#sides.get(subject);
    if (!sides) {
      const actor = { principal: subject.principal, kind: subject.kind, id: subject.id };
      sides = {
        delegator: Object.freeze({ principal: af.principal, trustDomain: af.trustDomain, kind: af.kind, id: af.id, teams: af.teams, roles: af.roles, actor }),
        actor: Object.freeze({ principal: subject.principal, trustDomain: subject.trustDomain, kind: subject.kind, id: subject.id, teams: subject.teams, roles: subject.roles, ...(subject.email === undefined ? {} : { email: subject.email }), actsFor: af.principal }),
        ...(af.tools ? { tools: toolGlobs(af.tools) } : {}),
      };
      this.#sides.set(subject, sides);
    }
    return sides;
  }

  /** The tools (of a `tools/list` result) this identity may see; conditions are not evaluated. */
  filterTools<T extends { readonly name: string }>(subject: PolicySubject, tools: readonly T[]): T[] {
    return tools.filter((t) => this.visible(subject, { kind: 'tool', name: t.name }));
  }

  /** The resources (of a `resources/list` result) this identity may see, by `uri`; conditions are not evaluated. */
  filterResources<T extends { readonly uri: string }>(subject: PolicySubject, resources: readonly T[]): T[] {
    return resources.filter((r) => this.visible(subject, { kind: 'resource', uri: r.uri }));
  }

  /** A resource template is visible when its template text matches a resource pattern the identity may use. */
  filterResourceTemplates<T extends { readonly uriTemplate: string }>(subject: PolicySubject, templates: readonly T[]): T[] {
    return templates.filter((t) => this.templateVisible(subject, t.uriTemplate));
  }

  /**
   * Whether a resource template (its text, e.g. `file:///srv/{+path}`) is visible: its
   * expressions become opaque tokens ({@link canonicalizeTemplate}), so `file:///srv/**`
   * matches it. For `resources/templates/list` and template completions.
   */
  templateVisible(subject: PolicySubject, uriTemplate: string): boolean {
    const c = canonicalizeTemplate(uriTemplate);
    return c.ok && this.#visibleCanonical(subject, { kind: 'resource', uri: c.uri });
  }

  /** The prompts (of a `prompts/list` result) this identity may see; conditions are not evaluated. */
  filterPrompts<T extends { readonly name: string }>(subject: PolicySubject, prompts: readonly T[]): T[] {
    return prompts.filter((p) => this.visible(subject, { kind: 'prompt', name: p.name }));
  }

  /** The scopes the policy grants this identity, sorted. */
  scopesOf(subject: PolicySubject): readonly string[] {
    return this.#state(this.#sidesOf(subject)?.delegator ?? subject).scopes;
  }

  /** The scopes a tool requires (policy toolScopes and server declarations). */
  requiredScopes(tool: string): readonly string[] {
    // asked per tool of every per-request server (mcp/surface.ts): the answer depends on this
    // policy and the name alone, so it is kept (frozen, since callers hand it on)
    if (this.#toolScopes.length === 0) return NO_SCOPES;
    let required = this.#requiredScopes.get(tool);
    if (!required) {
      const out = new Set<string>();
      for (const ts of this.#toolScopes) if (ts.matches(tool)) for (const s of ts.scopes) out.add(s);
      required = Object.freeze([...out]);
      if (this.#requiredScopes.size < 4096) this.#requiredScopes.set(tool, required);
    }
    return required;
  }

  /** Every rule with why it did or did not apply, for `policy explain`. Not for the hot path. */
  /**
   * Every rule with why it did or did not apply, for `policy explain`. Not for the hot path.
   * For a delegated identity, `rules` are the delegator's side (allows and denies) and
   * `actorRules` the actor's side (its deny rules only restrict; its allows do not count).
   */
  explain(subject: PolicySubject, target: PolicyTarget): { decision: Decision; rules: ExplainedRule[]; delegation?: { delegator: string; actor: string; actorRules: ExplainedRule[]; tools?: readonly string[] } } {
    const decision = this.decide(subject, target);
    const sides = this.#sidesOf(subject);
    const canonical = canonicalTarget(target);
    if (typeof canonical === 'string') return { decision, rules: this.rules.map((r) => ({ id: r.id, effect: r.effect, applies: false, why: decision.reason })) };
    target = canonical;
    const side = (who: PolicySubject, restrictOnly: boolean): ExplainedRule[] =>
      this.rules.map((r) => {
        if (r.upstreams && (this.upstream === undefined || !r.upstreams(this.upstream))) return { id: r.id, effect: r.effect, applies: false, why: this.upstream === undefined ? `it is for upstreams ${(r.source.upstreams ?? []).join(', ')} (give the upstream: --upstream NAME)` : `its upstreams (${(r.source.upstreams ?? []).join(', ')}) do not include "${this.upstream}"` };
        const matcher = r.targets[target.kind];
        if (!matcher) return { id: r.id, effect: r.effect, applies: false, why: `names no ${target.kind}s` };
        if (!matcher(targetValue(target))) return { id: r.id, effect: r.effect, applies: false, why: `its ${target.kind}s do not match "${targetValue(target)}"` };
        const miss = r.subjects.mismatch(who);
        if (miss) return { id: r.id, effect: r.effect, applies: false, why: `subjects: ${miss}` };
        if (restrictOnly && r.effect === 'allow') return { id: r.id, effect: r.effect, applies: false, why: "matches the actor, but an actor's own allows do not count for a delegated call" };
        if (r.id === decision.ruleId) return { id: r.id, effect: r.effect, applies: true, why: `decided: ${decision.reason}` };
        return { id: r.id, effect: r.effect, applies: true, why: r.when ? `applies when: ${r.source.when}` : 'applies' };
      });
    if (!sides) return { decision, rules: side(subject, false) };
    return { decision, rules: side(sides.delegator, false), delegation: { delegator: sides.delegator.principal, actor: sides.actor.principal, actorRules: side(sides.actor, true), ...(subject.actingFor?.tools ? { tools: subject.actingFor.tools } : {}) } };
  }

  #state(subject: PolicySubject) {
    let state = this.#perSubject.get(subject);
    if (!state) {
      const scopes = new Set<string>();
      for (const g of this.#grants) if (g.subjects.matches(subject)) for (const s of g.grant) scopes.add(s);
      state = { applicable: new Map(), scopes: Object.freeze([...scopes].sort()) };
      this.#perSubject.set(subject, state);
    }
    return state;
  }

  #candidates(target: PolicyTarget): readonly CompiledRule[] {
    const key = targetKey(target);
    let rules = this.#byTarget.get(key);
    if (!rules) {
      const value = targetValue(target);
      rules = this.#index.matching(target.kind, value);
      if (this.#byTarget.size >= CACHE_LIMIT) this.#byTarget.clear();
      this.#byTarget.set(key, rules);
    }
    return rules;
  }

  #applicable(subject: PolicySubject, target: PolicyTarget): { applicable: Applicable; scopes: readonly string[] } {
    const state = this.#state(subject);
    const key = targetKey(target);
    let a = state.applicable.get(key);
    if (!a) {
      const foreign = this.#trustDomains !== undefined && !this.#trustDomains.has(subject.trustDomain);
      const mine = foreign ? [] : this.#candidates(target).filter((r) => r.subjects.matches(subject));
      const required = target.kind === 'tool' ? this.requiredScopes(target.name) : [];
      a = {
        foreign,
        unconditionalDeny: mine.find((r) => r.effect === 'deny' && !r.when),
        conditionalDenies: mine.filter((r) => r.effect === 'deny' && r.when),
        unconditionalAllow: mine.find((r) => r.effect === 'allow' && !r.when),
        conditionalAllows: mine.filter((r) => r.effect === 'allow' && r.when),
        missingScopes: required.filter((s) => !state.scopes.includes(s)),
      };
      if (state.applicable.size >= CACHE_LIMIT) state.applicable.clear();
      state.applicable.set(key, a);
    }
    return { applicable: a, scopes: state.scopes };
  }
}

/**
 * Compiles a validated document (from {@link parsePolicyText}): patterns, subjects and `when`
 * conditions (CEL), each once.
 *
 * @param locate - positions for error messages (from {@link parsePolicyText}); without it,
 *   problems are reported at `(policy)` line 0
 * @throws MtlsError `POLICY_INVALID` listing every problem (duplicate rule ids, bad patterns,
 *   bad conditions) with its position; `details.problems` holds them as {@link PolicyProblem}s
 */
export function compilePolicy(doc: PolicyDocument, options: CompileOptions = {}, locate?: Locator): Policy {
  const problems: PolicyProblem[] = [];
  const at = (path: PathPart[], message: string) => {
    const pos = locate?.at(path) ?? { line: 0, column: 0 };
    problems.push({ file: locate?.file ?? '(policy)', ...pos, path: path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join(''), message });
  };
  const subjectsOf = (s: SubjectsDocument, path: PathPart[]) => {
    try {
      return compileSubjects(s);
    } catch (e) {
      at(path, (e as Error).message);
      return compileSubjects({ any: true });
    }
  };
  const patterns = (list: readonly string[] | undefined, path: PathPart[], resources = false): Matcher | undefined => {
    if (!list) return undefined;
    let ok = true;
    list.forEach((p, j) => {
      try {
        compilePattern(p);
      } catch (e) {
        ok = false;
        at([...path, j], (e as Error).message);
        return;
      }
      // requests are decided in canonical form: a pattern in another form could never match
      const problem = resources ? resourcePatternProblem(p) : undefined;
      if (problem) {
        ok = false;
        at([...path, j], problem);
      }
    });
    return ok ? compilePatterns(list) : () => false;
  };

  const seen = new Map<string, number>();
  const rules: CompiledRule[] = doc.rules.map((r, i) => {
    const first = seen.get(r.id);
    if (first !== undefined) at(['rules', i, 'id'], `duplicate rule id "${r.id}" (first at rules[${first}])`);
    else seen.set(r.id, i);
    let when: Condition | undefined;
    if (r.when !== undefined) {
      try {
        when = compileCondition(r.when);
      } catch (e) {
        at(['rules', i, 'when'], (e as Error).message);
      }
    }
    const targets: Partial<Record<TargetKind, Matcher>> = {};
    const t = patterns(r.tools, ['rules', i, 'tools']);
    const res = patterns(r.resources, ['rules', i, 'resources'], true);
    const p = patterns(r.prompts, ['rules', i, 'prompts']);
    const ups = patterns(r.upstreams, ['rules', i, 'upstreams']);
    if (t) targets.tool = t;
    if (res) targets.resource = res;
    if (p) targets.prompt = p;
    return { id: r.id, index: i, effect: r.effect, subjects: subjectsOf(r.subjects, ['rules', i, 'subjects']), targets, ...(ups ? { upstreams: ups } : {}), ...(when ? { when } : {}), source: r };
  });
  const grants = (doc.scopes ?? []).map((g, i) => ({ subjects: subjectsOf(g.subjects, ['scopes', i, 'subjects']), grant: g.grant }));
  const toolScopes = [...Object.entries(doc.toolScopes ?? {}), ...Object.entries(options.toolScopes ?? {})].map(([pattern, scopes]) => {
    let matches: Matcher = () => false;
    try {
      matches = compilePattern(pattern);
    } catch (e) {
      at(['toolScopes', pattern], (e as Error).message);
    }
    return { matches, scopes };
  });
  if (problems.length > 0) throw problemsError(problems);
  return new Policy(doc, rules, grants, toolScopes, options);
}

/**
 * Parses and compiles policy text (YAML); {@link loadPolicy} and {@link watchPolicy} do the
 * same for a file.
 *
 * @param file - the name used in error messages
 * @throws MtlsError `POLICY_INVALID` (every problem, with file:line:column) or `POLICY_TOO_LARGE`
 */
export function policyFromText(text: string, file = 'policy.yaml', options: CompileOptions = {}): Policy {
  const { doc, locate } = parsePolicyText(text, file);
  return compilePolicy(doc, options, locate);
}
