/**
 * Decisions to PostgreSQL: an {@link AuditSink} that sends `decision` and `auth.refused`
 * events to the `decisions` table of a CA's PostgreSQL store (schema v5), where the console
 * reads them (docs/operations.md "Decisions"). The request path only pushes onto a bounded
 * in-memory queue: no I/O, no await, nothing that throws. A timer (every `flushMs`), or a
 * queue of `batchSize` lines, sends one multi-row INSERT; one INSERT is in flight at a time.
 * A full queue, or a batch the database refused (down, unreachable, no INSERT grant), is
 * dropped and counted (`stats().dropped`), with one warning per outage and one when it
 * recovers: a slow or lost database never blocks nor crashes the server. An INSERT waits at most
 * 10 s for an answer; `close()` sends what is queued until a batch fails, and drops the rest.
 *
 * The role of the URL needs INSERT on `decisions` (and USAGE on its id sequence) and nothing
 * else: docs/operations.md shows the GRANTs.
 */
import type pg from 'pg';
import { assertNoPassword, redactUrl, type PostgresUrlUse } from '../util/postgres-url.js';
import type { AuditEvent, AuditSink } from './audit.js';

const DECISIONS_URL: PostgresUrlUse = {
  name: 'the URL',
  example: 'e.g. postgres://mcp_decisions@db.internal:5432/mcp_ca',
  otherScheme: 'use postgres://USER@HOST:PORT/DATABASE',
};

const checkUrl = (url: string): void => assertNoPassword(url, 'decisions', DECISIONS_URL);

/** How long one INSERT may wait for the database before its lines are dropped (and counted). */
const QUERY_TIMEOUT_MS = 10_000;

/** One connection, loaded on first use; a lost connection never crashes the process. */
async function openPool(url: string, password: (() => Promise<string | undefined>) | undefined): Promise<pg.Pool> {
  const [{ default: pgDriver }, { parseIntoClientConfig }] = await Promise.all([import('pg'), import('pg-connection-string')]);
  const fromUrl = parseIntoClientConfig(url);
  if (!fromUrl.password) delete fromUrl.password; // else the empty password wins over PGPASSWORD, ~/.pgpass, `password`
  // query_timeout (the client's own clock, no server setting a pooler could refuse): an INSERT
  // the database never answers (a lock held on the table, a connection gone silent) is given up
  const p = new pgDriver.Pool({ ...fromUrl, max: 1, allowExitOnIdle: true, connectionTimeoutMillis: 5000, query_timeout: QUERY_TIMEOUT_MS, ...(password ? { password: password as () => Promise<string> } : {}) });
  p.on('error', () => undefined);
  p.on('connect', (client) => client.on('error', () => undefined));
  return p;
}

/** Options of {@link createDecisionsSink} (and of createAuditLog for a postgres:// target). */
export interface DecisionsSinkOptions {
  /** a batch is sent when this many lines are queued (default 500) */
  readonly batchSize?: number;
  /** and at least this often while lines wait (default 1000 ms) */
  readonly flushMs?: number;
  /** lines held at most; more are dropped and counted (default 10,000) */
  readonly maxQueue?: number;
  /** who sends (e.g. the gateway's or server's name), stored in the `source` column */
  readonly source?: string;
  /** warnings (an outage, its end); default process.emitWarning */
  readonly log?: (message: string) => void;
  /** the password when not in PGPASSWORD or ~/.pgpass (never in the URL) */
  readonly password?: () => Promise<string | undefined>;
  /** for the time column (default the system clock) */
  readonly clock?: () => Date;
}

/** What a {@link DecisionsSink} did so far. */
export interface DecisionsSinkStats {
  readonly written: number;
  readonly dropped: number;
  readonly queued: number;
}

/** An audit sink writing to PostgreSQL's `decisions` table, batched and off the request path. */
export interface DecisionsSink extends AuditSink {
  /** lines written, dropped (queue full or the database failing), waiting */
  stats(): DecisionsSinkStats;
  /** sends what is queued now; resolves when done (or dropped) */
  flush(): Promise<void>;
  /** flushes, stops the timer and closes the connection */
  close(): Promise<void>;
}

interface Row {
  time: Date;
  event: 'decision' | 'auth.refused';
  principal: string | null;
  method: string | null;
  target: string | null;
  allowed: boolean;
  ruleId: string | null;
  reason: string | null;
}

// PostgreSQL's text holds no NUL (0x00): one in a line (a tool name is the client's or the model's
// word, JSON \u0000) made the whole multi-row INSERT fail, dropping the honest lines beside it
const text = (v: unknown, max = 1024): string | null => (typeof v === 'string' ? v.slice(0, max).replaceAll('\u0000', '\uFFFD') : null);

/** Whether an audit target names PostgreSQL rather than a file. */
export const isPostgresTarget = (target: string): boolean => /^postgres(ql)?:\/\//i.test(target);

/**
 * An audit sink that sends `decision` and `auth.refused` events to the `decisions` table of a
 * CA's PostgreSQL store (schema 5), where the console reads them. `write` only queues (bounded by
 * `maxQueue`); a timer (`flushMs`) or a full batch (`batchSize`) sends one INSERT, one at a time.
 * Lines the database refuses, or beyond the queue, are dropped and counted in `stats()`, with one
 * warning per outage. The URL's role needs only INSERT on `decisions` (docs/operations.md).
 *
 * @param url - `postgres://USER@HOST:PORT/DB`, never with a password (PGPASSWORD, ~/.pgpass or `options.password`)
 * @throws MtlsError `USAGE` for a URL that is not PostgreSQL or holds a password
 */
export function createDecisionsSink(url: string, options: DecisionsSinkOptions = {}): DecisionsSink {
  checkUrl(url);
  const batchSize = options.batchSize ?? 500;
  const flushMs = options.flushMs ?? 1000;
  const maxQueue = options.maxQueue ?? 10_000;
  const clock = options.clock ?? (() => new Date());
  const log = options.log ?? ((m: string) => process.emitWarning(m));
  const source = text(options.source, 200);
  let queue: Row[] = [];
  let written = 0;
  let dropped = 0;
  let failing = false;
  let inFlight: Promise<void> | undefined;
  let pool: Promise<pg.Pool> | undefined;
  let closed = false;
  let closing = false;
  let soon: NodeJS.Immediate | undefined;

  const send = async (rows: Row[]): Promise<void> => {
    try {
      pool ??= openPool(url, options.password);
      const p = await pool;
      await p.query(
        'INSERT INTO decisions (time, event, principal, method, target, allowed, rule_id, reason, source) SELECT t, e, p, m, g, a, r, w, $9 FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[], $8::text[]) AS u(t, e, p, m, g, a, r, w)',
        [rows.map((r) => r.time), rows.map((r) => r.event), rows.map((r) => r.principal), rows.map((r) => r.method), rows.map((r) => r.target), rows.map((r) => r.allowed), rows.map((r) => r.ruleId), rows.map((r) => r.reason), source],
      );
      written += rows.length;
      if (failing) {
        failing = false;
        log(`decisions: writing to ${redactUrl(url)} again (${dropped} line(s) dropped so far)`);
      }
    } catch (e) {
      dropped += rows.length;
      if (!failing) {
        failing = true;
        log(`warning: decisions: cannot write to ${redactUrl(url)} (${(e as { code?: string }).code ?? ''} ${String((e as Error)?.message ?? e).slice(0, 200)}); dropping lines until it answers (${dropped} dropped so far)`);
      }
    }
  };

  const flush = (): Promise<void> => {
    if (inFlight) return inFlight.then(() => (queue.length ? flush() : undefined));
    if (queue.length === 0) return Promise.resolve();
    const rows = queue.slice(0, batchSize);
    queue = queue.slice(rows.length);
    inFlight = send(rows).finally(() => {
      inFlight = undefined;
      if (queue.length >= batchSize && !closed && !closing) schedule();
    });
    return inFlight;
  };
  const schedule = () => {
    soon ??= setImmediate(() => {
      soon = undefined;
      void flush();
    });
  };
  const timer = setInterval(() => void flush(), flushMs);
  timer.unref();

  return {
    includeArgs: false,
    write(event: AuditEvent) {
      if (closed || (event.event !== 'decision' && event.event !== 'auth.refused')) return;
      if (queue.length >= maxQueue) {
        dropped++;
        return;
      }
      queue.push({
        time: clock(),
        event: event.event,
        principal: text(event.principal),
        method: text(event.method, 200),
        target: text(event.target),
        allowed: event.event === 'decision' && event.allowed === true,
        ruleId: text(event.ruleId, 200),
        reason: text(event.reason),
      });
      // a full batch goes out on the next turn of the loop, never from inside the request
      if (queue.length >= batchSize && !inFlight) schedule();
    },
    stats: () => ({ written, dropped, queued: queue.length }),
    flush,
    async close() {
      clearInterval(timer);
      closing = true;
      if (soon) clearImmediate(soon);
      soon = undefined;
      // what is queued is sent, until a batch fails: a database that is down or does not answer
      // costs one wait (at most QUERY_TIMEOUT_MS), not one per batch; the rest is dropped, counted
      for (;;) {
        if (inFlight) await inFlight;
        if (queue.length === 0) break;
        const before = dropped;
        await flush();
        if (dropped > before) break;
      }
      if (inFlight) await inFlight;
      dropped += queue.length;
      queue = [];
      closed = true;
      const p = pool;
      pool = undefined;
      if (p) await (await p.catch(() => undefined))?.end().catch(() => undefined);
    },
  };
}
