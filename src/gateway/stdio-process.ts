/**
 * One stdio MCP server process: spawned with a command, args, env and working directory;
 * newline-delimited JSON-RPC on stdin/stdout, each line bounded in length (a longer one is a
 * protocol violation: the process is killed); stderr goes to the gateway's log line by line,
 * tagged with the upstream and the process key (the principal or team it serves).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { redactor } from './redact.js';

export interface StdioProcessSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** the whole environment of the child (no other variable is passed) */
  readonly env: Record<string, string>;
  readonly cwd?: string;
  /** a stdout line longer than this kills the process */
  readonly maxLineBytes: number;
  /** the secrets in `env` (its credentials): taken out of what the process writes, stdout and stderr (redact.ts) */
  readonly secrets?: readonly string[];
}

export interface StdioProcessEvents {
  /** one JSON-RPC message (or batch) the process wrote; lines that are not JSON are logged and dropped */
  readonly message: (m: unknown) => void;
  /** the process is gone (exited, crashed, killed, or could not start) */
  readonly exit: (why: string) => void;
}

/** Splits a byte stream into lines, each at most `max` bytes; calls `tooLong` once a line passes it. */
function lineReader(max: number, onLine: (line: string) => void, tooLong: () => void): (chunk: Buffer) => void {
  let parts: Buffer[] = [];
  let size = 0;
  let dead = false;
  return (chunk) => {
    if (dead) return;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      size += end - start;
      if (size > max) {
        dead = true;
        parts = [];
        tooLong();
        return;
      }
      parts.push(chunk.subarray(start, end));
      if (nl === -1) return;
      const line = Buffer.concat(parts).toString('utf8');
      parts = [];
      size = 0;
      onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      start = nl + 1;
    }
  };
}

export class StdioProcess {
  readonly #child: ChildProcess;
  readonly startedAt = Date.now();
  #exited = false;
  /** set when the gateway stopped it (idle, evicted, shutdown): not counted as a crash */
  stopping = false;

  constructor(spec: StdioProcessSpec, tag: string, log: (line: string) => void, on: StdioProcessEvents) {
    const redact = redactor(spec.secrets ?? []);
    this.#child = spawn(spec.command, [...spec.args], { env: spec.env, ...(spec.cwd ? { cwd: spec.cwd } : {}), stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    const gone = (why: string) => {
      if (this.#exited) return;
      this.#exited = true;
      on.exit(why);
    };
    this.#child.once('error', (e) => gone(`could not start ${spec.command}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    this.#child.once('exit', (code, signal) => gone(signal ? `killed by ${signal}` : `exited with code ${code}`));
    this.#child.stdin!.on('error', () => undefined); // a dead process's pipe: the exit event says it
    this.#child.stdout!.on(
      'data',
      lineReader(
        spec.maxLineBytes,
        (line) => {
          if (line.trim() === '') return;
          let m: unknown;
          try {
            m = JSON.parse(line);
          } catch {
            log(`${tag}: dropped a stdout line that is not JSON (${line.length} characters)`);
            return;
          }
          // a secret it was given, echoed (an error naming its token): never to a caller, never to the log
          on.message(redact.inJson(line) ? redact.value(m) : m);
        },
        () => {
          log(`${tag}: a stdout line is longer than ${spec.maxLineBytes} bytes: killing the process`);
          this.kill();
        },
      ),
    );
    // stderr: the gateway's log, each line tagged, long lines cut
    this.#child.stderr!.on(
      'data',
      lineReader(64 * 1024, (raw) => {
        const line = redact.line(raw);
        log(`${tag} stderr: ${line.length > 2000 ? `${line.slice(0, 2000)}...` : line}`);
      }, () => log(`${tag}: stderr line too long, the rest of stderr is dropped`)),
    );
  }

  get alive(): boolean {
    return !this.#exited;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  send(message: unknown): void {
    if (this.#exited) return;
    this.#child.stdin!.write(`${JSON.stringify(message)}\n`);
  }

  kill(): void {
    if (!this.#exited) this.#child.kill('SIGKILL');
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs = 2_000): Promise<void> {
    this.stopping = true;
    if (this.#exited) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.kill(), graceMs);
      this.#child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#child.stdin!.end();
      this.#child.kill('SIGTERM');
    });
  }
}
