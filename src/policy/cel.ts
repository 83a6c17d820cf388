/**
 * `when` conditions: CEL (github.com/google/cel-spec) through @marcbachmann/cel-js, a
 * maintained implementation with type checking and structural limits. Each expression is
 * parsed and type-checked once at load (unknown fields and type errors are load errors),
 * then evaluated as a closure (~0.3 µs here).
 *
 * Variables: identity {principal, id, kind, trustDomain, teams, roles, email, actor}, args (the
 * tool or prompt arguments), uri (the resource), now (timestamp).
 *
 * Bounds against hostile input: expressions are limited in size, depth and AST nodes, and a
 * comprehension (all, exists, exists_one, map, filter) may not nest inside another, so
 * evaluation is at most linear in the arguments; arguments are bounded in size and depth
 * before evaluation (over the bound: the condition errors, and the request is denied).
 */
import { Environment } from '@marcbachmann/cel-js';

export interface CelContext {
  identity: {
    principal: string;
    id: string;
    kind: string;
    trustDomain: string;
    teams: readonly string[];
    roles: readonly string[];
    email: string;
    /** a delegated call: the actor's principal URI (identity is the delegator, or on the actor's side the actor itself); else '' */
    actor: string;
  };
  args: unknown;
  uri: string;
  now: Date;
}

/** The values a condition sees, prepared once per decision by `celValues`. */
export type CelValues = Readonly<Record<string, unknown>>;
export type Condition = (values: CelValues) => boolean;

const environment = new Environment({
  unlistedVariablesAreDyn: false,
  homogeneousAggregateLiterals: false,
  limits: { maxAstNodes: 400, maxDepth: 24, maxListElements: 200, maxMapEntries: 200, maxCallArguments: 8 },
})
  .registerVariable({
    name: 'identity',
    schema: { principal: 'string', id: 'string', kind: 'string', trustDomain: 'string', teams: 'list<string>', roles: 'list<string>', email: 'string', actor: 'string' },
  })
  .registerVariable('args', 'map')
  .registerVariable('uri', 'string')
  .registerVariable('now', 'google.protobuf.Timestamp');

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

interface AstNode {
  op: string;
  args: unknown;
}

function maxComprehensionNesting(node: unknown, depth = 0): number {
  if (Array.isArray(node)) return Math.max(depth, ...node.map((n) => maxComprehensionNesting(n, depth)));
  if (!node || typeof node !== 'object' || !('op' in node)) return depth;
  const n = node as AstNode;
  const here = n.op === 'rcall' && Array.isArray(n.args) && COMPREHENSIONS.has(n.args[0] as string) ? depth + 1 : depth;
  return maxComprehensionNesting(n.args, here);
}

/** Compiles a condition; throws an Error whose message says what is wrong (for file:line:col). */
export function compileCondition(expression: string): Condition {
  let compiled: ReturnType<typeof environment.parse>;
  try {
    compiled = environment.parse(expression);
  } catch (e) {
    throw new Error(`CEL syntax: ${firstLine(e)}`);
  }
  const check = compiled.check();
  if (!check.valid) throw new Error(`CEL: ${firstLine(check.error)}`);
  if (check.type !== 'bool' && check.type !== 'dyn') throw new Error(`CEL: the condition must be a bool, this one is ${check.type}`);
  if (maxComprehensionNesting(compiled.ast) > 1) throw new Error('CEL: a comprehension (all, exists, map, filter) may not nest inside another (evaluation must stay linear)');
  return (values) => {
    const result = compiled(values);
    if (typeof result !== 'boolean') throw new Error(`the condition gave ${typeof result}, not a bool`);
    return result;
  };
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0] as string;
}

const MAX_ARG_NODES = 10_000;
const MAX_ARG_DEPTH = 16;
const MAX_STRING = 65_536;

/**
 * JSON arguments as CEL values: integers become CEL ints (BigInt), so `args.count > 5`
 * compares as written. Bounded: too large or too deep is an error (the request is denied).
 */
export function celArgs(value: unknown): unknown {
  let nodes = 0;
  const convert = (v: unknown, depth: number): unknown => {
    if (++nodes > MAX_ARG_NODES) throw new Error(`the arguments have more than ${MAX_ARG_NODES} values`);
    if (depth > MAX_ARG_DEPTH) throw new Error(`the arguments nest deeper than ${MAX_ARG_DEPTH}`);
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
    if (typeof v === 'string') {
      if (v.length > MAX_STRING) throw new Error(`an argument string is longer than ${MAX_STRING}`);
      return v;
    }
    if (Array.isArray(v)) return v.map((x) => convert(x, depth + 1));
    if (typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = convert(x, depth + 1);
      return out;
    }
    return null;
  };
  return convert(value ?? {}, 0);
}

/** Prepares the variables once per decision; throws when the arguments are over the bounds. */
export function celValues(ctx: CelContext): CelValues {
  return { identity: { ...ctx.identity, teams: [...ctx.identity.teams], roles: [...ctx.identity.roles] }, args: celArgs(ctx.args), uri: ctx.uri, now: ctx.now };
}
