/**
 * A forked bench server process's talk with the bench that forked it (bench/server.ts forks
 * server-child.ts, bench/gateway.ts gateway-child.ts, bench/handshake-variants.ts itself), both
 * sides: one place, so that every child and bench keep the same protocol.
 *
 * - listens on 127.0.0.1:0 (keep-alive 60 s: the load generator reuses its connections) and
 *   reports { port };
 * - answers "cpu" with process.cpuUsage(), so the bench measures the server's CPU apart from the
 *   load generator's, and "exit" by exiting (after `beforeExit`, e.g. closing a store);
 * - exits when the bench is gone (it failed, or was killed): otherwise its inherited stdout would
 *   keep whoever waits on the bench's output waiting for ever.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function serveForBench(server: Server, beforeExit?: () => Promise<void>): void {
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m) => {
    if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() });
    if (m === 'exit') void (beforeExit?.() ?? Promise.resolve()).finally(() => process.exit(0));
  });
}

/** The bench's side: a forked child serving with {@link serveForBench}. */
export interface BenchChild {
  readonly port: number;
  /** the child's CPU time so far (user + system), ms */
  cpuMs(): Promise<number>;
  /** asks it to exit; resolves once it has */
  stop(): Promise<void>;
}

/** Forks `script` (run with tsx, plus `execArgv`) and resolves once it reports its port. */
export function forkBenchChild(script: string, args: readonly string[], execArgv: readonly string[] = []): Promise<BenchChild> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = fork(script, [...args], { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('error', reject);
    child.once('message', (m) =>
      resolve({
        port: (m as { port: number }).port,
        cpuMs: () =>
          new Promise((r) => {
            child.once('message', (x) => {
              const c = (x as { cpu: NodeJS.CpuUsage }).cpu;
              r((c.user + c.system) / 1000);
            });
            child.send('cpu');
          }),
        stop: () => {
          const gone = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
          child.send('exit');
          return gone;
        },
      }),
    );
  });
}
