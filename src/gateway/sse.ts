/**
 * Server-sent events, rewritten one event at a time as they stream through: each complete
 * event (ended by a blank line) is handed to `rewrite`, which may change its data; nothing
 * is buffered beyond the event in progress, so progress notifications arrive as they are sent.
 */
import { Transform } from 'node:stream';

export function sseRewriter(rewrite: (data: string) => string | undefined): Transform {
  let pending = '';
  const emitEvent = (raw: string, push: (s: string) => void) => {
    const lines = raw.split(/\r?\n/);
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
    if (data.length === 0) return push(`${raw}\n\n`);
    const replaced = rewrite(data.join('\n'));
    if (replaced === undefined) return push(`${raw}\n\n`);
    const others = lines.filter((l) => !l.startsWith('data:'));
    push(`${[...others, ...replaced.split('\n').map((d) => `data: ${d}`)].join('\n')}\n\n`);
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      pending += chunk.toString('utf8');
      let i: number;
      while ((i = pending.search(/\r?\n\r?\n/)) >= 0) {
        const raw = pending.slice(0, i);
        const sep = /^\r?\n\r?\n/.exec(pending.slice(i))![0].length;
        pending = pending.slice(i + sep);
        emitEvent(raw, (s) => this.push(s));
      }
      done();
    },
    flush(done) {
      if (pending.length > 0) this.push(pending);
      done();
    },
  });
}
