/**
 * A forked bench server process's side of its talk with the bench that forked it (bench/server.ts
 * forks server-child.ts, bench/gateway.ts forks gateway-child.ts): one place, so that every child
 * keeps the same protocol the benches rely on.
 *
 * - listens on 127.0.0.1:0 (keep-alive 60 s: the load generator reuses its connections) and
 *   reports { port };
 * - answers "cpu" with process.cpuUsage(), so the bench measures the server's CPU apart from the
 *   load generator's, and "exit" by exiting;
 * - exits when the bench is gone (it failed, or was killed): otherwise its inherited stdout would
 *   keep whoever waits on the bench's output waiting for ever.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function serveForBench(server: Server): void {
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m) => {
    if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() });
    if (m === 'exit') process.exit(0);
  });
}
