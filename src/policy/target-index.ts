/**
 * Which rules can match a target, found without testing every rule. A policy's rules mostly
 * name tools and prompts exactly (`deploy`, `github/create_issue`); those go into a map from
 * name to rules, and only rules with a pattern (`read_*`) are tested one by one. Before this
 * index, the first decision for a new target tested every rule's matcher: with 10,000 rules
 * that was about 4 ms (bench/policy-cedar, cold), now it is the pattern rules alone.
 *
 * Exact names in a pattern list are compared with `===` by compilePatterns too (a Set), so
 * the map decides exactly what the matchers decide. Resources are not indexed: their
 * patterns are canonical URIs tested by the matcher (a scan, as before).
 */
import { expandAlternatives, isPattern, type Matcher } from './glob.js';

/** The part of a compiled rule the index needs: its document position and its matchers. */
export interface IndexedRule {
  readonly index: number;
  readonly targets: Partial<Record<'tool' | 'resource' | 'prompt', Matcher>>;
}

type Kind = 'tool' | 'resource' | 'prompt';

interface KindIndex<R> {
  readonly exact: Map<string, R[]>;
  /**
   * rules with at least one pattern for this kind, tested by their matcher after a cheap
   * check: the literal text every one of their names and patterns starts with (`read_` for
   * `read_*`), which a matching value must start with too
   */
  readonly scanned: { rule: R; prefix: string }[];
}

/** The text before a pattern's first special character (`*?[{` or an escape): every match starts with it. */
function literalPrefix(pattern: string): string {
  const at = pattern.search(/[*?[\]\\{}]/);
  return at < 0 ? pattern : pattern.slice(0, at);
}

function commonPrefix(list: readonly string[]): string {
  let prefix: string | undefined;
  for (const p of list) {
    for (const alternative of isPattern(p) ? expandAlternatives(p) : [p]) {
      const own = literalPrefix(alternative);
      if (prefix === undefined) prefix = own;
      let i = 0;
      while (i < prefix.length && i < own.length && prefix.charCodeAt(i) === own.charCodeAt(i)) i++;
      prefix = prefix.slice(0, i);
      if (prefix === '') return '';
    }
  }
  return prefix ?? '';
}

export class TargetIndex<R extends IndexedRule> {
  readonly #kinds = new Map<Kind, KindIndex<R>>();

  /** @param lists - per rule, the pattern lists of its document (`tools`, `prompts`) */
  constructor(rules: readonly R[], lists: (rule: R, kind: Kind) => readonly string[] | undefined) {
    for (const kind of ['tool', 'resource', 'prompt'] as const) {
      const index: KindIndex<R> = { exact: new Map(), scanned: [] };
      for (const rule of rules) {
        if (!rule.targets[kind]) continue;
        const list = lists(rule, kind);
        if (kind === 'resource' || !list || list.some(isPattern)) {
          index.scanned.push({ rule, prefix: kind === 'resource' || !list ? '' : commonPrefix(list) });
          continue;
        }
        for (const name of new Set(list)) {
          const bucket = index.exact.get(name);
          if (bucket) bucket.push(rule);
          else index.exact.set(name, [rule]);
        }
      }
      this.#kinds.set(kind, index);
    }
  }

  /** The rules whose targets match `value`, in document order. */
  matching(kind: Kind, value: string): R[] {
    const index = this.#kinds.get(kind);
    if (!index) return [];
    const exact = index.exact.get(value) ?? [];
    const scanned: R[] = [];
    for (const { rule, prefix } of index.scanned) if (value.startsWith(prefix) && (rule.targets[kind] as Matcher)(value)) scanned.push(rule);
    if (scanned.length === 0) return [...exact];
    if (exact.length === 0) return scanned;
    return [...exact, ...scanned].sort((a, b) => a.index - b.index);
  }
}
