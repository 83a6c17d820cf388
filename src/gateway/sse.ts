/**
 * Server-sent events, rewritten one event at a time as they stream through: each complete
 * event (ended by a blank line: LF, CRLF or CR line endings) is handed to `rewrite`, which
 * may change its data; nothing is buffered beyond the event in progress, so progress
 * notifications arrive as they are sent. Bytes are decoded across chunk boundaries, the
 * search for the end of an event resumes where it stopped, and one event is capped in size.
 */
import { StringDecoder } from 'node:string_decoder';
import { Transform } from 'node:stream';

export const MAX_EVENT_BYTES = 64 * 1024 * 1024;

const BOUNDARY = /\r\n\r\n|\n\n|\r\r/g;

export function sseRewriter(rewrite: (data: string) => string | undefined): Transform {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let scanned = 0; // no boundary before this offset of `pending`
  const emitEvent = (raw: string, push: (s: string) => void) => {
    const lines = raw.split(/\r\n|\n|\r/);
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
    if (data.length === 0) return push(`${raw}\n\n`);
    const replaced = rewrite(data.join('\n'));
    if (replaced === undefined) return push(`${raw}\n\n`);
    const others = lines.filter((l) => !l.startsWith('data:'));
    push(`${[...others, ...replaced.split('\n').map((d) => `data: ${d}`)].join('\n')}\n\n`);
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      pending += decoder.write(chunk);
      BOUNDARY.lastIndex = Math.max(0, scanned - 3);
      let m: RegExpExecArray | null;
      let from = 0;
      while ((m = BOUNDARY.exec(pending))) {
        emitEvent(pending.slice(from, m.index), (s) => this.push(s));
        from = m.index + m[0].length;
      }
      pending = pending.slice(from);
      scanned = pending.length;
      if (pending.length > MAX_EVENT_BYTES) return done(new Error(`an SSE event is larger than ${MAX_EVENT_BYTES} bytes`));
      done();
    },
    flush(done) {
      pending += decoder.end();
      if (pending.length > 0) emitEvent(pending, (s) => this.push(s));
      done();
    },
  });
}
