/**
 * Name and URI patterns in policies, compiled once to matchers (picomatch: globs to regular
 * expressions, well tested). `*` matches within a segment, `**` across `/`, `{a,b}` is
 * alternation, and a URI template variable such as `{owner}` (an identifier alone in braces)
 * matches one segment, so `repo://{owner}/{name}` can be written as in MCP resource templates.
 */
import picomatch from 'picomatch';

export type Matcher = (value: string) => boolean;

const MAX_PATTERN = 512;
const TEMPLATE_VAR = /\{[A-Za-z_][A-Za-z0-9_]*\}/g;

export function isPattern(p: string): boolean {
  return /[*?[\]{}!()+@]/.test(p);
}

/** Throws an Error whose message says what is wrong with the pattern. */
export function compilePattern(pattern: string): Matcher {
  if (pattern.length === 0 || pattern.length > MAX_PATTERN) throw new Error(`a pattern has 1 to ${MAX_PATTERN} characters`);
  if (!isPattern(pattern)) return (v) => v === pattern;
  const glob = pattern.replace(TEMPLATE_VAR, '*');
  let re: RegExp;
  try {
    re = picomatch.makeRe(glob, { dot: true, strictBrackets: true, nonegate: true });
  } catch (e) {
    throw new Error(`invalid pattern "${pattern}": ${(e as Error).message}`);
  }
  if (!re) throw new Error(`invalid pattern "${pattern}"`);
  return (v) => re.test(v);
}

/** One matcher for a list of patterns (any matches); exact names go through a Set. */
export function compilePatterns(patterns: readonly string[]): Matcher {
  const exact = new Set(patterns.filter((p) => !isPattern(p)));
  const globs = patterns.filter(isPattern).map(compilePattern);
  if (globs.length === 0) return (v) => exact.has(v);
  return (v) => exact.has(v) || globs.some((m) => m(v));
}
