/**
 * The console's decisions from the PostgreSQL store's `decisions` table (schema v5, written by
 * servers and gateways through createAuditLog('postgres://...') / gateway.yaml `decisions:`):
 * the same filters and aggregates as the file backend (decisions.ts queryDecisions), each an
 * aggregate query (counts, a GROUP BY per bucket, per tool, per principal, per rule, the newest
 * 100 rows), never the table read into the process. And retention: `ca serve` deletes rows older
 * than config.yaml `console.decisions.retention` in small batches (each its own short statement,
 * one replica at a time under an advisory lock), so no long lock is held and the servers'
 * INSERTs never wait on it.
 */
import type { DecisionLine, DecisionQuery, DecisionResult, DecisionSource, Tally } from './decisions.js';

/** What of a `pg` pool this module uses (console/ does not import `pg`: docs/architecture.md). */
export interface SqlResult<R> {
  readonly rows: R[];
  readonly rowCount: number | null;
}
export interface SqlClient {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<SqlResult<R>>;
  /** with an error: the connection is closed, not reused */
  release(err?: Error): void;
}
export interface SqlPool {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<SqlResult<R>>;
  connect(): Promise<SqlClient>;
}

/** Tallies per tool, principal and rule: at most this many each (the busiest). */
export const MAX_TALLIES = 500;

/**
 * The console reads the table one answer at a time, on one of the store's connections (its pool
 * is the one /renew and /sign use: ten concurrent Decisions pages, six queries each on a large
 * table, took every connection), each statement stopped after this long; at most
 * {@link MAX_WAITING_READS} answers wait, more are refused at once.
 */
export const DECISIONS_STATEMENT_TIMEOUT_MS = 10_000;
export const MAX_WAITING_READS = 8;

interface Where {
  sql: string;
  params: unknown[];
}

/**
 * Rows the console shows: dated in years 1 to 9999. The writer role may INSERT any time, and one
 * row at infinity or in the year 294000 (a timestamptz, no JavaScript Date) made every answer
 * fail, for good (the retention prunes only what is older than it).
 */
const IN_RANGE = "time >= '0001-01-01T00:00:00Z' AND time < '10000-01-01T00:00:00Z'";

function where(q: DecisionQuery): Where {
  const params: unknown[] = [];
  const parts: string[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  // a whole principal (spiffe://...) is an index lookup; a part of one, a substring as in the file
  if (q.principal) parts.push(q.principal.includes('://') ? `principal = ${p(q.principal)}` : `strpos(principal, ${p(q.principal)}) > 0`);
  if (q.tool) parts.push(`target = ${p(q.tool)}`);
  if (q.rule) parts.push(`rule_id = ${p(q.rule)}`);
  if (q.outcome) parts.push(`allowed = ${p(q.outcome === 'allow')}`);
  if (q.sinceMs !== undefined) parts.push(`time >= ${p(new Date(q.sinceMs))}`);
  parts.push(IN_RANGE);
  return { sql: `WHERE ${parts.join(' AND ')}`, params };
}

// what is read is cut as the sink cuts it (audit-postgres.ts): the writer role may INSERT any
// length (method and reason are not indexed, so up to 1 GB each), and the console's answer is
// held in the CA's memory
const TOOL_KEY = "left(coalesce(target, CASE WHEN event = 'auth.refused' THEN '(certificate refused)' ELSE coalesce(method, '(none)') END), 1024)";
const ROW = 'time, event, left(principal, 1024) AS principal, left(method, 200) AS method, left(target, 1024) AS target, allowed, left(rule_id, 200) AS rule_id, left(reason, 1024) AS reason';

/**
 * The newest 100 rows of an answer. Unfiltered (or by a time range, or a part of a principal,
 * which no index serves) they are the first ones of a backward walk of the time index. With a
 * filter an index serves (a whole principal, a tool, a rule, the refusals) they are the matching
 * rows, read on that filter's index, sorted: `ORDER BY time DESC` there left the planner the same
 * walk of the time index, the filter applied row by row, which it takes whenever the filter is
 * not very selective by the statistics (a rule of 30, a tool of 50), on the guess that matching
 * rows are spread evenly in time. A rule or tool not hit lately, a principal gone quiet, a
 * policy that denies everything since this morning: the walk read every newer row, the whole
 * table (40,000 rows for 100 at 41,300, growing with it, against the 10 s statement timeout).
 * `time + interval '0'` is the same order, which no index gives, so the rows come from the
 * filter's index and the sort keeps 100 of them: what it reads is what the answer's count
 * and tallies read already. An index on (filter, time, id) does not change the planner's guess.
 */
export function recentSql(q: DecisionQuery): { sql: string; params: unknown[] } {
  const w = where(q);
  // not `outcome: allow`, most rows of any table: the walk of the time index finds 100 at once
  const indexed = q.principal?.includes('://') || q.tool || q.rule || q.outcome === 'deny';
  return { sql: `SELECT ${ROW} FROM decisions ${w.sql} ORDER BY ${indexed ? "time + interval '0'" : 'time'} DESC, id DESC LIMIT 100`, params: w.params };
}

/** The newest refusals ($1 of them), on the (allowed, time) index. */
export const RECENT_REFUSALS_SQL = `SELECT ${ROW} FROM decisions WHERE NOT allowed AND ${IN_RANGE} ORDER BY time DESC, id DESC LIMIT $1`;

/**
 * One batch of the retention's pruning: the oldest $2 rows before $1, on the time index, then
 * deleted by their ids on the primary key. `id IN (SELECT ...)` was planned as a hash join
 * with a scan of the whole table, once per batch (measured at 41,300 rows; by its costs, on
 * tables up to some hundreds of thousands of rows, where a batch is a small part of the table).
 */
export const PRUNE_DECISIONS_SQL = 'DELETE FROM decisions WHERE id = ANY (ARRAY(SELECT id FROM decisions WHERE time < $1 ORDER BY time LIMIT $2))';

interface DecisionRow {
  time: Date;
  event: 'decision' | 'auth.refused';
  principal: string | null;
  method: string | null;
  target: string | null;
  allowed: boolean;
  rule_id: string | null;
  reason: string | null;
}

function line(r: DecisionRow): DecisionLine {
  const base = { time: r.time.toISOString(), ...(r.principal !== null ? { principal: r.principal } : {}), allowed: r.allowed, ...(r.reason !== null ? { reason: r.reason } : {}) };
  if (r.event === 'auth.refused') return { ...base, event: 'auth.refused' };
  return { ...base, event: 'decision', ...(r.method !== null ? { method: r.method } : {}), ...(r.target !== null ? { target: r.target } : {}), ruleId: r.rule_id };
}

/** The table backend of the console's decisions; `pool` is the store's (PostgresStore.decisionsPool). */
export function postgresDecisionSource(pool: () => Promise<SqlPool>): DecisionSource {
  let busy = false;
  const waiting: (() => void)[] = [];
  /** `read` on one connection, in a read-only transaction with a statement timeout, one at a time */
  const reading = async <T>(read: (db: Queryable) => Promise<T>): Promise<T> => {
    if (busy) {
      if (waiting.length >= MAX_WAITING_READS) throw new Error(`the console is busy: ${waiting.length} reads of the decisions table wait already (one at a time, so that the store's connections stay with /renew and /sign); try again in a few seconds`);
      await new Promise<void>((r) => waiting.push(r));
    }
    busy = true;
    try {
      const c = await (await pool()).connect();
      let failed: Error | undefined;
      try {
        await c.query('BEGIN READ ONLY');
        await c.query(`SET LOCAL statement_timeout = ${DECISIONS_STATEMENT_TIMEOUT_MS}`);
        const r = await read(c);
        await c.query('COMMIT');
        return r;
      } catch (e) {
        failed = e instanceof Error ? e : new Error(String(e));
        throw e;
      } finally {
        c.release(failed); // a connection whose read failed is closed, not reused
      }
    } finally {
      const next = waiting.shift();
      if (next) next();
      else busy = false;
    }
  };
  return {
    kind: 'postgres',
    query: (q, now, buckets = 24): Promise<DecisionResult> => reading(async (db) => {
      const w = where(q);
      const totals = await db.query<{ total: string; allowed: string; first: Date | null }>(`SELECT count(*) AS total, count(*) FILTER (WHERE allowed) AS allowed, min(time) AS first FROM decisions ${w.sql}`, w.params);
      const t = totals.rows[0]!;
      const total = Number(t.total);
      const end = now.getTime();
      const first = total > 0 && t.first ? t.first.getTime() : end - 3_600_000;
      const start = Math.min(q.sinceMs ?? first, end);
      const width = Math.max(60_000, Math.ceil((end - start + 1) / buckets / 60_000) * 60_000);
      const series = Array.from({ length: Math.ceil((end - start + 1) / width) || 1 }, (_, i) => ({ start: new Date(start + i * width).toISOString(), allow: 0, deny: 0 }));
      const n = w.params.length;
      // one after the other on the one connection
      const bucketRows = await db.query<{ b: string; a: string; d: string }>(`SELECT floor((extract(epoch FROM time) * 1000 - $${n + 1}) / $${n + 2})::bigint AS b, count(*) FILTER (WHERE allowed) AS a, count(*) FILTER (WHERE NOT allowed) AS d FROM decisions ${w.sql} GROUP BY 1`, [...w.params, start, width]);
      const byTool = await tallies(db, TOOL_KEY, w);
      const byPrincipal = await tallies(db, "left(coalesce(principal, '(unknown)'), 1024)", w);
      const byRule = await tallies(db, "left(coalesce(rule_id, '(no rule)'), 200)", w);
      const r100 = recentSql(q);
      const recent = await db.query<DecisionRow>(r100.sql, r100.params);
      for (const r of bucketRows.rows) {
        // lines dated in the future (the servers' word) count in the last bucket, as in the file
        const b = series[Math.min(series.length - 1, Math.max(0, Number(r.b)))]!;
        b.allow += Number(r.a);
        b.deny += Number(r.d);
      }
      const allowed = Number(t.allowed);
      return { total, allowed, denied: total - allowed, bucketMs: width, series, byTool, byPrincipal, byRule, recent: recent.rows.map(line) };
    }),
    recentRefusals: (limit) =>
      reading(async (db) => {
        const r = await db.query<DecisionRow>(RECENT_REFUSALS_SQL, [limit]);
        return r.rows.map(line);
      }),
  };
}

type Queryable = Pick<SqlPool, 'query'>;

async function tallies(db: Queryable, key: string, w: Where): Promise<Tally[]> {
  const r = await db.query<{ key: string; a: string; d: string }>(
    `SELECT ${key} AS key, count(*) FILTER (WHERE allowed) AS a, count(*) FILTER (WHERE NOT allowed) AS d FROM decisions ${w.sql} GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ${MAX_TALLIES}`,
    w.params,
  );
  return r.rows.map((x) => ({ key: x.key, allow: Number(x.a), deny: Number(x.d) }));
}

/** Advisory lock key of the pruning (one replica at a time); beside postgres-locks.ts's. */
export const LOCK_DECISIONS_PRUNE = 0x6d63706d746c03n;

export interface PruneOptions {
  /** rows deleted per statement (default 5,000) */
  readonly batch?: number;
  /** pause between batches, giving the servers' INSERTs room (default 20 ms) */
  readonly pauseMs?: number;
}

/**
 * Deletes rows older than `before`, `batch` at a time, each batch its own statement (a short
 * transaction); skipped (0) when another replica is pruning. Returns the rows deleted.
 */
export async function pruneDecisions(pool: SqlPool, before: Date, options: PruneOptions = {}): Promise<number> {
  const batch = options.batch ?? 5000;
  const pauseMs = options.pauseMs ?? 20;
  const c = await pool.connect();
  let deleted = 0;
  try {
    const got = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LOCK_DECISIONS_PRUNE.toString()]);
    if (!got.rows[0]?.ok) return 0;
    try {
      for (;;) {
        const r = await c.query(PRUNE_DECISIONS_SQL, [before, batch]);
        deleted += r.rowCount ?? 0;
        if ((r.rowCount ?? 0) < batch) break;
        await new Promise((res) => setTimeout(res, pauseMs));
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [LOCK_DECISIONS_PRUNE.toString()]);
    }
  } finally {
    c.release();
  }
  return deleted;
}
