/**
 * Processes for bench/gateway.ts: `upstream DIR` (an SDK 1.x MCP server over plain HTTP, the
 * server being protected), `gateway DIR UPSTREAM_URL` (the mcp-mtls gateway in front of it,
 * from the compiled package) or `floor DIR UPSTREAM_URL` (the least a Node proxy does for the
 * same request: node:https asking for the client certificate, the body parsed and re-serialized,
 * one keep-alive undici Agent, the answer parsed and re-serialized, head and body in one end();
 * no identity, policy, headers rewriting or audit: what this codebase cannot go below with
 * node:https and undici). Reports { port }; answers "cpu" with process.cpuUsage().
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Agent } from 'undici';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import { createGatewayHandler } from '../dist/gateway/proxy.js';
import { policyFromText } from '../dist/policy/compile.js';
import { createMtlsServer } from '../dist/mtls/mtls-server.js';
import { serveForBench } from './child-ipc.js';

const [mode, dir, upstreamUrl] = process.argv.slice(2) as [string, string, string | undefined];
const shape = { text: z.string() };
const validator = new AjvJsonSchemaValidator();
let server: http.Server;
if (mode === 'upstream') {
  server = http.createServer(async (req, res) => {
    const mcp = new McpServer({ name: 'upstream', version: '1' }, { jsonSchemaValidator: validator });
    mcp.registerTool('echo', { description: 'echo', inputSchema: shape }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
    mcp.registerTool('other', { description: 'another', inputSchema: shape }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
} else if (mode === 'floor') {
  const read = (f: string) => fs.readFileSync(`${dir}/${f}`);
  const target = new URL(upstreamUrl as string);
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  const whole = (s: NodeJS.ReadableStream) => new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    s.once('error', reject);
  });
  server = https.createServer({ cert: read('server.crt'), key: read('server.key'), ca: read('root.crt'), requestCert: true, rejectUnauthorized: true }, async (req, res) => {
    const body = JSON.stringify(JSON.parse((await whole(req)).toString('utf8')));
    const up = await agent.request({ origin: target.origin, path: target.pathname, method: 'POST', headers: { 'content-type': 'application/json', accept: String(req.headers.accept), 'content-length': String(Buffer.byteLength(body)) }, body });
    const answer = JSON.stringify(JSON.parse((await whole(up.body)).toString('utf8')));
    res.writeHead(up.statusCode, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(answer)) });
    res.end(answer);
  }) as unknown as http.Server;
} else {
  const read = (f: string) => fs.readFileSync(`${dir}/${f}`);
  const policy = policyFromText('version: 1\nrules:\n  - id: bench\n    subjects: { teams: [bench] }\n    tools: ["*"]\n');
  const handler = createGatewayHandler({ routes: [{ prefix: '/mcp', upstream: new URL(upstreamUrl as string), policy: () => policy }], log: () => undefined, audit: { includeArgs: false, write: () => undefined } });
  server = createMtlsServer({ cert: read('server.crt'), key: read('server.key'), ca: read('root.crt'), log: () => undefined }, handler);
}
serveForBench(server);
