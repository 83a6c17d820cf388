/**
 * Resource patterns in a policy are checked against the canonical URI form (uri.ts) when the
 * policy is compiled: requests are decided in canonical form, so a pattern written another
 * way (`FILE:///srv/**`, `file:///srv/%73ecret/**`, `file:///srv/./x`) could never match what
 * it names, and a deny written so would silently deny nothing. Such a pattern is refused,
 * with the canonical spelling to write instead.
 */
import { expandAlternatives } from './glob.js';
import { canonicalizeUri } from './uri.js';

const GLOB_TOKEN = /\\.|\*+|\?|\[[^\]]+\]/g;
const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** Why a resource pattern is not in canonical form, or undefined when it is. */
export function resourcePatternProblem(pattern: string): string | undefined {
  let variants: string[];
  try {
    variants = expandAlternatives(pattern);
  } catch {
    return undefined; // compilePattern reports it
  }
  for (const variant of variants) {
    // glob tokens stand aside as placeholders that every step of canonicalization keeps as is
    let mark = 'zq';
    while (variant.toLowerCase().includes(mark)) mark = `${mark}q`;
    const tokens: string[] = [];
    const text = variant.replace(GLOB_TOKEN, (t) => `${mark}${tokens.push(t) - 1}${mark}`);
    const restore = (s: string) => s.replace(new RegExp(`${mark}(\\d+)${mark}`, 'g'), (_m, i: string) => tokens[Number(i)] as string);
    // no literal scheme (`**/secret/**`): checked as a path, for its escapes and dot segments
    const prefix = ABSOLUTE.test(text) ? '' : 'x-pattern:///';
    const c = canonicalizeUri(prefix + text);
    if (!c.ok) return `this pattern can never match a request URI: ${c.problem}`;
    const back = restore(c.uri.slice(prefix.length));
    if (back !== variant) return `resource patterns are matched against canonical URIs (lowercase scheme and host, no needless percent-encoding, uppercase hex, no dot segments): write "${back}"${variants.length > 1 ? ` for the alternative "${variant}"` : ''}`;
  }
  return undefined;
}
