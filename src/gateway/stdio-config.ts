/** gateway.yaml: a route's `stdio` upstream (a command the gateway runs), instead of an `upstream` URL. */
import { z } from 'zod';
import { isDuration } from '../util/duration.js';
import { namesCaller } from './stdio-upstream.js';
import { CredentialSchema } from './credentials.js';

/** A stdio upstream: the command, its args, env and working directory, and its process model. */
export const StdioRouteSchema = z
  .strictObject({
    /** the program (found on PATH), e.g. `npx` */
    command: z.string().min(1),
    /** its arguments; `{principal.id}`, `{principal.kind}`, `{trustDomain}` (per-principal) and `{team}` (per-team) name the caller */
    args: z.array(z.string()).default([]),
    /** variables for the process (it gets only these and PATH, HOME, LANG ... from the gateway's environment) */
    env: z.record(z.string(), z.string()).default({}),
    /** its working directory */
    cwd: z.string().optional(),
    /** one process for every caller, one per certificate principal, or one per team */
    processModel: z.enum(['shared', 'per-principal', 'per-team']).default('shared'),
    /** at most this many processes run (per-principal / per-team), the least recently used idle one stopped first */
    maxProcesses: z.number().int().positive().default(16),
    /** a per-principal / per-team process unused this long is stopped */
    idleTimeout: z.string().refine(isDuration, 'a duration such as 30s or 2m').default('10m'),
    /** a longer stdout line (one JSON-RPC message) kills the process */
    maxLineBytes: z.number().int().positive().default(16 * 1024 * 1024),
    /** pass the clients' roots to the process (default false: a client's roots would widen the folders its args allow) */
    clientRoots: z.boolean().default(false),
    /** secrets injected as environment variables into a caller's own process, chosen by identity (credentials.ts) */
    credentials: z.array(CredentialSchema).optional(),
    /** a caller no credentials entry is for is refused (default true when there are credentials) */
    credentialsRequired: z.boolean().optional(),
  })
  .refine((s) => !(s.credentials ?? []).some((c) => c.headers), 'a stdio upstream gets credentials as env (variables of its process), not headers')
  .refine((s) => s.processModel !== 'shared' || !s.credentials?.length, 'a shared process serves every caller: credentials need processModel per-principal or per-team')
  .refine((s) => s.processModel !== 'shared' || ![...s.args, ...Object.values(s.env), s.cwd ?? ''].some(namesCaller), 'a shared process serves every caller: {principal.id}, {principal.kind}, {trustDomain} need processModel per-principal, {team} per-team')
  .refine((s) => s.processModel !== 'per-principal' || ![...s.args, ...Object.values(s.env), s.cwd ?? ''].some((v) => v.includes('{team}')), 'a certificate may name several teams: {team} needs processModel per-team')
  .refine((s) => s.processModel !== 'per-team' || ![...s.args, ...Object.values(s.env), s.cwd ?? ''].some((v) => /\{(principal\.id|principal\.kind|trustDomain)\}/.test(v)), 'a per-team process serves every member of the team: {principal.id}, {principal.kind} and {trustDomain} need processModel per-principal');

/** Splits a command line as a shell would, without running one: words, 'single' and "double" quotes, backslash escapes. */
export function splitCommandLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let any = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      any = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      any = true;
    } else if (/\s/.test(ch)) {
      if (any || cur) out.push(cur);
      cur = '';
      any = false;
    } else cur += ch;
  }
  if (quote) throw new Error(`unclosed ${quote} in the command line`);
  if (any || cur) out.push(cur);
  return out;
}

/** A stdio route with its relative paths (cwd, credential files) resolved against gateway.yaml's folder. */
export function resolveStdioPaths<T extends { cwd?: string | undefined; credentials?: { env?: Record<string, { file: string } | { env: string }> | undefined }[] | undefined }>(s: T, abs: (p: string) => string): T {
  return {
    ...s,
    ...(s.cwd ? { cwd: abs(s.cwd) } : {}),
    ...(s.credentials ? { credentials: s.credentials.map((c) => ({ ...c, env: Object.fromEntries(Object.entries(c.env ?? {}).map(([k, v]) => [k, 'file' in v ? { file: abs(v.file) } : v])) })) } : {}),
  };
}
