/**
 * The audit log: one JSON line per decision (and per refused connection), to a stream or a
 * file. Tool argument values are left out unless asked for: they may hold secrets.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';

export interface AuditEvent {
  readonly event: 'decision' | 'auth.refused' | 'session.refused' | 'reload';
  readonly [field: string]: unknown;
}

export interface AuditSink {
  write(event: AuditEvent): void;
  /** whether tool arguments may be written */
  readonly includeArgs: boolean;
}

export function createAuditLog(target: Writable | string, options: { includeArgs?: boolean; clock?: () => Date } = {}): AuditSink {
  const stream = typeof target === 'string' ? fs.createWriteStream(target, { flags: 'a', mode: 0o600 }) : target;
  const clock = options.clock ?? (() => new Date());
  return {
    includeArgs: options.includeArgs === true,
    write(event) {
      stream.write(`${JSON.stringify({ time: clock().toISOString(), ...event })}\n`);
    },
  };
}

/** An audit sink that keeps events in memory (tests, and servers that ship events elsewhere). */
export function memoryAudit(includeArgs = false): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, includeArgs, write: (e) => void events.push({ time: new Date().toISOString(), ...e } as AuditEvent) };
}
