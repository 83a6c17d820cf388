/**
 * Stateful serving in the SDK adapters: the options (one declaration for both adapters), the
 * per-session event store, and the session table (a session is bound to the certificate that
 * opened it; another certificate naming it is told it does not exist).
 */
import type { ServerResponse } from 'node:http';
import type { Identity } from '../identity/identity.js';
import type { AuditSink } from '../mtls/audit.js';
import type { MtlsRequest } from '../mtls/mtls-server.js';
import { IdleMap } from '../util/idle-map.js';
import { BoundedEventStore, type EventStoreLimits, type SseEventStore } from './event-store.js';
import { sendJson } from './http-body.js';

/**
 * The stateful mode of both SDK adapters: a server per MCP session (2025-era Streamable HTTP
 * sessions), bound to the certificate that opened it, so server-to-client requests (sampling,
 * elicitation, roots) and resumable streams work.
 */
export interface McpStatefulOptions {
  /** a server per session, bound to the certificate that opened it (SDK 2.x: for 2025-era clients; 2026-07-28 requests are per request) */
  readonly stateful?: boolean;
  /** stateful: a session unused this long is closed; default 8 h */
  readonly sessionIdleMs?: number;
  /** stateful: at most this many sessions, least recently used closed first; default 10,000 */
  readonly maxSessions?: number;
  /**
   * stateful: at most this many sessions per certificate, its least recently used closed first;
   * default 1,000. So one certificate opening sessions cannot push everyone else's out of
   * `maxSessions` (an initialize is cheap). Behind a gateway or proxy whose forwarded
   * certificates are not trusted, every client shares its certificate: raise it there.
   */
  readonly maxSessionsPerCertificate?: number;
  /**
   * stateful: resumable SSE streams (SEP-1699). A tool may close its stream mid-call
   * (`closeSSEStream()`) and the client resumes with `Last-Event-ID`, getting what it
   * missed, its result included. Each session keeps its events in a store of its own: by
   * default in memory, bounded ({@link EventStoreLimits}: 1,000 events, 1 MiB per session);
   * a function returns the store for each new session (your own, e.g. outside the process);
   * `false`: no event ids, nothing can be resumed. The SDK sends event ids (and the priming
   * event) only to clients of protocol 2025-11-25 or later. Stateless mode keeps no events: its
   * server ends with its request, so nothing could finish a call after its stream closed.
   */
  readonly eventStore?: false | EventStoreLimits | (() => SseEventStore);
  /** stateful: the reconnection delay, in milliseconds, the priming event tells clients (SSE `retry`); default none (the client's own) */
  readonly retryInterval?: number;
}

/** A new session's event store (its own, so one session's event ids mean nothing in another), or none. */
export function eventStoreOf(options: Pick<McpStatefulOptions, 'eventStore'>): SseEventStore | undefined {
  const o = options.eventStore;
  if (o === false) return undefined;
  if (typeof o === 'function') return o();
  return new BoundedEventStore(o);
}

/** The parts of an SDK session transport (1.x StreamableHTTPServerTransport, 2.x NodeStreamableHTTPServerTransport) the table uses. */
export interface SessionTransport {
  readonly sessionId?: string | undefined;
  handleRequest(req: MtlsRequest, res: ServerResponse, body?: unknown): Promise<void>;
  close(): Promise<void>;
}

/** The sessions of a stateful adapter, each bound to the certificate fingerprint that opened it. */
export class AdapterSessions<T extends SessionTransport> {
  readonly #sessions: IdleMap<string, { transport: T; fingerprint: string }>;
  // certificate fingerprint -> its session ids, least recently used first
  readonly #ofCert = new Map<string, Set<string>>();
  readonly #maxPerCert: number;

  constructor(options: Pick<McpStatefulOptions, 'sessionIdleMs' | 'maxSessions' | 'maxSessionsPerCertificate'>, private readonly audit?: AuditSink) {
    this.#maxPerCert = Math.max(1, options.maxSessionsPerCertificate ?? 1_000);
    this.#sessions = new IdleMap({
      idleMs: options.sessionIdleMs ?? 8 * 3_600_000,
      max: options.maxSessions ?? 10_000,
      onEvict: (id, s) => {
        this.#forget(id, s.fingerprint);
        void s.transport.close();
      },
    });
  }

  #forget(sid: string, fingerprint: string): void {
    const ids = this.#ofCert.get(fingerprint);
    ids?.delete(sid);
    if (ids?.size === 0) this.#ofCert.delete(fingerprint);
  }

  /** The session a request names: undefined (none named), null (refused, answered 404), or its transport. */
  find(req: MtlsRequest, res: ServerResponse, identity: Identity): T | null | undefined {
    const header = req.headers['mcp-session-id'];
    const id = Array.isArray(header) ? header[0] : header;
    if (!id) return undefined;
    const s = this.#sessions.get(id);
    if (!s || s.fingerprint !== identity.fingerprint) {
      // another certificate presenting someone's session id is told the session does not exist
      if (s) this.audit?.write({ event: 'session.refused', principal: identity.principal, fingerprint: identity.fingerprint, reason: 'the session belongs to another certificate' });
      sendJson(res, 404, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
      return null;
    }
    const ids = this.#ofCert.get(s.fingerprint);
    ids?.delete(id);
    ids?.add(id); // now the most recently used of its certificate
    return s.transport;
  }

  /** A session the SDK opened (its `onsessioninitialized`); past `maxSessionsPerCertificate`, that certificate's least recently used is closed. */
  opened(sid: string, transport: T, identity: Identity): void {
    const fingerprint = identity.fingerprint;
    this.#sessions.set(sid, { transport, fingerprint });
    let ids = this.#ofCert.get(fingerprint);
    if (!ids) this.#ofCert.set(fingerprint, (ids = new Set()));
    ids.add(sid);
    for (const oldest of ids) {
      if (ids.size <= this.#maxPerCert) break;
      const s = this.#sessions.get(oldest);
      this.#sessions.delete(oldest);
      ids.delete(oldest);
      void s?.transport.close();
    }
  }

  /** A session that closed. */
  closed(sid: string | undefined): void {
    if (!sid) return;
    const s = this.#sessions.get(sid);
    if (s) this.#forget(sid, s.fingerprint);
    this.#sessions.delete(sid);
  }

  get size(): number {
    return this.#sessions.size;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#sessions.values().map((s) => s.transport.close()));
    this.#sessions.clear();
    this.#ofCert.clear();
  }
}
