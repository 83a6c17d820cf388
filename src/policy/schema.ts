/**
 * The policy file, version 1 (docs/policy.md), as a schema: every key known, every type
 * checked, sizes bounded. Errors are turned into file:line:column by parse.ts.
 */
import { z } from 'zod';

const MAX_RULES = 10_000;

export const RULE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const pattern = z.string().min(1).max(512);
const scope = z.string().regex(/^[\x21-\x7e]{1,128}$/, 'a scope is 1 to 128 printable ASCII characters without spaces');
const list = <T extends z.ZodType>(item: T) => z.array(item).min(1).max(1000);

export const SubjectsSchema = z
  .strictObject({
    any: z.literal(true).optional(),
    users: list(pattern).optional(),
    services: list(pattern).optional(),
    teams: list(pattern).optional(),
    roles: list(pattern).optional(),
    principals: list(pattern).optional(),
    /** delegated calls only: the actor, as `<kind>/<id>` (docs/delegation.md) */
    actors: list(pattern).optional(),
    /** true: delegated calls only; false: calls by a principal itself only */
    delegated: z.boolean().optional(),
  })
  .refine((s) => Object.keys(s).length > 0, 'name at least one of any, users, services, teams, roles, principals, actors, delegated')
  .refine((s) => !(s.any && Object.keys(s).length > 1), '"any: true" cannot be combined with other subject kinds');

export const RuleSchema = z
  .strictObject({
    id: z.string().regex(RULE_ID_RE, 'a rule id is 1 to 128 characters of A-Z a-z 0-9 . _ : - and starts with a letter or digit'),
    description: z.string().max(2000).optional(),
    effect: z.enum(['allow', 'deny']).default('allow'),
    subjects: SubjectsSchema,
    tools: list(pattern).optional(),
    resources: list(pattern).optional(),
    prompts: list(pattern).optional(),
    /** the gateway upstreams (route names) the rule is for; absent: every one (docs/gateway.md, a shared policy) */
    upstreams: list(z.string().regex(/^[A-Za-z0-9*?{},._-]{1,128}$/, 'an upstream name or pattern (A-Z a-z 0-9 . _ - and * ? {a,b})')).optional(),
    when: z.string().min(1).max(4096).optional(),
  })
  .refine((r) => r.tools || r.resources || r.prompts, 'a rule names tools, resources or prompts (use ["*"] for all)');

export const ScopeGrantSchema = z.strictObject({
  id: z.string().regex(RULE_ID_RE).optional(),
  subjects: SubjectsSchema,
  grant: list(scope),
});

export const PolicySchema = z.strictObject({
  version: z.literal(1),
  trustDomains: list(z.string().regex(/^[a-z0-9._-]+$/)).optional(),
  rules: z.array(RuleSchema).max(MAX_RULES),
  scopes: z.array(ScopeGrantSchema).max(MAX_RULES).optional(),
  toolScopes: z.record(pattern, list(scope)).optional(),
});

/** A policy file (version 1, docs/policy.md) after validation, as {@link parsePolicyText} returns it. */
export type PolicyDocument = z.infer<typeof PolicySchema>;
/** One rule of a {@link PolicyDocument}; `effect` is `allow` when the file leaves it out. */
export type RuleDocument = z.infer<typeof RuleSchema>;
/**
 * Who a rule or scope grant is about: the kinds listed must all match (AND), one value within
 * a kind suffices (OR). Values are names or glob patterns; `users` and `services` match the
 * id, `principals` the whole URI.
 */
export type SubjectsDocument = z.infer<typeof SubjectsSchema>;
