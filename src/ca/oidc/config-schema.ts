/**
 * The `login:` section of config.yaml (#22, docs/login.md): the OpenID Connect providers people
 * sign in with at `ca serve` (`POST /login/sign`), and how their ID tokens' claims become a
 * certificate's principal, teams and roles. Shape only; what needs the rest of the config or
 * the file system (caFile, the limits' allow-lists) is checked by providers.ts at `ca serve`.
 */
import { z } from 'zod';
import { isValidTeamOrRole } from '../../identity/names.js';
import { isDuration } from '../../util/duration.js';
import { issuerProblem } from './issuer-url.js';

const duration = z.string().refine(isDuration, 'must be a duration such as 12h or 30m');
const teamOrRole = z.string().refine(isValidTeamOrRole, 'must be a team or role name (a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -)');
/** an OAuth scope token (RFC 6749 3.3): printable ASCII without space, `"` or `\` */
const scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'must be an OAuth scope (printable ASCII, no spaces)');

/** What one IdP group gives: teams and roles (both optional; an unmapped group gives nothing). */
const GroupGrantSchema = z.strictObject({
  teams: z.array(teamOrRole).max(64).optional(),
  roles: z.array(teamOrRole).max(64).optional(),
});

/** A domain name as emailDomain takes it: lowercase LDH labels, at least two, no trailing dot. */
export const EMAIL_DOMAIN_RE = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The claims that may name the principal (`user/<value>`); the value must fit the id rules. */
export const PRINCIPAL_CLAIMS = ['email', 'preferred_username', 'sub'] as const;

export const LoginProviderSchema = z.strictObject({
  /** a short name, shown to clients and written to the audit log */
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be a short name of a-z 0-9 . _ - (e.g. okta)'),
  /** the issuer exactly as the provider's ID tokens carry it in `iss` (and its discovery document names it) */
  issuer: z.string().superRefine((v, ctx) => {
    const problem = issuerProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  /** the OAuth client id that `mcp-mtls login` uses (a public client: code + PKCE, device flow) */
  clientId: z.string().min(1).max(256),
  /** the `aud` values accepted in ID tokens; default: [clientId] */
  audiences: z.array(z.string().min(1).max(256)).min(1).max(16).optional(),
  /** which claim names the principal: `user/<value>` (for `email`: `user/<local part>`, see emailDomain) */
  principalClaim: z.enum(PRINCIPAL_CLAIMS),
  /**
   * with `principalClaim: email` (required there, refused elsewhere): the one domain whose
   * verified addresses name a principal, `bob@<emailDomain>` -> `user/bob`; lowercase ASCII
   * (an IDN in its xn-- form). One domain only: `bob@a` and `bob@b` would be one principal
   */
  emailDomain: z.string().regex(EMAIL_DOMAIN_RE, 'must be a domain name in lowercase ASCII (an IDN in its xn-- form), e.g. acme.example').optional(),
  /** the claim holding the person's groups (a list of strings); default `groups` */
  groupsClaim: z.string().min(1).max(128).optional(),
  /** IdP group -> teams and roles; groups not listed give nothing */
  groups: z.record(z.string().min(1).max(256), GroupGrantSchema).optional(),
  /** refuse a sign-in whose groups map to nothing (OIDC_NO_GROUPS); default false: a certificate with no teams or roles */
  requireMappedGroup: z.boolean().optional(),
  /** lifetime of the certificates issued this way; default 12h, never beyond limits.client.maxTtl nor the intermediate's end */
  certTtl: duration.optional(),
  /** scopes the client asks for; default [openid, email, profile, groups] */
  scopes: z.array(scope).min(1).max(32).optional(),
  /** a PEM file (relative paths: against the CA folder) of CAs to trust for the issuer's TLS instead of the system's */
  caFile: z.string().min(1).optional(),
});

export const LoginSchema = z
  .strictObject({ providers: z.array(LoginProviderSchema).min(1).max(16) })
  .superRefine((login, ctx) => {
    const seen = new Map<string, number>();
    login.providers.forEach((p, i) => {
      for (const [what, key] of [['name', `name:${p.name}`], ['issuer', `issuer:${p.issuer}`]] as const) {
        if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['providers', i, what], message: `${what} "${what === 'name' ? p.name : p.issuer}" is also providers[${seen.get(key)}]'s: each provider has its own name and issuer` });
        else seen.set(key, i);
      }
      if (p.scopes && !p.scopes.includes('openid')) ctx.addIssue({ code: 'custom', path: ['providers', i, 'scopes'], message: 'must include openid' });
      if (p.principalClaim === 'email' && p.emailDomain === undefined) {
        ctx.addIssue({ code: 'custom', path: ['providers', i, 'emailDomain'], message: 'is required with principalClaim: email: only verified addresses at this one domain name a principal (bob@acme.example -> user/bob), so that an address elsewhere (bob@evil.example) never does. For people of several domains, use principalClaim: preferred_username or sub' });
      }
      if (p.principalClaim !== 'email' && p.emailDomain !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['providers', i, 'emailDomain'], message: `applies only with principalClaim: email (this provider maps ${p.principalClaim}): remove it, or set principalClaim: email` });
      }
    });
  });

export type LoginConfig = z.infer<typeof LoginSchema>;
export type LoginProviderConfig = z.infer<typeof LoginProviderSchema>;
export const DEFAULT_SCOPES: readonly string[] = ['openid', 'email', 'profile', 'groups'];
export const DEFAULT_LOGIN_CERT_TTL = '12h';
