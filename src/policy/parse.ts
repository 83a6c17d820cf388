/**
 * Policy text to a validated document, with every error located: `file:line:column: what`.
 * The `yaml` package keeps node ranges, so schema errors (unknown keys, wrong types) and
 * compile errors (duplicate ids, bad globs, CEL) all point at the offending node.
 */
import YAML, { isMap, isPair, isScalar, LineCounter, type Document, type Node } from 'yaml';
import { MtlsError } from '../errors.js';
import { PolicySchema, type PolicyDocument } from './schema.js';

/** One thing wrong with a policy, where it is and what; `POLICY_INVALID` errors carry them in `details.problems`. */
export interface PolicyProblem {
  readonly file: string;
  /** 1-based; 0 when the position is not known. */
  readonly line: number;
  /** 1-based; 0 when the position is not known. */
  readonly column: number;
  /** Where in the document, e.g. `rules[3].subjects.teams`. */
  readonly path: string;
  readonly message: string;
}

export type PathPart = string | number;

/** Where each node of the document is, for messages from later stages. */
export interface Locator {
  readonly file: string;
  at(path: readonly PathPart[], key?: string): { line: number; column: number };
}

/** What {@link parsePolicyText} returns: the validated document, and its positions for {@link compilePolicy}'s errors. */
export interface ParsedPolicy {
  readonly doc: PolicyDocument;
  readonly locate: Locator;
}

const MAX_TEXT = 4 * 1024 * 1024;

export function formatPath(path: readonly PathPart[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(top)';
}

export function problemsError(problems: readonly PolicyProblem[]): MtlsError {
  const shown = problems.slice(0, 10).map((p) => `${p.file}:${p.line}:${p.column}: ${p.path}: ${p.message}`);
  const more = problems.length > 10 ? `\n(and ${problems.length - 10} more)` : '';
  return new MtlsError('POLICY_INVALID', `invalid policy:\n${shown.join('\n')}${more}`, {
    hint: 'fix the lines named above (docs/policy.md describes every field); `mcp-mtls policy check FILE` checks a policy',
    details: { problems },
  });
}

function makeLocator(doc: Document, lines: LineCounter, file: string): Locator {
  return {
    file,
    at(path, key) {
      // walk down to the deepest node that exists, and to the key itself when asked
      for (let n = path.length; n >= 0; n--) {
        const node = (n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)) as Node | undefined;
        if (!node) continue;
        let offset = node.range?.[0];
        if (key !== undefined && n === path.length && isMap(node)) {
          const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === key);
          if (pair && isScalar(pair.key)) offset = pair.key.range?.[0] ?? offset;
        }
        if (offset !== undefined) {
          const pos = lines.linePos(offset);
          return { line: pos.line, column: pos.col };
        }
      }
      return { line: 1, column: 1 };
    },
  };
}

const KNOWN_KEYS: Record<string, string[]> = {
  top: ['version', 'trustDomains', 'rules', 'scopes', 'toolScopes'],
  rule: ['id', 'description', 'effect', 'subjects', 'tools', 'resources', 'prompts', 'upstreams', 'when'],
  subjects: ['any', 'users', 'services', 'teams', 'roles', 'principals', 'actors', 'delegated'],
};

/** The value at `path` in the parsed document, undefined when a key on the way is absent: a wrong type there is a missing key (decided on the data, not on the schema library's message). */
function valueAt(value: unknown, path: readonly PathPart[]): unknown {
  let v = value;
  for (const part of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<PathPart, unknown>)[part];
  }
  return v;
}

function suggestion(key: string, path: readonly PathPart[]): string {
  const last = path[path.length - 1];
  const known = path.length === 0 ? KNOWN_KEYS.top : last === 'subjects' ? KNOWN_KEYS.subjects : typeof last === 'number' && path[0] === 'rules' ? KNOWN_KEYS.rule : [];
  const near = (known ?? []).find((k) => k.startsWith(key) || key.startsWith(k) || k.toLowerCase() === key.toLowerCase());
  return near ? ` (did you mean "${near}"?)` : '';
}

/**
 * Parses and validates policy text (YAML, policy version 1) against the schema, without
 * compiling it (see {@link compilePolicy}).
 *
 * @param file - the name used in error messages
 * @throws MtlsError `POLICY_INVALID` listing every problem with its position (YAML errors,
 *   unknown keys, wrong types); `POLICY_TOO_LARGE` for text of more than 4,194,304 characters
 */
export function parsePolicyText(text: string, file = 'policy.yaml'): ParsedPolicy {
  if (text.length > MAX_TEXT) {
    throw new MtlsError('POLICY_TOO_LARGE', `${file} has ${text.length} characters; a policy may have at most ${MAX_TEXT}`, { hint: 'split rules by server, or use globs' });
  }
  const lines = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw problemsError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
        return { file, line: pos.line, column: pos.col, path: '(yaml)', message: e.message.split('\n')[0] as string };
      }),
    );
  }
  const locate = makeLocator(doc, lines, file);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw problemsError([{ file, line: 1, column: 1, path: '(yaml)', message: (e as Error).message }]);
  }
  const parsed = PolicySchema.safeParse(value);
  if (!parsed.success) {
    const problems: PolicyProblem[] = [];
    for (const issue of parsed.error.issues) {
      const path = issue.path as PathPart[];
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          problems.push({ file, ...locate.at(path, key), path: formatPath([...path, key]), message: `unknown key "${key}"${suggestion(key, path)}` });
        }
      } else if (issue.code === 'invalid_type' && valueAt(value, path) === undefined) {
        const field = path[path.length - 1];
        problems.push({ file, ...locate.at(path.slice(0, -1)), path: formatPath(path), message: `missing required key "${field}"${issue.expected ? ` (${issue.expected})` : ''}` });
      } else {
        problems.push({ file, ...locate.at(path), path: formatPath(path), message: issue.message });
      }
    }
    throw problemsError(problems);
  }
  return { doc: parsed.data, locate };
}
