/**
 * The SDK adapters' default event store for resumable SSE streams (SEP-1699: a server may close
 * a stream mid-call, the client comes back with `Last-Event-ID` and gets what it missed): in
 * memory, one store per session (so one session's event ids mean nothing in another, and a
 * session is bound to the certificate that opened it), bounded in events and in bytes, the
 * oldest events going first. The SDKs' own `InMemoryEventStore` is an example without bounds,
 * shared by every session that is given it.
 */
import { randomBytes } from 'node:crypto';

/** The JSON-RPC message type both SDKs' event stores carry (structurally the same). */
type Message = object;

/** The event store interface of both SDKs (`EventStore` of `@modelcontextprotocol/sdk` 1.x and `@modelcontextprotocol/server` 2.x). */
export interface SseEventStore {
  storeEvent(streamId: string, message: Message): Promise<string>;
  getStreamIdForEventId?(eventId: string): Promise<string | undefined>;
  replayEventsAfter(lastEventId: string, options: { send: (eventId: string, message: never) => Promise<void> }): Promise<string>;
}

/** Bounds of the default event store (one per session, in memory; the oldest events go first). */
export interface EventStoreLimits {
  /** at most this many events per session; default 1,000 */
  readonly maxEvents?: number;
  /** at most this many bytes of messages per session (the newest event is always kept); default 1 MiB */
  readonly maxBytes?: number;
}

export const DEFAULT_EVENT_STORE_LIMITS = { maxEvents: 1_000, maxBytes: 1024 * 1024 } as const;

interface StoredEvent {
  readonly streamId: string;
  readonly message: Message;
  readonly bytes: number;
}

/** A per-session in-memory event store, bounded in events and bytes (oldest dropped first). */
export class BoundedEventStore implements SseEventStore {
  // insertion order is event order
  readonly #events = new Map<string, StoredEvent>();
  readonly #prefix = randomBytes(6).toString('base64url');
  readonly #maxEvents: number;
  readonly #maxBytes: number;
  #seq = 0;
  #bytes = 0;

  constructor(limits: EventStoreLimits = {}) {
    this.#maxEvents = limits.maxEvents ?? DEFAULT_EVENT_STORE_LIMITS.maxEvents;
    this.#maxBytes = limits.maxBytes ?? DEFAULT_EVENT_STORE_LIMITS.maxBytes;
  }

  async storeEvent(streamId: string, message: Message): Promise<string> {
    const id = `${this.#prefix}.${++this.#seq}`;
    const bytes = Buffer.byteLength(JSON.stringify(message)) + streamId.length + id.length;
    this.#events.set(id, { streamId, message, bytes });
    this.#bytes += bytes;
    for (const [oldId, e] of this.#events) {
      if (this.#events.size <= 1 || (this.#events.size <= this.#maxEvents && this.#bytes <= this.#maxBytes)) break;
      this.#events.delete(oldId);
      this.#bytes -= e.bytes;
    }
    return id;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.#events.get(eventId)?.streamId;
  }

  async replayEventsAfter(lastEventId: string, { send }: { send: (eventId: string, message: never) => Promise<void> }): Promise<string> {
    const last = this.#events.get(lastEventId);
    if (!last) return '';
    let after = false;
    for (const [id, e] of [...this.#events]) {
      if (id === lastEventId) after = true;
      // a priming event ({}) carries no message: nothing to send again
      else if (after && e.streamId === last.streamId && Object.keys(e.message).length > 0) await send(id, e.message as never);
    }
    return last.streamId;
  }

  /** events and bytes held now */
  get usage(): { events: number; bytes: number } {
    return { events: this.#events.size, bytes: this.#bytes };
  }
}
