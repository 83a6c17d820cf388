/**
 * SSE resumption through the gateway (`Last-Event-ID`, SEP-1699 polling): the gateway records
 * the id of every event it wrote to a client, with what that stream may carry (the requests its
 * POST forwarded, what each asked, which were answered), keyed by the route, the MCP session and
 * the caller's certificate. A GET naming a `Last-Event-ID` is forwarded only when that id is one
 * the gateway wrote to this certificate in this session on this route; the replayed stream is
 * then decided as the stream it resumes (the same per-caller filters, the same request ids: a
 * response to a request the gateway answered itself, hidden or not, is dropped as it would be
 * live). Any other id is refused before the upstream sees it: an event id seen, guessed or
 * copied from another caller's (or another session's) stream gives nothing, even when the
 * upstream keeps one event store for every session and would replay it. Such an upstream may
 * also replay another caller's events on a stream resumed with one's own id (the SDK gives
 * every session's GET stream one stream id): an event the gateway wrote to another caller is
 * dropped; one it never wrote to anyone cannot be told apart, so give each session its own store.
 */
import type { AskedLists } from './answer-filter.js';
import { IdleMap } from '../util/idle-map.js';

/** What a stream may carry; shared by the stream and every resumption of it. */
export interface StreamContext {
  /** ids of the requests its POST forwarded (empty for a GET stream) */
  readonly requestIds: ReadonlySet<unknown>;
  /** what each list or completion request of that POST asked (its answer is filtered with it) */
  readonly asked: AskedLists;
  /** the request ids answered so far, on this stream or a resumption */
  readonly answered: Set<unknown>;
}

export interface ResumeTableOptions {
  /** an event id not resumed from for this long is forgotten; default 1 h */
  readonly idleMs?: number;
  /** at most this many event ids are remembered, least recently used forgotten first; default 100,000 */
  readonly max?: number;
}

/** Who may resume: the route, the session (none for a stateless upstream) and the certificate. */
export interface StreamOwner {
  readonly prefix: string;
  readonly sid: string | undefined;
  readonly fingerprint: string;
}

const keyOf = (o: StreamOwner, eventId: string) => JSON.stringify([o.prefix, o.sid ?? null, o.fingerprint, eventId]);
const ownerOf = (o: StreamOwner) => JSON.stringify([o.sid ?? null, o.fingerprint]);

/** A stream remembered for resumption keeps at most this much of what its requests asked. */
export const MAX_REMEMBERED_ASK_BYTES = 4096;

/**
 * The context of a live stream as the table keeps it (the same request ids and answered set):
 * of what each request asked, only what its answer's filter reads (a list's filter reads the
 * result alone; a completion's the reference, the argument's name and the context), so a table
 * of 100,000 ids cannot be made to hold megabytes of request parameters per id (found thinking
 * as an attacker: 4 MiB of `tools/list` params per POST, kept by its priming event's id).
 * Undefined when the ids and that are larger than
 * {@link MAX_REMEMBERED_ASK_BYTES}: such a stream is not resumable (a resumption gets 400).
 */
export function rememberedContext(live: StreamContext): StreamContext | undefined {
  const kept: AskedLists = new Map();
  let bytes = 0;
  for (const id of live.requestIds) bytes += JSON.stringify(id).length;
  if (bytes > MAX_REMEMBERED_ASK_BYTES) return undefined;
  for (const [id, a] of live.asked) {
    const p = a.params as { ref?: unknown; argument?: { name?: unknown }; context?: unknown } | undefined;
    const params = a.method === 'completion/complete' && p ? { ref: p.ref, argument: { name: p.argument?.name }, context: p.context } : undefined;
    bytes += a.method.length + (params ? JSON.stringify(params).length : 0);
    if (bytes > MAX_REMEMBERED_ASK_BYTES) return undefined;
    kept.set(id, { method: a.method, params });
  }
  return { requestIds: live.requestIds, asked: kept, answered: live.answered };
}

export class ResumeTable {
  readonly #events: IdleMap<string, StreamContext>;
  // "[route prefix, event id]" -> the owner (session, certificate) it was first written to
  readonly #writtenTo: IdleMap<string, string>;

  constructor(options: ResumeTableOptions = {}) {
    this.#events = new IdleMap({ idleMs: options.idleMs ?? 3_600_000, max: options.max ?? 100_000 });
    this.#writtenTo = new IdleMap({ idleMs: options.idleMs ?? 3_600_000, max: options.max ?? 100_000 });
  }

  /** An event with this id was written to the owner's stream of this context (undefined: a stream too large to resume). */
  wrote(owner: StreamOwner, eventId: string, ctx: StreamContext | undefined): void {
    if (eventId === '') return; // an empty id resets the reader's: nothing to resume from
    if (ctx) this.#events.set(keyOf(owner, eventId), ctx);
    const at = JSON.stringify([owner.prefix, eventId]);
    if (!this.#writtenTo.has(at)) this.#writtenTo.set(at, ownerOf(owner));
  }

  /** Whether an event with this id was written to another owner's stream on this route (so not one for this owner). */
  writtenToAnother(owner: StreamOwner, eventId: string): boolean {
    const to = this.#writtenTo.get(JSON.stringify([owner.prefix, eventId]));
    return to !== undefined && to !== ownerOf(owner);
  }

  /** The context of the stream the owner may resume after `eventId`; undefined when that id was not written to them. */
  resumable(owner: StreamOwner, eventId: string): StreamContext | undefined {
    return this.#events.get(keyOf(owner, eventId));
  }

  /** How many event ids are remembered. */
  get size(): number {
    return this.#events.size;
  }
}
