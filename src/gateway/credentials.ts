/**
 * `credentials` of an upstream: secrets the gateway gives the upstream on a caller's behalf,
 * chosen by the caller's verified identity; the model and the client never see them. For a
 * stdio upstream they are environment variables of the caller's own process (`env`), for an
 * HTTP upstream request headers (`headers`, e.g. `Authorization: Bearer ...`:
 * upstream-credentials.ts). A secret is read when a process starts (from a file, or from the gateway's
 * environment) and is never written to a log, an audit line, an error or an answer: what the
 * gateway says about a credential names its entry and its source, never its value.
 */
import fs from 'node:fs';
import { z } from 'zod';

const secretSource = z.union([
  z.strictObject({ file: z.string().min(1) }),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }),
]);

/** A header's secret, and how the header's value is written (`{secret}` is replaced; default the secret alone). */
const headerSource = z.union([
  z.strictObject({ file: z.string().min(1), format: z.string().includes('{secret}').optional() }),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), format: z.string().includes('{secret}').optional() }),
]);

/** Header names the gateway sets or drops itself, or that frame the message: never a credential's. */
const RESERVED_HEADERS = /^(host|connection|keep-alive|transfer-encoding|content-length|content-type|upgrade|proxy-connection|te|trailer|accept|accept-encoding|mcp-session-id|mcp-protocol-version|mcp-name|last-event-id|x-forwarded-client-cert|x-forwarded-for|forwarded|cookie)$/i;

/** One entry: who it is for (any of the lists matching is enough; `*` in a name matches any characters), and the variables (stdio) or headers (HTTP) to set. */
export const CredentialSchema = z
  .strictObject({
    /** user ids (`alice`: users only, in every accepted trust domain) or principal URIs (`spiffe://acme.test/service/ci-bot`, `spiffe://*` for everyone) */
    principals: z.array(z.string().min(1)).optional(),
    teams: z.array(z.string().min(1)).optional(),
    roles: z.array(z.string().min(1)).optional(),
    /** stdio upstreams: variable name -> where its secret is read: `{file: path}` or `{env: NAME}` (the gateway's environment) */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), secretSource).optional(),
    /** HTTP upstreams: header name -> where its secret is read, and its `format` (`Bearer {secret}`) */
    headers: z
      .record(
        z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a header name'),
        headerSource,
      )
      .refine((h) => !Object.keys(h).some((k) => RESERVED_HEADERS.test(k)), 'a header the gateway sets or drops itself (Host, Content-Type, Mcp-*, X-Forwarded-*, ...) cannot carry a credential')
      .optional(),
  })
  .refine((c) => (c.env === undefined) !== (c.headers === undefined), 'give env (a stdio upstream\'s variables) or headers (an HTTP upstream\'s), not both')
  .refine((c) => (c.principals?.length ?? 0) + (c.teams?.length ?? 0) + (c.roles?.length ?? 0) > 0, 'name the principals, teams or roles this credential is for');

export type Credential = z.infer<typeof CredentialSchema>;

/** Who a process serves, as far as credentials are matched. */
export interface CredentialSubject {
  readonly principal?: string;
  readonly principalId?: string;
  readonly teams: readonly string[];
  readonly roles: readonly string[];
}

/** Reads one secret: a file's text without its final newline, or a variable of the gateway's environment; throws naming `where` and the source, never a value. */
export function readSecret(src: { file: string } | { env: string }, where: string, baseEnv: Record<string, string | undefined> | undefined): string {
  let value: string | undefined;
  if ('file' in src) {
    try {
      value = fs.readFileSync(src.file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new Error(`${where}: cannot read ${src.file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  } else value = baseEnv?.[src.env];
  if (!value) throw new Error(`${where}: ${'file' in src ? `${src.file} is empty` : `the gateway's environment has no ${src.env}`}`);
  return value;
}

const glob = (pattern: string) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

/** The index of the first entry for this subject, or -1. */
export function credentialFor(entries: readonly Credential[], who: CredentialSubject): number {
  return entries.findIndex(
    (c) =>
      (c.principals ?? []).some((p) =>
        // a URI pattern matches the whole principal; a bare id only a user's id, as a policy's `users` does (found in review: `alice` matched a service named alice, which then got alice's token)
        p.startsWith('spiffe://') ? who.principal !== undefined && glob(p).test(who.principal) : who.principalId !== undefined && who.principal !== undefined && /^spiffe:\/\/[^/]+\/user\//.test(who.principal) && glob(p).test(who.principalId),
      ) ||
      (c.teams ?? []).some((t) => who.teams.some((v) => glob(t).test(v))) ||
      (c.roles ?? []).some((r) => who.roles.some((v) => glob(r).test(v))),
  );
}

/** Reads an entry's variables (stdio); throws an Error naming the entry and the source (never a value) when one is missing or empty. */
export function readSecrets(entry: Credential, index: number, baseEnv: Record<string, string | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, src] of Object.entries(entry.env ?? {})) out[name] = readSecret(src, `credentials[${index}].env.${name}`, baseEnv);
  return out;
}
