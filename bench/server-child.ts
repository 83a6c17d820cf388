/**
 * A benchmark server process for bench/server.ts (forked, one per case), so that its CPU is
 * measured apart from the load generator. Modes:
 *   tls          the SDK 1.x server built per request as the adapter builds it (shared validator,
 *                schemas made once), over TLS without client certificates
 *   mtls         the same through createMtlsServer + createMcpSdk1Handler: identity, policy, audit
 *   sdk-default  the SDK's own stateless example: McpServer, validator and tool schemas made per request
 *   mtls-crl     mtls with a CRL of BENCH_CRL_ENTRIES revoked serials loaded
 *   node-mtls    bare node:https requiring client certificates, no adapter (the handshake baseline)
 * Reports { port } when listening, and answers "cpu" messages with process.cpuUsage().
 */
import fs from 'node:fs';
import https from 'node:https';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
// the compiled package (dist/, built by npm install), as users run it: tsx-transpiled sources carry helper wrappers
import { policyFromText } from '../dist/policy/compile.js';
import { createMcpSdk1Handler } from '../dist/mcp/sdk1.js';
import { createMtlsServer } from '../dist/mtls/mtls-server.js';
import { serveForBench } from './child-ipc.js';

const [mode, dir] = process.argv.slice(2) as [string, string];
const read = (f: string) => fs.readFileSync(`${dir}/${f}`);
const material = { cert: read('server.crt'), key: read('server.key'), ca: read('root.crt') };

const shape = { text: z.string() };
const build = (server: McpServer) => {
  server.registerTool('echo', { description: 'echo', inputSchema: shape }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
  server.registerTool('other', { description: 'another tool', inputSchema: shape }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
};
const policy = policyFromText('version: 1\nrules:\n  - id: all\n    subjects: { teams: [bench] }\n    tools: ["*"]\n');
const validator = new AjvJsonSchemaValidator();

async function plainHandler(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, perRequestDefaults: boolean) {
  let server: McpServer;
  if (perRequestDefaults) {
    // the SDK's stateless example, as people write it: everything made inside the handler
    server = new McpServer({ name: 'bench', version: '1' });
    server.registerTool('echo', { description: 'echo', inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
    server.registerTool('other', { description: 'another tool', inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
  } else {
    server = new McpServer({ name: 'bench', version: '1' }, { jsonSchemaValidator: validator });
    build(server);
  }
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString());
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    // as the adapter closes (mcp/sdk1.ts closeQuietly): the SDK's "Connection closed" error
    // made on close gets no stack trace; the SDK's own example (sdk-default) pays for one
    const limit = Error.stackTraceLimit;
    if (!perRequestDefaults) Error.stackTraceLimit = 0;
    try {
      void transport.close();
      void server.close();
    } finally {
      Error.stackTraceLimit = limit;
    }
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
}

let server: https.Server;
if (mode === 'adapter-tls') {
  const handler = createMcpSdk1Handler({ serverInfo: { name: 'bench', version: '1' }, build, policy, enableJsonResponse: true, audit: { includeArgs: false, write: () => undefined } });
  const identity = { principal: 'spiffe://bench.test/user/bench', trustDomain: 'bench.test', kind: 'user' as const, id: 'bench', teams: ['bench'], roles: [], serial: '1', fingerprint: 'f', notAfter: new Date() };
  server = https.createServer(material, (req, res) => {
    (req as unknown as { auth: unknown }).auth = { token: 'f', clientId: identity.principal, scopes: [], extra: { identity } };
    void handler(req as never, res);
  });
} else if (mode === 'mtls-forwarded') {
  // behind nginx ending TLS: the client certificate comes in ssl-client-cert from 127.0.0.1
  const handler = createMcpSdk1Handler({ serverInfo: { name: 'bench', version: '1' }, build, policy, enableJsonResponse: true, audit: { includeArgs: false, write: () => undefined } });
  server = createMtlsServer({ ...material, ca: [read('root.crt'), read('intermediate.crt')], log: () => undefined, trustedProxies: [{ from: '127.0.0.1', format: 'nginx' }] }, handler);
} else if (mode === 'node-mtls') {
  // bare node:https with client certificates and nothing else: what Node's TLS costs by itself
  server = https.createServer({ ...material, requestCert: true, rejectUnauthorized: true }, (_req, res) => void res.end('ok'));
} else if (mode === 'tls' || mode === 'sdk-default') {
  server = https.createServer(material, (req, res) => void plainHandler(req, res, mode === 'sdk-default'));
} else {
  const crl = mode === 'mtls-crl' ? [read('big.crl'), read('root.crl')] : [];
  const handler = createMcpSdk1Handler({ serverInfo: { name: 'bench', version: '1' }, build, policy, enableJsonResponse: true, audit: { includeArgs: false, write: () => undefined } });
  server = createMtlsServer({ ...material, crl, log: () => undefined }, handler);
}
serveForBench(server);
