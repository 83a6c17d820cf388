/** The audit log: see {@link createAuditLog}. */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { createDecisionsSink, isPostgresTarget, type DecisionsSinkOptions } from './audit-postgres.js';

/**
 * One audit record. `event` says what happened: `decision` (the policy decided an MCP
 * request: principal, method, target, allowed, ruleId, reason, ...), `auth.refused` (a client
 * certificate was refused: reason, fingerprint, remote address), `session.refused` (an MCP
 * session was used by another certificate), `response.refused` (the gateway did not forward
 * an upstream message it could not parse or decide: reason, route, method), `credential.refused`
 * (the gateway holds no credential of the route's upstream for the caller: reason, route) or `reload` (CRLs
 * or the server certificate were reloaded). The other fields depend on the event.
 */
export interface AuditEvent {
  readonly event: 'decision' | 'auth.refused' | 'session.refused' | 'response.refused' | 'credential.refused' | 'reload';
  readonly [field: string]: unknown;
}

/**
 * Where the server, middleware and gateway send {@link AuditEvent}s: {@link createAuditLog}
 * (JSON lines), {@link memoryAudit}, or your own. `write` is called synchronously on the
 * request path: keep it fast, and do not throw.
 */
export interface AuditSink {
  write(event: AuditEvent): void;
  /**
   * Whether `decision` events may carry the tool or prompt arguments (`args`). Argument
   * values may hold secrets.
   */
  readonly includeArgs: boolean;
}

/**
 * The audit log: one JSON line per event, with `time` (ISO 8601, UTC) first, appended to a
 * stream or a file. Tool argument values are left out unless `includeArgs` is true: they
 * may hold secrets.
 *
 * @param target - a writable stream, or a file path: appended to, created with mode 0600.
 *   The file is opened asynchronously: one that cannot be opened shows as an `error` event
 *   on the stream, not as an exception here. The sink never ends the stream.
 *   Or `postgres://USER@HOST:PORT/DB` (no password in it): the `decision` and `auth.refused`
 *   events go, batched and asynchronously, to the `decisions` table of the CA's PostgreSQL
 *   store, where the console reads them (see {@link createDecisionsSink}; other events are
 *   not stored there, and arguments never are).
 * @param options - `includeArgs` (default false); `clock` for `time` (default the system clock);
 *   for a PostgreSQL target also `batchSize`, `flushMs`, `maxQueue`, `source`, `log`
 */
export function createAuditLog(target: Writable | string, options: { includeArgs?: boolean; clock?: () => Date } & DecisionsSinkOptions = {}): AuditSink {
  if (typeof target === 'string' && isPostgresTarget(target)) return createDecisionsSink(target, options);
  const stream = typeof target === 'string' ? fs.createWriteStream(target, { flags: 'a', mode: 0o600 }) : target;
  const clock = options.clock ?? (() => new Date());
  return {
    includeArgs: options.includeArgs === true,
    write(event) {
      stream.write(`${JSON.stringify({ time: clock().toISOString(), ...event })}\n`);
    },
  };
}

/** One sink that writes every event to each of `sinks` (e.g. a file and PostgreSQL); arguments only to those that take them. */
export function teeAudit(...sinks: AuditSink[]): AuditSink {
  const includeArgs = sinks.some((s) => s.includeArgs);
  return {
    includeArgs,
    write(event) {
      for (const s of sinks) {
        if (includeArgs && !s.includeArgs && 'args' in event) {
          const { args: _args, ...rest } = event;
          s.write(rest as AuditEvent);
        } else s.write(event);
      }
    },
  };
}

/** An audit sink that keeps events in memory (tests, and servers that ship events elsewhere). */
export function memoryAudit(includeArgs = false): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, includeArgs, write: (e) => void events.push({ time: new Date().toISOString(), ...e } as AuditEvent) };
}
