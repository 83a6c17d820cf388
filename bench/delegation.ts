/**
 * bench/delegation: a platform serving BENCH_DELEGATION_USERS people (default 1000), each making
 * BENCH_DELEGATION_CALLS tools/call (default 10), through createDelegatingAgent (one delegated
 * certificate and one connection pool per person, exchanged at `ca serve` POST /delegate), next
 * to the same calls with one service certificate, in one run, against one real MCP server (SDK
 * 1.x adapter, mTLS, a policy). BENCH_DELEGATION_CONCURRENCY people at a time (default 16).
 *
 * Prints one JSON line: exchanges per second at the CA (the first certificate of every person),
 * tools/call per second both ways and their ratio. `npm run bench` style: `node --import tsx
 * bench/delegation.ts`; BENCH_DELEGATION_USERS=20 BENCH_DELEGATION_CALLS=3 is a smoke run.
 */
import 'reflect-metadata';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Authority } from '../src/ca/authority.js';
import { initCa } from '../src/ca/init.js';
import { createCaServer } from '../src/ca/serve/server.js';
import { createMtlsAgent, createMtlsFetch } from '../src/client/agent.js';
import { createDelegatingAgent } from '../src/client/delegating-agent.js';
import { signGrant } from '../src/delegation/grant.js';
import { callerOf } from '../src/mcp/caller.js';
import { createMcpSdk1Handler } from '../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki } from '../src/mtls/mtls-server.js';
import { policyFromText } from '../src/policy/compile.js';
import { privateKeyPem } from '../src/x509/keys.js';
import { readCertificates } from '../src/x509/pem.js';

const USERS = Number(process.env.BENCH_DELEGATION_USERS ?? 1000);
const CALLS = Number(process.env.BENCH_DELEGATION_CALLS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_DELEGATION_CONCURRENCY ?? 16);
const TD = 'acme.test';
const PLATFORM = `spiffe://${TD}/service/chat-platform`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-delegation-'));
const caDir = path.join(dir, 'ca');
initCa({ dir: caDir, trustDomain: TD, rootTtlMs: 3650 * 86_400_000, intermediateTtlMs: 1800 * 86_400_000 });
fs.appendFileSync(path.join(caDir, 'config.yaml'), 'delegation:\n  actors:\n    - actor: service/chat-platform\n      for: { any: true }\n');
const ca = Authority.open(caDir);

const creds = async (kind: 'user' | 'service', id: string, teams: string[] = []) => {
  const i = await ca.issueClient({ kind, id, teams, roles: [] });
  return { chain: readCertificates(Buffer.from(i.chainPem)), key: crypto.createPrivateKey(privateKeyPem(i.key!.pkcs8)), pem: i.chainPem };
};
const rootDer = readCertificates(Buffer.from(ca.rootPem));
const platform = await creds('service', 'chat-platform');
const users = await Promise.all(Array.from({ length: USERS }, (_, i) => creds('user', `user${i}`, ['sre'])));
const grants = await Promise.all(users.map((u) => signGrant({ chain: u.chain, key: u.key, actor: PLATFORM, ttlMs: 8 * 3600_000 })));

// the CA online
const caTls = await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] });
const caServer = createCaServer({ authority: ca, cert: caTls.chainPem, key: privateKeyPem(caTls.key!.pkcs8) });
await new Promise<void>((r) => caServer.listen(0, '127.0.0.1', r));
const caUrl = `https://localhost:${(caServer.address() as AddressInfo).port}`;

// the MCP server
const srv = await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] });
fs.writeFileSync(path.join(dir, 'srv.pem'), srv.chainPem);
fs.writeFileSync(path.join(dir, 'srv.key'), privateKeyPem(srv.key!.pkcs8));
const policy = policyFromText(`version: 1\nrules:\n  - id: sre\n    subjects: { teams: [sre] }\n    tools: [who]\n  - id: platform\n    subjects: { services: [chat-platform] }\n    tools: [who]\n`);
const build = (server: McpServer) => {
  server.registerTool('who', { description: 'who' }, async (extra) => {
    const id = callerOf(extra);
    return { content: [{ type: 'text', text: id.actingFor?.principal ?? id.principal }] };
  });
};
const handler = createMcpSdk1Handler({ serverInfo: { name: 'bench', version: '1' }, build, policy: () => policy });
const mcp = createMtlsServer({ ...tlsFromPki(caDir, path.join(dir, 'srv.pem'), path.join(dir, 'srv.key')), log: () => undefined }, handler);
await new Promise<void>((r) => mcp.listen(0, '127.0.0.1', r));
const mcpUrl = new URL(`https://localhost:${(mcp.address() as AddressInfo).port}/mcp`);

async function pool<T>(items: readonly T[], work: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i] as T, i);
    }
  }));
}

let wrong = 0;
async function calls(fetch: typeof globalThis.fetch, expect: string): Promise<void> {
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { fetch }));
  for (let c = 0; c < CALLS; c++) {
    const r = (await client.callTool({ name: 'who', arguments: {} })) as { content: { text: string }[] };
    if (r.content[0]?.text !== expect) wrong++;
  }
  await client.close();
}

// 1. one service certificate for every call (what the platform does today); run again after 2.,
// since the first run also warms the process up (JIT, the server's caches)
async function serviceRun(): Promise<number> {
  const serviceAgent = createMtlsAgent({ chain: platform.chain, key: platform.key, ca: rootDer });
  const serviceFetch = createMtlsFetch(serviceAgent) as typeof fetch;
  const start = performance.now();
  await pool(users, async () => calls(serviceFetch, PLATFORM));
  const ms = performance.now() - start;
  await serviceAgent.close();
  return ms;
}
const serviceWarmupMs = await serviceRun();
let t0 = performance.now();

// 2. through createDelegatingAgent: first the exchanges (one per person), then the calls
const agent = createDelegatingAgent({ bundle: { chain: platform.chain, key: platform.key, ca: rootDer }, caUrl });
users.forEach((_, i) => agent.setProof(`spiffe://${TD}/user/user${i}`, { grant: grants[i] as string }));
t0 = performance.now();
await pool(users, async (_, i) => void (await agent.dispatcherFor(`spiffe://${TD}/user/user${i}`)));
const exchangeMs = performance.now() - t0;
t0 = performance.now();
await pool(users, async (_, i) => calls(await agent.fetchFor(`spiffe://${TD}/user/user${i}`), `spiffe://${TD}/user/user${i}`));
const delegatedMs = performance.now() - t0;
const exchanges = agent.exchanges;
await agent.close();
const serviceMs = await serviceRun();

const total = USERS * CALLS;
const result = {
  users: USERS,
  callsPerUser: CALLS,
  concurrency: CONCURRENCY,
  exchanges,
  exchangesPerSecond: Math.round((exchanges / exchangeMs) * 1000),
  serviceCallsPerSecondWarmup: Math.round((total / serviceWarmupMs) * 1000),
  serviceCallsPerSecond: Math.round((total / serviceMs) * 1000),
  delegatedCallsPerSecond: Math.round((total / delegatedMs) * 1000),
  ratio: Math.round((serviceMs / delegatedMs) * 100) / 100,
  wrongIdentity: wrong,
};
console.log(JSON.stringify(result));
await handler.close();
mcp.closeAllConnections();
await new Promise((r) => mcp.close(r));
await caServer.shutdown(500);
await ca.store.close();
fs.rmSync(dir, { recursive: true, force: true });
