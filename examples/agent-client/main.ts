/**
 * An agent in code: load a bundle, connect with the MCP SDK client over mTLS, list and call
 * tools, and read the server's refusal when the certificate is revoked.
 * Run: `node --import tsx examples/agent-client/main.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { loadBundle } from '../../src/bundle/load.js';
import { CertificateRefusedError } from '../../src/client/agent.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { policyFromText } from '../../src/policy/compile.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { checker, mcpMtls, setupPki } from '../_shared/setup.js';

const pki = setupPki('acme.test', { 'build-agent': ['--team', 'ci'] });
const c = checker();
const handler = createMcpSdk1Handler({
  serverInfo: { name: 'ci-tools', version: '1.0.0' },
  policy: policyFromText('version: 1\nrules:\n  - { id: ci, subjects: { teams: [ci] }, tools: [run_tests] }\n'),
  whoami: true,
  build: (s: McpServer) => void s.registerTool('run_tests', { description: 'runs the tests' }, async () => ({ content: [{ type: 'text', text: '213 passed' }] })),
});
const server = createMtlsServer(tlsFromPki(pki.pki, pki.serverCert, pki.serverKey), handler);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `https://localhost:${(server.address() as AddressInfo).port}/mcp`;

// ---- the agent's code -------------------------------------------------------------------------
const bundle = await loadBundle(pki.bundle('build-agent')); // checks expiry and key before connecting
const client = new Client({ name: 'build-agent', version: '1.0.0' });
await client.connect(createSdk1Transport(bundle, url));
const me = JSON.parse(((await client.callTool({ name: 'whoami', arguments: {} })) as { content: { text: string }[] }).content[0]!.text);
const result = (await client.callTool({ name: 'run_tests', arguments: {} })) as { content: { text: string }[] };
console.log(`connected as ${me.principal}; run_tests: ${result.content[0]!.text}`);
await client.close();
// ------------------------------------------------------------------------------------------------
c.check(me.principal === 'spiffe://acme.test/service/build-agent' || me.principal === 'spiffe://acme.test/user/build-agent', 'the server sees the agent');
c.check(result.content[0]!.text === '213 passed', 'the agent may run the tests');

// the operator revokes the agent; the server reloads its CRLs; the agent is told why
mcpMtls('revoke', path.join(pki.dir, 'certs', 'build-agent.crt'), '--dir', pki.pki, '--reason', 'keyCompromise');
server.reloadCrls(['root', 'intermediate'].map((w) => fs.readFileSync(path.join(pki.pki, 'crl', `${w}.crl`))));
const again = new Client({ name: 'build-agent', version: '1.0.0' });
try {
  await again.connect(createSdk1Transport(bundle, url));
  c.check(false, 'a revoked agent is refused');
} catch (e) {
  console.log(`after revocation: ${(e as Error).message}`);
  c.check(e instanceof CertificateRefusedError && e.reason === 'certificate_revoked', 'a revoked agent is refused, and told why');
}
await handler.close();
server.closeAllConnections();
server.close();
pki.cleanup();
c.done();
