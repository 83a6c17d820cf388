/**
 * (Moved from src/policy/glob.ts, which re-exports it: the identity reader and the CA check
 * profile v1.2 tool globs with it.)
 *
 * Name and URI patterns in policies, compiled once to matchers. `*` matches within a segment,
 * `**` across `/` (`a/**\/b` also matches `a/b`), `?` one character, `[a-z]` / `[!a]` a class,
 * `{a,b}` either alternative, and a URI template variable such as `{owner}` (an identifier
 * alone in braces) one segment, so `repo://{owner}/{name}` can be written as in MCP templates.
 *
 * Written here, not with picomatch (used first): picomatch compiles to backtracking regular
 * expressions, and names come from clients: `*_*_*_*_admin` against a 2,000-character tool
 * name took 299 s (found in review). This matcher simulates the pattern as an NFA, one pass
 * over the input: time O(pattern x input), whatever both contain.
 */
export type Matcher = (value: string) => boolean;

const MAX_PATTERN = 512;
const MAX_ALTERNATIVES = 64;

export function isPattern(p: string): boolean {
  return /[*?[\]{}]/.test(p);
}

type Token = { t: 'lit'; c: string } | { t: 'one' } | { t: 'star' } | { t: 'any' } | { t: 'class'; negate: boolean; ranges: [string, string][] };

/** {a,b} alternatives expanded (nested braces too); {identifier} becomes a one-segment wildcard. */
function expand(pattern: string): string[] {
  const open = findBrace(pattern);
  if (!open) return [pattern];
  const [start, end] = open;
  const body = pattern.slice(start + 1, end);
  const before = pattern.slice(0, start);
  const after = pattern.slice(end + 1);
  const parts = /^[A-Za-z_][A-Za-z0-9_]*$/.test(body) ? ['*'] : splitTop(body);
  const out: string[] = [];
  for (const p of parts) for (const rest of expand(after)) for (const head of expand(before + p)) out.push(head + rest);
  if (out.length > MAX_ALTERNATIVES) throw new Error(`more than ${MAX_ALTERNATIVES} alternatives`);
  return out;
}

/** The alternatives of a pattern (`{a,b}` expanded, `{name}` as `*`), for checks of their text. */
export function expandAlternatives(pattern: string): string[] {
  return expand(pattern);
}

function findBrace(p: string): [number, number] | undefined {
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '\\') {
      i++;
      continue;
    }
    if (p[i] === '[') {
      const close = p.indexOf(']', i + 1);
      if (close > 0) i = close;
      continue;
    }
    if (p[i] === '{') {
      let depth = 0;
      for (let j = i; j < p.length; j++) {
        if (p[j] === '{') depth++;
        else if (p[j] === '}' && --depth === 0) return [i, j];
      }
      throw new Error('unbalanced "{"');
    }
    if (p[i] === '}') throw new Error('unbalanced "}"');
  }
  return undefined;
}

function splitTop(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of body) {
    if (ch === '{') depth++;
    if (ch === '}') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

function tokenize(p: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < p.length; i++) {
    const ch = p[i] as string;
    if (ch === '\\' && i + 1 < p.length) out.push({ t: 'lit', c: p[++i] as string });
    else if (ch === '*' && p[i + 1] === '*') {
      while (p[i + 1] === '*') i++;
      out.push({ t: 'any' });
    } else if (ch === '*') out.push({ t: 'star' });
    else if (ch === '?') out.push({ t: 'one' });
    else if (ch === '[') {
      const close = p.indexOf(']', i + 2);
      if (close < 0) throw new Error('unbalanced "["');
      let body = p.slice(i + 1, close);
      const negate = body[0] === '!' || body[0] === '^';
      if (negate) body = body.slice(1);
      const ranges: [string, string][] = [];
      for (let j = 0; j < body.length; j++) {
        if (body[j + 1] === '-' && j + 2 < body.length) {
          ranges.push([body[j] as string, body[j + 2] as string]);
          j += 2;
        } else ranges.push([body[j] as string, body[j] as string]);
      }
      out.push({ t: 'class', negate, ranges });
      i = close;
    } else if (ch === ']') throw new Error('unbalanced "]"');
    else out.push({ t: 'lit', c: ch });
  }
  return out;
}

/** One expanded pattern as an NFA run in a single pass over the value. */
function nfa(tokens: Token[]): Matcher {
  const n = tokens.length;
  const step = (tok: Token, ch: string): boolean => {
    switch (tok.t) {
      case 'lit':
        return tok.c === ch;
      case 'one':
        return ch !== '/';
      case 'class': {
        if (ch === '/') return false;
        const inside = tok.ranges.some(([a, b]) => ch >= a && ch <= b);
        return tok.negate ? !inside : inside;
      }
      default:
        return false;
    }
  };
  return (value) => {
    let cur = new Uint8Array(n + 1);
    let next = new Uint8Array(n + 1);
    const close = (states: Uint8Array) => {
      // * and ** may match nothing
      for (let i = 0; i < n; i++) if (states[i] && (tokens[i]!.t === 'star' || tokens[i]!.t === 'any')) states[i + 1] = 1;
    };
    cur[0] = 1;
    close(cur);
    for (const ch of value) {
      next.fill(0);
      let alive = false;
      for (let i = 0; i < n; i++) {
        if (!cur[i]) continue;
        const tok = tokens[i] as Token;
        if (tok.t === 'star') {
          if (ch !== '/') (next[i] = 1), (alive = true);
        } else if (tok.t === 'any') (next[i] = 1), (alive = true);
        else if (step(tok, ch)) (next[i + 1] = 1), (alive = true);
      }
      if (!alive) return false;
      close(next);
      [cur, next] = [next, cur];
    }
    return cur[n] === 1;
  };
}

/** Throws an Error whose message says what is wrong with the pattern. */
export function compilePattern(pattern: string): Matcher {
  if (pattern.length === 0 || pattern.length > MAX_PATTERN) throw new Error(`a pattern has 1 to ${MAX_PATTERN} characters`);
  if (!isPattern(pattern)) return (v) => v === pattern;
  let variants: string[];
  try {
    // "a/**/b" also matches "a/b": the globstar may stand for no segment at all
    variants = expand(pattern).flatMap((v) => (v.includes('/**/') ? [v, v.replace(/\/\*\*\//g, '/')] : [v]));
  } catch (e) {
    throw new Error(`invalid pattern "${pattern}": ${(e as Error).message}`);
  }
  let matchers: Matcher[];
  try {
    matchers = variants.map((v) => nfa(tokenize(v)));
  } catch (e) {
    throw new Error(`invalid pattern "${pattern}": ${(e as Error).message}`);
  }
  return matchers.length === 1 ? (matchers[0] as Matcher) : (v) => matchers.some((m) => m(v));
}

/** One matcher for a list of patterns (any matches); exact names go through a Set. */
export function compilePatterns(patterns: readonly string[]): Matcher {
  const exact = new Set(patterns.filter((p) => !isPattern(p)));
  const globs = patterns.filter(isPattern).map(compilePattern);
  if (globs.length === 0) return (v) => exact.has(v);
  return (v) => exact.has(v) || globs.some((m) => m(v));
}
