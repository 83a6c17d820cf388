/**
 * The gateway's session table: an MCP session (`Mcp-Session-Id`) is bound to the certificate
 * that opened it, per route, so a session id seen or guessed by another client is useless to it.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { IdleMap } from '../util/idle-map.js';

export interface SessionTableOptions {
  /** a session unused this long is forgotten; default 8 h */
  readonly idleMs?: number;
  /** at most this many sessions are remembered, least recently used forgotten first; default 100,000 */
  readonly max?: number;
  /** of them, at most this many per certificate (default 1,000): past it, that certificate's own oldest goes, never another's */
  readonly maxPerCertificate?: number;
}

/** The session id a request names (the first, if the header came twice). */
export function sessionIdOf(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['mcp-session-id'];
  return Array.isArray(header) ? header[0] : header;
}

export class SessionTable {
  // "<route prefix> <session id>" -> certificate fingerprint
  readonly #owners: IdleMap<string, string>;
  /** per certificate fingerprint, its sessions' keys, oldest first (found in review: one certificate opening sessions without end pushed everyone else's out) */
  readonly #byCertificate = new Map<string, Set<string>>();
  readonly #perCertificate: number;

  constructor(options: SessionTableOptions = {}) {
    this.#perCertificate = options.maxPerCertificate ?? 1_000;
    this.#owners = new IdleMap({ idleMs: options.idleMs ?? 8 * 3_600_000, max: options.max ?? 100_000, onEvict: (key, fingerprint) => this.#unlist(key, fingerprint) });
  }

  #unlist(key: string, fingerprint: string): void {
    const keys = this.#byCertificate.get(fingerprint);
    if (keys?.delete(key) && keys.size === 0) this.#byCertificate.delete(fingerprint);
  }

  /** Why this certificate may not use the session; undefined when it opened it. */
  refusal(prefix: string, sid: string, fingerprint: string): string | undefined {
    const key = `${prefix} ${sid}`;
    if (this.#owners.get(key) === fingerprint) return undefined;
    return this.#owners.has(key) ? 'the session belongs to another certificate' : 'unknown session';
  }

  /**
   * Learns from the upstream's answer: a session it opened for a request that named none
   * belongs to the caller's certificate; a session the caller ended (DELETE) is forgotten.
   */
  answered(prefix: string, request: { readonly method: string | undefined; readonly sid: string | undefined }, answer: { readonly statusCode: number; readonly headers: Record<string, unknown> }, fingerprint: string): void {
    const opened = answer.headers['mcp-session-id'];
    if (typeof opened === 'string' && request.sid === undefined) {
      const key = `${prefix} ${opened}`;
      const before = this.#owners.get(key);
      if (before !== undefined) this.#unlist(key, before);
      let keys = this.#byCertificate.get(fingerprint);
      if (!keys) this.#byCertificate.set(fingerprint, (keys = new Set()));
      // this certificate's own oldest session makes room, never another's
      for (const old of keys) {
        if (keys.size < this.#perCertificate) break;
        keys.delete(old);
        this.#owners.delete(old);
      }
      keys.add(key);
      this.#owners.set(key, fingerprint);
    }
    if (request.method === 'DELETE' && request.sid !== undefined && answer.statusCode < 300) {
      const key = `${prefix} ${request.sid}`;
      const owner = this.#owners.get(key);
      if (owner !== undefined) this.#unlist(key, owner);
      this.#owners.delete(key);
    }
  }
}
