/**
 * Server-sent events, rewritten one event at a time as they stream through: each complete
 * event (ended by a blank line: LF, CRLF or CR line endings) is handed to `rewrite`, which
 * may change its data; nothing is buffered beyond the event in progress, so progress
 * notifications arrive as they are sent. Bytes are decoded across chunk boundaries, the
 * search for the end of an event resumes where it stopped, and one event is capped in size.
 *
 * `rewrite` gets the event's data, its `event:` name (undefined for the default
 * "message") and its `id:` (undefined when it has none); it returns new data, `undefined` to keep the event as it came, or `null` to drop
 * the event, or `{ end: text }` to write `text` and end the output there (the rest of the input
 * is discarded). Events without data lines (comments, `retry:`, a priming `id:`) pass as they are.
 * `end`, if given, may add events after the last one (when the upstream ends the stream).
 * `onId`, if given, is told the `id:` of every event written out (a dropped event's id never
 * reaches the reader, so it is not told): the ids a reader may resume from (`Last-Event-ID`).
 */
import { StringDecoder } from 'node:string_decoder';
import { Transform } from 'node:stream';

export const MAX_EVENT_BYTES = 64 * 1024 * 1024;

const BOUNDARY = /\r\n\r\n|\n\n|\r\r/g;

/** The event's id as a reader takes it (the last `id` field; one containing NUL is ignored), or undefined. */
function eventIdOf(lines: readonly string[]): string | undefined {
  let id: string | undefined;
  for (const l of lines) {
    if (l !== 'id' && !l.startsWith('id:')) continue;
    const v = l.length <= 3 ? '' : l.slice(l.startsWith('id: ') ? 4 : 3);
    if (!v.includes('\0')) id = v;
  }
  return id;
}

export function sseRewriter(rewrite: (data: string, event: string | undefined, id: string | undefined) => string | undefined | null | { end: string }, end?: () => string | undefined, onId?: (id: string) => void): Transform {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let ended = false;
  let started = false;
  let scanned = 0; // no boundary before this offset of `pending`
  const emitEvent = (raw: string, push: (s: string) => void) => {
    const lines = raw.split(/\r\n|\n|\r/);
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
    const id = eventIdOf(lines);
    if (data.length === 0) {
      if (id !== undefined) onId?.(id);
      return push(`${raw}\n\n`);
    }
    const name = lines.findLast((l) => l.startsWith('event:'))?.slice(6).trim(); // the last one counts
    const replaced = rewrite(data.join('\n'), name === '' ? undefined : name, id);
    if (replaced === null) return;
    if (id !== undefined && typeof replaced !== 'object') onId?.(id);
    if (typeof replaced === 'object') {
      push(replaced.end);
      ended = true;
      return;
    }
    if (replaced === undefined) return push(`${raw}\n\n`);
    // only the fields a reader would use besides data: nothing it could read differently
    const others = lines.filter((l) => /^(?:id|event|retry)(?::|$)/.test(l));
    push(`${[...others, ...replaced.split('\n').map((d) => `data: ${d}`)].join('\n')}\n\n`);
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (ended) return done();
      pending += decoder.write(chunk);
      if (!started && pending.length > 0) {
        started = true;
        if (pending.charCodeAt(0) === 0xfeff) pending = pending.slice(1); // readers drop a leading BOM: so must we, or "\uFEFFdata:" would pass unread
      }
      BOUNDARY.lastIndex = Math.max(0, scanned - 3);
      let m: RegExpExecArray | null;
      let from = 0;
      while (!ended && (m = BOUNDARY.exec(pending))) {
        emitEvent(pending.slice(from, m.index), (s) => this.push(s));
        from = m.index + m[0].length;
      }
      if (ended) {
        pending = '';
        this.push(null);
        return done();
      }
      pending = pending.slice(from);
      scanned = pending.length;
      if (pending.length > MAX_EVENT_BYTES) return done(new Error(`an SSE event is larger than ${MAX_EVENT_BYTES} bytes`));
      done();
    },
    flush(done) {
      if (ended) return done();
      pending += decoder.end();
      if (pending.length > 0) emitEvent(pending, (s) => this.push(s));
      const tail = end?.();
      if (tail) this.push(tail);
      done();
    },
  });
}
