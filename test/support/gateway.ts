/**
 * A gateway for a test file: a PKI (test/support/pki.ts) with a server certificate and the
 * named people's client certificates, the file's policy on disk, and startGateway with the
 * routes the test gives, started in the file's before hook and stopped in its after hook. The
 * gateway's log lines are kept in `logged`. One set-up for the stdio-route tests, which had a copy each.
 */
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import type { z } from 'zod';
import { GatewayConfigSchema } from '../../src/gateway/config.js';
import { startGateway, type RunningGateway } from '../../src/gateway/run.js';
import { makePki } from './pki.js';

export type ClientFiles = { cert: string; key: string; ca: string };
type GatewayInput = z.input<typeof GatewayConfigSchema>;

export interface GatewayFixture {
  readonly gw: RunningGateway;
  /** https://localhost:PORT */
  readonly url: string;
  /** each person's certificate, key and CA files */
  readonly clients: Record<string, ClientFiles>;
  /** the gateway's log lines, in order */
  readonly logged: string[];
}

export function useGateway(o: {
  /** name -> the `issue client --user NAME` arguments after the name (e.g. ['--team', 'sre']) */
  people: Record<string, readonly string[]>;
  policy: string;
  routes: (policyFile: string) => GatewayInput['routes'];
  upstreamTimeout?: string;
  /** the stdio children get this process's environment (the npm servers need PATH and HOME) */
  inheritEnv?: boolean;
}): GatewayFixture {
  let gw: RunningGateway | undefined;
  const clients: Record<string, ClientFiles> = {};
  const logged: string[] = [];
  before(async () => {
    const pki = await makePki();
    const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
    for (const [who, args] of Object.entries(o.people)) {
      const r = await pki.issue(['issue', 'client', '--user', who, ...args]);
      clients[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
    }
    const policy = path.join(pki.base, 'policy.yaml');
    fs.writeFileSync(policy, o.policy);
    gw = await startGateway(
      GatewayConfigSchema.parse({
        listen: '127.0.0.1:0',
        tls: { cert: srv.files.cert, key: srv.files.key as string, pki: pki.pki },
        upstreamTimeout: o.upstreamTimeout ?? '30s',
        routes: o.routes(policy),
      }),
      (l) => void logged.push(l),
      o.inheritEnv ? { env: process.env } : {},
    );
  });
  after(async () => {
    await gw?.stop();
  });
  const running = (): RunningGateway => {
    if (!gw) throw new Error('the gateway is not started yet (use it inside a test)');
    return gw;
  };
  return {
    get gw() {
      return running();
    },
    get url() {
      return `https://localhost:${running().address.port}`;
    },
    clients,
    logged,
  };
}
