/**
 * The naming rules of identity profile v1 (identity.md), shared by the CLI (which refuses
 * bad input) and the readers (which reject bad certificates). Pure.
 */
import { MtlsError } from '../errors.js';
import { compilePattern, expandAlternatives } from '../util/glob.js';

export const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
export const PRINCIPAL_ID_RE = /^[A-Za-z0-9._-]{1,128}$/;
export const TEAM_OR_ROLE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A host name (LDH labels, optional leading "*." wildcard), at most 253 characters. */
const DNS_RE = /^(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Whether `name` is a DNS host name: LDH labels of 1-63 characters, at most 253 in all, with
 * an optional leading `*.` wildcard. Accepts a single label such as `localhost`.
 */
export const isValidDnsName = (name: string): boolean => name.length <= 253 && DNS_RE.test(name);

/** What a principal is: a person (`user`) or a program (`service`); the second segment of its URI. */
export type PrincipalKind = 'user' | 'service';
/** Every {@link PrincipalKind}, for validating input and listing choices. */
export const PRINCIPAL_KINDS: readonly PrincipalKind[] = ['user', 'service'];

/** Whether `td` is a trust domain: 1-255 characters of `a-z 0-9 . _ -` (lowercase only), not `.` or `..`. */
export function isValidTrustDomain(td: string): boolean {
  return td.length > 0 && td.length <= 255 && TRUST_DOMAIN_RE.test(td) && td !== '.' && td !== '..';
}

/** Whether `id` is a principal id: 1-128 characters of `A-Z a-z 0-9 . _ -`, not `.` or `..`. */
export function isValidPrincipalId(id: string): boolean {
  return PRINCIPAL_ID_RE.test(id) && id !== '.' && id !== '..';
}

/** Whether `name` is a team or role name: a letter or digit, then up to 63 of `A-Z a-z 0-9 . _ -`. */
export const isValidTeamOrRole = (name: string): boolean => TEAM_OR_ROLE_RE.test(name);

/** Profile v1.2: at most this many tool globs in one delegation. */
export const MAX_DELEGATED_TOOLS = 32;

/**
 * Whether `glob` is a tool glob a delegation may carry (profile v1.2): 1-128 printable ASCII
 * characters (no space) in the policy's tool-glob syntax (src/util/glob.ts: `*`, `?`, `[a-z]`,
 * `{a,b}`), e.g. `read_*` or `{read,list}_repo`.
 */
export function isValidToolGlob(glob: string): boolean {
  if (!/^[\x21-\x7e]{1,128}$/.test(glob)) return false;
  try {
    compilePattern(glob);
    return true;
  } catch {
    return false;
  }
}

/**
 * Profile v1.2: the globs of one delegation together expand (`{a,b}` alternatives, and the
 * `a/b` form of `a/**\/b`) to at most this many characters. A server matches each new tool name
 * of a delegated call against all of them, at a cost of this size times the name's length
 * (src/util/glob.ts): 32 globs of 128 characters with 64 alternatives each made one call with a
 * fresh 1,020-character name cost about 3 s (review 2 of issue 23); at this bound about 10 ms.
 */
export const MAX_DELEGATED_TOOL_PATTERN = 1024;

/** The size {@link MAX_DELEGATED_TOOL_PATTERN} bounds (Infinity for a glob that does not compile). */
export function toolGlobsSize(globs: readonly string[]): number {
  let size = 0;
  for (const g of globs) {
    try {
      for (const v of expandAlternatives(g)) size += v.includes('/**/') ? 2 * v.length : v.length;
    } catch {
      return Infinity;
    }
  }
  return size;
}

/** Why these globs may not limit one delegation together (undefined: they may); each is checked with {@link isValidToolGlob} apart. */
export function toolGlobsTooLarge(globs: readonly string[]): string | undefined {
  const size = toolGlobsSize(globs);
  return size > MAX_DELEGATED_TOOL_PATTERN ? `the tool globs together expand to ${size} characters; a delegation allows ${MAX_DELEGATED_TOOL_PATTERN} (fewer globs, fewer {a,b} alternatives, or tool names)` : undefined;
}

export function assertTrustDomain(td: string): string {
  if (!isValidTrustDomain(td)) {
    throw new MtlsError('BAD_TRUST_DOMAIN', `invalid trust domain "${td}"`, {
      hint: 'use lowercase letters, digits, ".", "_" and "-", e.g. acme.example',
    });
  }
  return td;
}

export function assertPrincipalId(id: string, kind: PrincipalKind): string {
  if (!isValidPrincipalId(id)) {
    throw new MtlsError('BAD_NAME', `invalid ${kind} id "${id}"`, {
      hint: 'an id is 1-128 characters of A-Z a-z 0-9 . _ - and not "." or ".."',
    });
  }
  return id;
}

export function assertTeamOrRole(name: string, what: 'team' | 'role'): string {
  if (!isValidTeamOrRole(name)) {
    throw new MtlsError('BAD_NAME', `invalid ${what} name "${name}"`, {
      hint: `a ${what} name starts with a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -`,
    });
  }
  return name;
}
