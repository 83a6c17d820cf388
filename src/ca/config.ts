/** The CA folder's config.yaml: written once by `ca init`, read by every command. */
import fs from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { SubjectsSchema } from '../policy/schema.js';
import { MtlsError } from '../errors.js';
import { isValidTeamOrRole, isValidTrustDomain } from '../identity/names.js';
import { KEY_TYPES } from '../x509/keys.js';
import { isDuration } from '../util/duration.js';
import { canonicalDnsPattern, isIpOrCidr } from './limits.js';
import { DelegationSchema } from './delegation-config.js';
import { LoginSchema } from './oidc/config-schema.js';

const duration = z.string().refine(isDuration, 'must be a duration such as 24h or 90d');
const teamOrRole = z.string().refine(isValidTeamOrRole, 'must be a team or role name (a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -)');
/** kept in canonical form (lowercase ASCII, IDNA, no trailing dot), the form names are compared in */
const dnsPattern = z
  .string()
  .refine((p) => canonicalDnsPattern(p) !== undefined, 'must be a DNS name, *.suffix (one label) or **.suffix (any labels)')
  .transform((p) => canonicalDnsPattern(p) as string);
const ipOrCidr = z.string().refine(isIpOrCidr, 'must be an IP address or a CIDR block such as 10.0.0.0/8');

/**
 * Issuance limits (limits.ts): the longest lifetime per certificate type (absent: clients 30d,
 * servers 397d) and optional allow-lists; an allow-list that is present is exhaustive.
 */
const LimitsSchema = z.strictObject({
  /** client certificates (users and services) */
  client: z.strictObject({ maxTtl: duration.optional(), teams: z.array(teamOrRole).optional(), roles: z.array(teamOrRole).optional() }).optional(),
  /** server certificates */
  server: z.strictObject({ maxTtl: duration.optional(), dns: z.array(dnsPattern).optional(), ips: z.array(ipOrCidr).optional() }).optional(),
});

/**
 * The console under `ca serve` /console (docs/console.md). `view` and `act` name operators as a
 * policy rule's subjects do; absent, both are `{ roles: [ca-admin] }`; who may act may view.
 * Relative paths are against the CA folder.
 */
const ConsoleSchema = z.strictObject({
  view: SubjectsSchema.optional(),
  act: SubjectsSchema.optional(),
  /** the policy file the Policy page shows (the one the servers and gateway run) */
  policy: z.string().min(1).optional(),
  /** tool names for the policy matrix, besides those the policy names */
  tools: z.array(z.string().min(1).max(256)).max(1000).optional(),
  /**
   * where the Decisions page reads: `file`, the JSON-lines audit file servers and gateways append
   * to (`audit:` of gateway.yaml; `ca serve --decisions-file` sets or overrides it); without one, a
   * PostgreSQL store's `decisions` table (createAuditLog('postgres://...'), gateway.yaml
   * `decisions:`). `retention` (default 30d): rows of the table older than it are deleted.
   */
  decisions: z.strictObject({ file: z.string().min(1).optional(), retention: duration.optional() }).optional(),
});

export const CaConfigSchema = z
  .object({
    /** the config file's format version: 1 */
    version: z.literal(1),
    /** the identity profile version the CA issues (identity.md): 1 */
    profile: z.literal(1),
    /** the trust domain of every principal this CA issues, e.g. `example.test` */
    trustDomain: z.string().refine(isValidTrustDomain, 'must be lowercase [a-z0-9._-]+'),
    /** the CA's display name; the root and intermediate CNs are it plus " Root" / " Intermediate" */
    name: z.string().min(1).max(64),
    organization: z.string().min(1).max(64).optional(),
    /** the key type of the CA keys, and of keys the CA generates when a request names none */
    keyType: z.enum(KEY_TYPES),
    /** whether the CA keys are encrypted (a passphrase is needed to sign) */
    encryptedKeys: z.boolean(),
    /** when enabled, the intermediate may only certify the trust domain and these DNS names (and their subdomains) */
    nameConstraints: z.strictObject({ enabled: z.boolean(), dns: z.array(z.string()) }),
    /** the CRL distribution point URL put into issued certificates */
    crlUrl: z.url().optional(),
    /** default lifetimes, as durations such as `24h` (`ca init` writes 24h, 90d, 7d; crlTtl absent means 7d) */
    defaults: z.strictObject({ clientTtl: duration, serverTtl: duration, crlTtl: duration.optional() }),
    /** where the CA's state lives: absent for this folder, or postgres://USER@HOST:PORT/DB (never with a password) */
    store: z.string().min(1).optional(),
    /** issuance limits: maximum lifetimes (default: clients 30d, servers 397d) and allow-lists of teams, roles, DNS names, IPs */
    limits: LimitsSchema.optional(),
    /** the operator console of `ca serve` (docs/console.md): who may see it and act in it, the policy it shows, where decisions are read from */
    console: ConsoleSchema.optional(),
    /** delegated certificates (docs/delegation.md): which actors may act for whom, and what they may be given at most */
    delegation: DelegationSchema.optional(),
    /** sign-in with OpenID Connect providers at `ca serve` /login/sign (docs/login.md): issuers, client ids, the principal claim, groups -> teams and roles */
    login: LoginSchema.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    // an ID token at POST /delegate must be one only that actor could have received: a clientId
    // /login/sign also accepts would let the platform trade a person's token there for the
    // person's own certificate, and one shared by two actors would let each exchange the other's
    const owner = new Map<string, number>();
    const named = new Map<string, number>();
    c.delegation?.actors.forEach((a, i) => {
      // POST /delegate reads the first entry for an actor: a second one would be silently ignored
      if (named.has(a.actor)) ctx.addIssue({ code: 'custom', path: ['delegation', 'actors', i, 'actor'], message: `${a.actor} is also delegation.actors[${named.get(a.actor)}]: name each actor once` });
      else named.set(a.actor, i);
      if (a.clientId === undefined) return;
      const path = ['delegation', 'actors', i, 'clientId'];
      const p = c.login?.providers.findIndex((x) => (x.audiences ?? [x.clientId]).includes(a.clientId as string)) ?? -1;
      if (p !== -1) ctx.addIssue({ code: 'custom', path, message: `"${a.clientId}" is an audience login.providers[${p}] accepts at /login/sign: an ID token the actor received would sign in as the person there; give the actor its own client at the provider` });
      else if (owner.has(a.clientId)) ctx.addIssue({ code: 'custom', path, message: `"${a.clientId}" is also delegation.actors[${owner.get(a.clientId)}]'s: each actor has its own client id, so that no actor exchanges an ID token another received` });
      else owner.set(a.clientId, i);
    });
  });

/**
 * A CA's config.yaml, parsed and validated ({@link loadCaConfig}; `Authority.config`). Written
 * once by `ca init`; durations are strings such as `24h`.
 */
export type CaConfig = z.infer<typeof CaConfigSchema>;

/**
 * Reads and validates a CA's config.yaml (`file` is the file, not the CA folder). Validation is
 * strict: an unknown key is refused.
 *
 * @throws MtlsError `CA_NOT_FOUND` when the file cannot be read, `CA_CONFIG_INVALID` for bad
 *   YAML or a refused field (the message names the first one)
 */
export function loadCaConfig(file: string): CaConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MtlsError('CA_NOT_FOUND', `no CA config at ${file}`, {
      cause,
      hint: 'create a CA with `mcp-mtls ca init --trust-domain example.test`, or point --dir / MCP_MTLS_PKI_DIR at one',
    });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new MtlsError('CA_CONFIG_INVALID', `${file}: ${(e as Error).message}`, { hint: 'fix the YAML syntax' });
  }
  const parsed = CaConfigSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MtlsError('CA_CONFIG_INVALID', `${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`, {
      hint: 'restore config.yaml from backup or fix the named field',
    });
  }
  return parsed.data;
}

export function caConfigYaml(config: CaConfig): string {
  return `# mcp-mtls CA configuration (identity profile v${config.profile}). Written by \`mcp-mtls ca init\`.\n${YAML.stringify(config)}`;
}
