/**
 * The decisions page's data: the audit lines servers and gateways append to a JSON-lines file
 * (gateway.yaml `audit:`, `createAuditLog(file)` in a server; config.yaml `console.decisions.file`
 * names it). Read on each request, the last {@link MAX_TAIL} bytes only, so a long-running log
 * costs a bounded read; lines that are not JSON, or not `decision` / `auth.refused` events, are
 * skipped. This is the console's path, not a request path of a server.
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

/** The decision lines of `file` (its last MAX_TAIL bytes), oldest first; none when it does not exist yet. */
export function readDecisionLines(file: string, maxBytes = MAX_TAIL): DecisionLine[] {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  let text: string;
  try {
    const size = fs.fstatSync(fd).size;
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, start + off);
      if (n === 0) break;
      off += n;
    }
    text = buf.subarray(0, off).toString('utf8');
    if (start > 0) text = text.slice(text.indexOf('\n') + 1); // the first line is cut
  } finally {
    fs.closeSync(fd);
  }
  const out: DecisionLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    const time = str(v.time, 40);
    if (!time || Number.isNaN(Date.parse(time))) continue;
    if (v.event === 'decision') {
      out.push({ time, event: 'decision', principal: str(v.principal), method: str(v.method, 200), target: str(v.target), allowed: v.allowed === true, ruleId: str(v.ruleId, 200) ?? null, reason: str(v.reason) });
    } else if (v.event === 'auth.refused') {
      out.push({ time, event: 'auth.refused', principal: str(v.principal), allowed: false, reason: str(v.reason) });
    }
  }
  return out;
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
  const start = q.sinceMs ?? first;
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
