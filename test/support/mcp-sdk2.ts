/**
 * The SDK 2.x adapter (createMcpSdk2Handler) behind an mTLS server on 127.0.0.1:0, with a CA made
 * by the real CLI and two callers: the set-up the test/mcp/sdk2*.test.ts files share (the 1.x
 * adapter's is startFixture in mcp.ts). alice is in team sre with role admin, bob in team dev, as
 * TEST_POLICY expects; each test file passes its own tools, policy and adapter options.
 */
import type { AddressInfo } from 'node:net';
import { createMcpSdk2Handler, type McpSdk2Options } from '../../src/mcp/sdk2.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { makePki } from './pki.js';

export interface Sdk2Fixture {
  readonly server: MtlsServer;
  /** https://localhost:PORT/mcp */
  readonly url: string;
  readonly handler: ReturnType<typeof createMcpSdk2Handler>;
  /** the server's TLS material, for a second server in the same test */
  readonly tls: ReturnType<typeof tlsFromPki>;
  readonly clients: Record<'alice' | 'bob', { cert: string; key: string; ca: string }>;
  /** closes the adapter (its sessions), then the server and every connection still open */
  close(): Promise<void>;
}

export async function startSdk2Fixture(options: McpSdk2Options): Promise<Sdk2Fixture> {
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const issue = async (args: string[]) => {
    const r = await pki.issue(['issue', 'client', ...args]);
    return { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  };
  const clients = { alice: await issue(['--user', 'alice', '--team', 'sre', '--role', 'admin']), bob: await issue(['--user', 'bob', '--team', 'dev']) };
  const handler = createMcpSdk2Handler(options);
  const tls = tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string);
  const server = createMtlsServer({ ...tls, log: () => undefined }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    url: `https://localhost:${(server.address() as AddressInfo).port}/mcp`,
    handler,
    tls,
    clients,
    close: async () => {
      await handler.close();
      server.closeAllConnections();
      server.close();
    },
  };
}
