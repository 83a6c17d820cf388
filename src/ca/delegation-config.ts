/**
 * config.yaml `delegation` (docs/delegation.md): which actors may act for whom, and what they
 * may be given at most. Absent: the CA issues no delegated certificates (POST /delegate is 403).
 *
 *   delegation:
 *     maxTtl: 1h                     # every delegated certificate, at most (default 1h)
 *     rate: { burst: 2000, perMinute: 2000 }  # POST /delegate per actor (the default; 429 beyond)
 *     actors:
 *       - actor: service/chat-platform
 *         for: { teams: [sre] }      # whom it may act for: a policy rule's subjects
 *         teams: [sre, dev]          # at most these of the delegator's teams (absent: any)
 *         roles: [oncall]            # at most these roles (absent: any)
 *         maxTtl: 1h                 # this actor's cap (default: delegation.maxTtl)
 *         clientId: chat-platform    # its client id at the identity provider (ID tokens, `login.providers`)
 */
import { z } from 'zod';
import { isValidPrincipalId, isValidTeamOrRole, isValidToolGlob, MAX_DELEGATED_TOOLS, toolGlobsTooLarge } from '../identity/names.js';
import { SubjectsSchema } from '../policy/schema.js';
import { compileSubjects, type PolicySubject } from '../policy/subjects.js';
import { isDuration } from '../util/duration.js';

const duration = z.string().refine(isDuration, 'must be a duration such as 1h or 30m');
const teamOrRole = z.string().refine(isValidTeamOrRole, 'must be a team or role name');

export const DelegationActorSchema = z.strictObject({
  /** the actor, as `service/<id>` or `user/<id>` */
  actor: z.string().refine((a) => /^(user|service)\/.+$/.test(a) && isValidPrincipalId(a.slice(a.indexOf('/') + 1)), 'must be service/<id> or user/<id>'),
  /** whom it may act for, as a policy rule's subjects (users, services, teams, roles, principals) */
  for: SubjectsSchema,
  teams: z.array(teamOrRole).optional(),
  roles: z.array(teamOrRole).optional(),
  /** profile v1.2: the tool globs this actor may be limited to at most (the policy's glob syntax); absent: any */
  tools: z
    .array(z.string().refine(isValidToolGlob, 'must be a tool name or glob (the policy\'s syntax, 1-128 printable ASCII)'))
    .min(1)
    .max(MAX_DELEGATED_TOOLS)
    .superRefine((globs, ctx) => {
      const tooLarge = globs.every(isValidToolGlob) ? toolGlobsTooLarge(globs) : undefined;
      if (tooLarge) ctx.addIssue({ code: 'custom', message: tooLarge });
    })
    .optional(),
  maxTtl: duration.optional(),
  /** its OAuth client id at the configured identity providers: an ID token is exchanged only by the actor it was issued to (aud) */
  clientId: z.string().min(1).max(256).optional(),
});

export const DelegationSchema = z.strictObject({
  maxTtl: duration.optional(),
  /** POST /delegate per actor principal: a token bucket (rate-limit.ts; default DEFAULT_DELEGATE_RATE) */
  rate: z.strictObject({ burst: z.number().int().min(1).max(1_000_000), perMinute: z.number().int().min(0).max(1_000_000) }).optional(),
  actors: z.array(DelegationActorSchema).max(1000),
});

export type DelegationConfig = z.infer<typeof DelegationSchema>;
export type DelegationActorConfig = z.infer<typeof DelegationActorSchema>;

/** Whether the actor of `entry` may act for `delegator` (its `for:` subjects, as a policy rule's). */
export function mayActFor(entry: DelegationActorConfig, delegator: PolicySubject): boolean {
  return compileSubjects(entry.for).matches(delegator);
}
