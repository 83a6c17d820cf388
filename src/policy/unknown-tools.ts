/**
 * Which tool names of a policy match none of the tools a server has: a rule for
 * `restart_servce` passes every check and then never applies. The one place that answers it,
 * for `mcp-mtls policy check --tools FILE` and for the SDK adapters once their tools are
 * registered (mcp/unknown-tools-warning.ts).
 */
import { compilePattern, isPattern } from './glob.js';
import type { PolicyWarning } from './lint.js';
import type { PolicyDocument } from './schema.js';

/** One tool name or pattern of a policy that matches none of the server's tools. */
export interface UnmatchedToolPattern extends PolicyWarning {
  /** the name or pattern as the policy writes it */
  readonly pattern: string;
  /** where it is written: a rule's `tools` or a `toolScopes` key */
  readonly where: 'rule' | 'toolScopes';
  /** the server's tool nearest to a misspelt name, when one is close */
  readonly suggestion?: string;
}

/** `*` and `**` name every tool on purpose: a server without tools is no typo. */
const MATCHES_ALL = new Set(['*', '**']);

/**
 * The tool names and patterns of `doc` (rules' `tools`, `toolScopes` keys) that match none of
 * `tools`, each with the nearest tool name when the name looks misspelt. Patterns that match
 * every name (`*`) are left out.
 *
 * @param tools - the names of the server's tools (a `tools/list` result's `name`s)
 */
export function unmatchedToolPatterns(doc: PolicyDocument, tools: readonly string[]): UnmatchedToolPattern[] {
  const out: UnmatchedToolPattern[] = [];
  const check = (pattern: string, ruleId: string | null, where: UnmatchedToolPattern['where']) => {
    if (MATCHES_ALL.has(pattern)) return;
    let matches: (name: string) => boolean;
    try {
      matches = compilePattern(pattern);
    } catch {
      return; // compilePolicy reports a malformed pattern
    }
    if (tools.some((t) => matches(t))) return;
    const suggestion = isPattern(pattern) ? undefined : nearest(pattern, tools);
    const subject = where === 'rule' ? `rule "${ruleId}" names tool ${isPattern(pattern) ? 'pattern ' : ''}"${pattern}"` : `toolScopes names tool ${isPattern(pattern) ? 'pattern ' : ''}"${pattern}"`;
    const message = `${subject}, which matches none of the server's ${tools.length} tool${tools.length === 1 ? '' : 's'}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
    out.push({ ruleId, pattern, where, message, ...(suggestion ? { suggestion } : {}) });
  };
  for (const r of doc.rules) for (const p of r.tools ?? []) check(p, r.id, 'rule');
  for (const p of Object.keys(doc.toolScopes ?? {})) check(p, null, 'toolScopes');
  return out;
}

/**
 * The tool names in what a user has at hand: a `tools/list` result (`{ tools: [{ name }] }`),
 * a whole JSON-RPC response with that result, a list of names or of `{ name }` objects.
 * Undefined when `value` is none of these.
 */
export function toolNamesOf(value: unknown): string[] | undefined {
  const v = value as { result?: unknown; tools?: unknown } | null;
  const list = Array.isArray(value) ? value : v && typeof v === 'object' ? (Array.isArray(v.tools) ? v.tools : (v.result as { tools?: unknown } | undefined)?.tools) : undefined;
  if (!Array.isArray(list)) return undefined;
  const names = list.map((t) => (typeof t === 'string' ? t : typeof (t as { name?: unknown })?.name === 'string' ? (t as { name: string }).name : undefined));
  return names.every((n): n is string => n !== undefined) ? names : undefined;
}

/** The name of `names` closest to `name` by edit distance, when close enough to be a typo. */
function nearest(name: string, names: readonly string[]): string | undefined {
  const limit = Math.max(2, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const n of names) {
    if (Math.abs(n.length - name.length) > limit) continue;
    const d = editDistance(name.toLowerCase(), n.toLowerCase());
    if (d < bestDistance) {
      best = n;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** Levenshtein distance, one row at a time (names are short). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length] as number;
}
