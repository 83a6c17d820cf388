/**
 * Credentials of an HTTP upstream (credentials.ts): a request header per caller, e.g.
 * `Authorization: Bearer <alice's token>`, chosen by the caller's verified identity.
 *
 * - Secrets are read when the gateway starts and on reload (SIGHUP, a certificate or CRL
 *   change), never per request; one that cannot be read is logged (entry and source, never a
 *   value) and its callers are refused until a reload reads it.
 * - A caller no entry is for is refused (403, audited) when the route requires credentials
 *   (the default): never another caller's credential, never a shared one unless an entry names
 *   everyone (`principals: ["*"]`) explicitly.
 * - What the upstream answers (messages, response headers) has the caller's secrets replaced by
 *   `[redacted]` (redact.ts): an upstream that echoes the header it got does not show it to the model.
 * - Every header name any entry sets is removed from every client request on the route, in
 *   every spelling (Node lowercases names; duplicates are one joined value), so a client can
 *   neither replace nor add to the injected value, nor send its own where it has no entry.
 */
import type { Identity } from '../identity/identity.js';
import { credentialFor, readSecret, type Credential } from './credentials.js';
import { redactor, type Redactor } from './redact.js';

/** What a request carries for its caller: the headers to set, or why it is refused. */
export type CredentialHeaders = { readonly headers: Readonly<Record<string, string>> } | { readonly refused: string };

const NONE: CredentialHeaders = { headers: {} };

export class UpstreamCredentials {
  readonly #entries: readonly Credential[];
  readonly #required: boolean;
  readonly #route: string;
  readonly #log: (line: string) => void;
  /** per entry: its headers with their values, or undefined when a secret could not be read */
  #values: (CredentialHeaders | undefined)[] = [];
  /** per entry: its secrets, to take out of what the upstream answers (redact.ts) */
  #redactors: Redactor[] = [];
  /** per identity object (one per TLS session), the entry it gets: matched once */
  #byIdentity = new WeakMap<Identity, number>();
  /** the header names (lowercase) removed from every client request on the route */
  readonly names: ReadonlySet<string>;

  constructor(route: string, entries: readonly Credential[], required: boolean, log: (line: string) => void) {
    this.#route = route;
    this.#entries = entries;
    this.#required = required;
    this.#log = log;
    this.names = new Set(entries.flatMap((e) => Object.keys(e.headers ?? {}).map((h) => h.toLowerCase())));
  }

  /** Reads every secret (at start and on reload); logs, without values, what cannot be read. */
  load(baseEnv: Record<string, string | undefined> | undefined): void {
    const redactors: Redactor[] = [];
    this.#values = this.#entries.map((e, i) => {
      const out: Record<string, string> = {};
      const secrets: string[] = [];
      try {
        for (const [name, src] of Object.entries(e.headers ?? {})) {
          const secret = readSecret(src, `credentials[${i}].headers.${name}`, baseEnv);
          // a header value cannot hold a line break or other control characters: said without the value
          if (/[\x00-\x08\x0a-\x1f\x7f]/.test(secret)) throw new Error(`credentials[${i}].headers.${name}: the secret holds a line break or a control character`);
          out[name.toLowerCase()] = (src.format ?? '{secret}').split('{secret}').join(secret);
          secrets.push(secret);
        }
        // an upstream that echoes the header it got (an error naming the token) shows the caller `[redacted]` (redact.ts)
        redactors[i] = redactor(secrets);
        return { headers: out };
      } catch (err) {
        this.#log(`route ${this.#route}: ${(err as Error).message}; its callers are refused until a reload reads it`);
        return undefined;
      }
    });
    this.#redactors = redactors;
  }

  /** The headers for this caller's requests, or why the caller is refused (no secret in it). */
  for(identity: Identity): CredentialHeaders {
    const i = this.#entryOf(identity);
    if (i === -1) return this.#required ? { refused: `this upstream needs a credential, and the gateway has none for ${identity.actingFor ? `${identity.actingFor.principal} (via ${identity.principal})` : identity.principal}; ask the gateway's operator` } : NONE;
    return this.#values[i] ?? { refused: 'the credential for this upstream is unavailable (the gateway\'s log says why)' };
  }

  /** What takes this caller's secrets out of the upstream's answer; undefined when it has none. */
  redactorFor(identity: Identity): Redactor | undefined {
    const i = this.#entryOf(identity);
    return i === -1 ? undefined : this.#redactors[i];
  }

  #entryOf(identity: Identity): number {
    let i = this.#byIdentity.get(identity);
    if (i === undefined) {
      // a delegated certificate (docs/delegation.md) gets the credential of the person it acts
      // for, with the teams and roles delegated to it: the platform's own entry would give every
      // person it serves one credential, the collapse delegation exists to end
      const who = identity.actingFor ?? identity;
      i = credentialFor(this.#entries, { principal: who.principal, principalId: who.id, teams: who.teams, roles: who.roles });
      this.#byIdentity.set(identity, i);
    }
    return i;
  }
}
