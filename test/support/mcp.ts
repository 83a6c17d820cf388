/** A CA with a server and a few clients, an mTLS MCP server on 127.0.0.1:0, and SDK clients: for the adapter tests. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMcpSdk1Handler, type McpSdk1Options } from '../../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import type { TrustedProxy } from '../../src/mtls/trusted-proxies.js';
import { policyFromText, type Policy } from '../../src/policy/compile.js';
import { readCertificates } from '../../src/x509/pem.js';
import { cliOk } from './cli.js';
import { makePki, type TestPki } from './pki.js';

export interface ClientFiles {
  cert: string;
  key: string;
  ca: string;
  serial: string;
}

export const bundleOf = (f: { cert: string; key: string; ca: string }) => ({
  chain: readCertificates(fs.readFileSync(f.cert)),
  key: crypto.createPrivateKey(fs.readFileSync(f.key)),
  ca: readCertificates(fs.readFileSync(f.ca)),
});

export const TEST_POLICY = `
version: 1
rules:
  - id: sre-deploy
    subjects: { teams: [sre] }
    tools: [deploy]
  - id: everyone
    subjects: { any: true }
    tools: [search, who, whoami, slow]
    resources: ["docs://**"]
    prompts: [greet]
  - id: dev-staging
    subjects: { teams: [dev] }
    tools: [deploy_staging]
    when: 'args.env == "staging"'
`;

// schemas defined once, outside build (zod compiles a schema on its first parse)
const envSchema = { env: z.string() };
const querySchema = { q: z.string() };

export function buildTestServer(server: McpServer): void {
  server.registerTool('deploy', { description: 'deploy to production', inputSchema: envSchema }, async ({ env }) => ({ content: [{ type: 'text', text: `deployed to ${env}` }] }));
  server.registerTool('deploy_staging', { description: 'deploy to staging', inputSchema: envSchema }, async ({ env }) => ({ content: [{ type: 'text', text: `deployed to ${env}` }] }));
  server.registerTool('search', { description: 'search', inputSchema: querySchema }, async ({ q }) => ({ content: [{ type: 'text', text: `results for ${q}` }] }));
  server.registerTool('who', { description: 'who is calling, from the request context' }, async (extra) => ({
    content: [{ type: 'text', text: JSON.stringify({ clientId: extra.authInfo?.clientId, scopes: extra.authInfo?.scopes, identity: (extra.authInfo?.extra as { identity?: unknown })?.identity }) }],
  }));
  server.registerTool('slow', { description: 'reports progress while it works' }, async (extra) => {
    const token = extra._meta?.progressToken;
    for (let i = 1; i <= 3; i++) {
      if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: 3 } });
      await new Promise((r) => setTimeout(r, 10));
    }
    return { content: [{ type: 'text', text: 'done' }] };
  });
  server.registerTool('admin_secret', { description: 'nobody may see this' }, async () => ({ content: [{ type: 'text', text: 'secret' }] }));
  server.registerResource('handbook', 'docs://handbook', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'the handbook' }] }));
  server.registerResource('payroll', 'hr://payroll', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'salaries' }] }));
  server.registerPrompt('greet', { description: 'a greeting' }, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'hello' } }] }));
}

export interface McpFixture {
  pki: TestPki;
  server: MtlsServer;
  url: string;
  audit: ReturnType<typeof memoryAudit>;
  policy: { current: Policy };
  clients: Record<'alice' | 'bob' | 'carol', ClientFiles>;
  serverFiles: { cert: string; key: string };
  close(): Promise<void>;
}

export async function startFixture(options: Partial<McpSdk1Options> & { mode?: 'default' | 'strict'; policyText?: string; trustedProxies?: readonly TrustedProxy[]; host?: string } = {}): Promise<McpFixture> {
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  const issue = async (args: string[]) => {
    const r = await pki.issue(['issue', 'client', ...args]);
    return { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca, serial: r.serial };
  };
  const clients = {
    alice: await issue(['--user', 'alice', '--team', 'sre', '--role', 'admin']),
    bob: await issue(['--user', 'bob', '--team', 'dev']),
    carol: await issue(['--user', 'carol', '--team', 'sre']),
  };
  const audit = memoryAudit();
  const policy = { current: policyFromText(options.policyText ?? TEST_POLICY) };
  const handler = createMcpSdk1Handler({ serverInfo: { name: 'test', version: '1.0.0' }, build: buildTestServer, policy: () => policy.current, audit, whoami: true, ...options });
  const tlsMaterial = tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string);
  const server = createMtlsServer({ ...tlsMaterial, audit, mode: options.mode ?? 'default', log: () => undefined, ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}) }, handler);
  await new Promise<void>((r) => server.listen(0, options.host ?? '127.0.0.1', r));
  const url = `https://localhost:${(server.address() as AddressInfo).port}/mcp`;
  return {
    pki,
    server,
    url,
    audit,
    policy,
    clients,
    serverFiles: { cert: srv.files.cert, key: srv.files.key as string },
    close: async () => {
      await handler.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function connect(url: string, files: { cert: string; key: string; ca: string }) {
  const agent = createMtlsAgent(bundleOf(files));
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: createMtlsFetch(agent) as typeof fetch });
  await client.connect(transport);
  return { client, agent, close: async () => { await client.close(); await agent.close(); } };
}

export async function revoke(pki: TestPki, serial: string): Promise<Buffer[]> {
  await cliOk(['revoke', serial, '--dir', pki.pki, '--reason', 'keyCompromise']);
  return ['root', 'intermediate'].map((w) => fs.readFileSync(path.join(pki.pki, 'crl', `${w}.crl`)));
}

/** alice's bundle profile for the fixture's URL (what a desktop app's bridge is given): its path. */
export async function aliceProfile(f: McpFixture): Promise<string> {
  const file = path.join(f.pki.base, 'alice.yaml');
  await cliOk(['bundle', f.clients.alice.cert, '--dir', f.pki.pki, '--format', 'profile', '--url', f.url, '--out', file]);
  return file;
}
