/**
 * The decisions page's data: the audit lines servers and gateways append to a JSON-lines file
 * (gateway.yaml `audit:`, `createAuditLog(file)` in a server; config.yaml `console.decisions.file`
 * names it). Read on each request, the last {@link MAX_TAIL} bytes only, so a long-running log
 * costs a bounded read, and only the bytes appended since the last request (createDecisionReader);
 * lines that are not JSON, or not `decision` / `auth.refused` events, are skipped. This is the console's path, not a request path of a server.
 */
import fs from 'node:fs';

/** The last bytes of the file the console reads. */
export const MAX_TAIL = 16 * 1024 * 1024;

/** One decision (or refused certificate) as the console shows it; nothing else of the line (no arguments). */
export interface DecisionLine {
  readonly time: string;
  readonly event: 'decision' | 'auth.refused';
  readonly principal?: string;
  readonly method?: string;
  readonly target?: string;
  readonly allowed: boolean;
  readonly ruleId?: string | null;
  readonly reason?: string;
}

const str = (v: unknown, max = 1024): string | undefined => (typeof v === 'string' ? v.slice(0, max) : undefined);

/** At most this many lines are kept (the newest), whatever their size. */
export const MAX_LINES = 200_000;

/** A torn last line (no newline yet) longer than this is not tried. */
const MAX_TORN = 64 * 1024;

/** The lines of a file read so far, and what the last read cost. */
export interface DecisionReader {
  /** the decision lines of the file's last `maxBytes` (at most MAX_LINES), oldest first; none when it does not exist */
  read(): DecisionLine[];
  /** bytes the last read() read from the file */
  readonly lastReadBytes: number;
}

/**
 * A reader of one decisions file that keeps what it parsed and reads only the bytes appended
 * since (a new file, a truncated or replaced one is read anew): a console page polled while
 * busy servers append costs what they appended, not a parse of megabytes on the CA's event
 * loop per request (before: ~1 s per request for a 16 MiB tail).
 */
export function createDecisionReader(file: string, maxBytes = MAX_TAIL): DecisionReader {
  let ident = '';
  let offset = 0; // bytes consumed: up to the end of the last complete line read
  let lines: DecisionLine[] = [];
  let sizes: number[] = [];
  let kept = 0; // bytes of the kept lines
  let lastReadBytes = 0;
  let midLine = false; // the bytes at `offset` continue a line whose start was not read
  const reset = () => {
    offset = 0;
    midLine = false;
    lines = [];
    sizes = [];
    kept = 0;
  };
  const read = (fd: number, from: number, length: number): Buffer => {
    const buf = Buffer.alloc(length);
    let off = 0;
    while (off < length) {
      const n = fs.readSync(fd, buf, off, length - off, from + off);
      if (n === 0) break;
      off += n;
    }
    lastReadBytes += off;
    return buf.subarray(0, off);
  };
  return {
    get lastReadBytes() {
      return lastReadBytes;
    },
    read() {
      lastReadBytes = 0;
      let fd: number;
      try {
        // O_NONBLOCK: a FIFO put in the file's place (by whoever can write its folder) would
        // block this open, and with it the CA's event loop, until something writes to it
        fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          reset();
          ident = '';
          return [];
        }
        throw e;
      }
      let torn: DecisionLine | undefined;
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile()) throw new Error(`the decisions file ${file} is not a regular file`);
        const id = `${st.dev}:${st.ino}`;
        if (id !== ident || st.size < offset) {
          reset();
          ident = id;
        }
        let start = offset;
        if (st.size - offset > maxBytes) {
          // more was appended than the window holds: the window is all new, its first line cut
          reset();
          start = st.size - maxBytes;
          midLine = start > 0;
        }
        let buf = read(fd, start, st.size - start);
        if (midLine) {
          const nl = buf.indexOf(10);
          if (nl < 0) {
            offset = st.size;
            return lines;
          }
          midLine = false;
          start += nl + 1;
          buf = buf.subarray(nl + 1);
        }
        const last = buf.lastIndexOf(10);
        for (let at = 0; at <= last; ) {
          const nl = buf.indexOf(10, at);
          const line = parseLine(buf.toString('utf8', at, nl));
          if (line) {
            lines.push(line);
            sizes.push(nl + 1 - at);
            kept += nl + 1 - at;
          }
          at = nl + 1;
        }
        offset = start + last + 1;
        // a last line being written (or a file without a final newline): tried, not consumed
        if (buf.length - (last + 1) <= MAX_TORN) torn = parseLine(buf.toString('utf8', last + 1));
        let drop = 0;
        while (lines.length - drop > MAX_LINES || (kept > maxBytes && drop < lines.length)) kept -= sizes[drop++] as number;
        if (drop > 0) {
          lines = lines.slice(drop);
          sizes = sizes.slice(drop);
        }
      } finally {
        fs.closeSync(fd);
      }
      return torn ? [...lines, torn] : lines;
    },
  };
}

/** The decision lines of `file` (its last `maxBytes`), read once; see {@link createDecisionReader}. */
export function readDecisionLines(file: string, maxBytes = MAX_TAIL): DecisionLine[] {
  return createDecisionReader(file, maxBytes).read();
}

/** One line of the file as the console keeps it, or undefined for a line it skips. */
function parseLine(line: string): DecisionLine | undefined {
  if (!line.startsWith('{')) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  const time = str(v.time, 40);
  if (!time || Number.isNaN(Date.parse(time))) return undefined;
  if (v.event === 'decision') {
    return { time, event: 'decision', principal: str(v.principal), method: str(v.method, 200), target: str(v.target), allowed: v.allowed === true, ruleId: str(v.ruleId, 200) ?? null, reason: str(v.reason) };
  }
  if (v.event === 'auth.refused') return { time, event: 'auth.refused', principal: str(v.principal), allowed: false, reason: str(v.reason) };
  return undefined;
}

/** What the decisions page filters on; every field given must match. */
export interface DecisionQuery {
  readonly principal?: string;
  readonly tool?: string;
  readonly rule?: string;
  readonly outcome?: 'allow' | 'deny';
  /** only lines at or after this time (ms) */
  readonly sinceMs?: number;
}

export interface Tally {
  readonly key: string;
  allow: number;
  deny: number;
}

/** The decisions matching `q`: totals, a time series, tallies per tool, principal and rule, and the latest lines. */
export function queryDecisions(lines: readonly DecisionLine[], q: DecisionQuery, now: Date, buckets = 24) {
  const matches = lines.filter(
    (l) =>
      (!q.principal || (l.principal ?? '').includes(q.principal)) &&
      (!q.tool || l.target === q.tool) &&
      (!q.rule || (l.ruleId ?? '') === q.rule) &&
      (!q.outcome || (q.outcome === 'allow') === l.allowed) &&
      (q.sinceMs === undefined || Date.parse(l.time) >= q.sinceMs),
  );
  const end = now.getTime();
  // a loop, not Math.min(...all): a file of a few hundred thousand short lines overflows the stack
  let first = matches.length ? Infinity : end - 3_600_000;
  for (const l of matches) first = Math.min(first, Date.parse(l.time));
  // never after now: lines dated in the future (the file is the servers' word) count in the last bucket
  const start = Math.min(q.sinceMs ?? first, end);
  const width = Math.max(60_000, Math.ceil((end - start + 1) / buckets / 60_000) * 60_000);
  const series = Array.from({ length: Math.ceil((end - start + 1) / width) || 1 }, (_, i) => ({ start: new Date(start + i * width).toISOString(), allow: 0, deny: 0 }));
  const tally = (m: Map<string, Tally>, key: string, allowed: boolean) => {
    let t = m.get(key);
    if (!t) m.set(key, (t = { key, allow: 0, deny: 0 }));
    if (allowed) t.allow++;
    else t.deny++;
  };
  const byTool = new Map<string, Tally>();
  const byPrincipal = new Map<string, Tally>();
  const byRule = new Map<string, Tally>();
  for (const l of matches) {
    const i = Math.min(series.length - 1, Math.max(0, Math.floor((Date.parse(l.time) - start) / width)));
    const b = series[i]!;
    if (l.allowed) b.allow++;
    else b.deny++;
    tally(byTool, l.target ?? (l.event === 'auth.refused' ? '(certificate refused)' : l.method ?? '(none)'), l.allowed);
    tally(byPrincipal, l.principal ?? '(unknown)', l.allowed);
    tally(byRule, l.ruleId ?? '(no rule)', l.allowed);
  }
  const sorted = (m: Map<string, Tally>) => [...m.values()].sort((a, b) => b.allow + b.deny - (a.allow + a.deny) || a.key.localeCompare(b.key));
  return {
    total: matches.length,
    allowed: matches.filter((l) => l.allowed).length,
    denied: matches.filter((l) => !l.allowed).length,
    bucketMs: width,
    series,
    byTool: sorted(byTool),
    byPrincipal: sorted(byPrincipal),
    byRule: sorted(byRule),
    recent: matches.slice(-100).reverse(),
  };
}

/** What {@link queryDecisions} answers (either backend). */
export type DecisionResult = ReturnType<typeof queryDecisions>;

/**
 * Where the console reads decisions: a JSON-lines file ({@link fileDecisionSource}) or the
 * PostgreSQL store's `decisions` table (decisions-postgres.ts). One interface, the same filters
 * and aggregates; the table's are computed in SQL.
 */
export interface DecisionSource {
  readonly kind: 'file' | 'postgres';
  /** the decisions matching `q`, aggregated as {@link queryDecisions} does */
  query(q: DecisionQuery, now: Date, buckets?: number): Promise<DecisionResult>;
  /** the newest refusals, newest first */
  recentRefusals(limit: number): Promise<DecisionLine[]>;
}

/** The file backend: a {@link createDecisionReader} and {@link queryDecisions}. */
export function fileDecisionSource(file: string, maxBytes = MAX_TAIL): DecisionSource {
  const reader = createDecisionReader(file, maxBytes);
  return {
    kind: 'file',
    query: async (q, now, buckets) => queryDecisions(reader.read(), q, now, buckets),
    recentRefusals: async (limit) => reader.read().filter((l) => !l.allowed).slice(-limit).reverse(),
  };
}
