/**
 * Two tenants on one server: each tenant is a trust domain with its own CA. The server trusts
 * both roots; the policy names principals per trust domain, so a tenant sees only its tools,
 * even for users with the same id, and a tenant's CA can only vouch for its own trust domain. Run: `node --import tsx examples/two-tenants/main.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { loadBundle } from '../../src/bundle/load.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { policyFromText } from '../../src/policy/compile.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer } from '../../src/mtls/mtls-server.js';
import { readCertificates } from '../../src/x509/pem.js';
import { checker, setupPki } from '../_shared/setup.js';

const acme = setupPki('acme.test', { alice: ['--team', 'ops'] });
const globex = setupPki('globex.test', { alice: ['--team', 'ops'] }); // another alice, another company
const c = checker();
const policy = policyFromText(`
version: 1
trustDomains: [acme.test, globex.test]
rules:
  - { id: acme-ops, subjects: { principals: ["spiffe://acme.test/*/*"], teams: [ops] }, tools: ["acme_*"] }
  - { id: globex-ops, subjects: { principals: ["spiffe://globex.test/*/*"], teams: [ops] }, tools: ["globex_*"] }
`);
const build = (s: McpServer) => {
  for (const t of ['acme_billing', 'acme_deploy', 'globex_billing']) s.registerTool(t, { description: t }, async () => ({ content: [{ type: 'text', text: t }] }));
};
const handler = createMcpSdk1Handler({ serverInfo: { name: 'multi-tenant', version: '1.0.0' }, policy, build });
const roots = [acme, globex].map((p) => fs.readFileSync(path.join(p.pki, 'root.crt')));
// each tenant's intermediate too: the server verifies both tenants' CRLs with them
const intermediates = [acme, globex].map((p) => fs.readFileSync(path.join(p.pki, 'intermediate.crt')));
const crls = [acme, globex].flatMap((p) => ['root', 'intermediate'].map((w) => fs.readFileSync(path.join(p.pki, 'crl', `${w}.crl`))));
const server = createMtlsServer({ cert: fs.readFileSync(acme.serverCert), key: fs.readFileSync(acme.serverKey), ca: [...roots, ...intermediates], crl: crls, trustDomains: ['acme.test', 'globex.test'],
  // each trust domain only from its own root: without this, globex's CA could issue a certificate
  // naming spiffe://acme.test/... and the server (trusting both roots) would accept it
  trustDomainRoots: { 'acme.test': roots[0]!, 'globex.test': roots[1]! } }, handler);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `https://localhost:${(server.address() as AddressInfo).port}/mcp`;

for (const [tenant, p, expected] of [['acme', acme, ['acme_billing', 'acme_deploy']], ['globex', globex, ['globex_billing']]] as const) {
  const bundle = await loadBundle(p.bundle('alice'));
  // the server's certificate comes from acme's CA: a globex client trusts it explicitly here
  const client = new Client({ name: `${tenant}-alice`, version: '1.0.0' });
  await client.connect(createSdk1Transport({ ...bundle, ca: [...bundle.ca, ...readCertificates(roots[0]!)] }, url));
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  console.log(`${bundle.identity?.principal} sees ${tools.join(', ')}`);
  c.check(JSON.stringify(tools) === JSON.stringify(expected), `${tenant}'s alice sees only ${tenant}'s tools`);
  await client.close();
}
await handler.close();
server.closeAllConnections();
server.close();
acme.cleanup();
globex.cleanup();
c.done();
