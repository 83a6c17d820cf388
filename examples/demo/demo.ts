/**
 * The demo: `npm install && npm run demo`.
 *
 * 1. A CA in a temporary folder (or --dir DIR), a server certificate, and client certificates
 *    for alice (team sre, role admin), bob (team dev) and carol (team sre), whom the operator
 *    then revokes; all with the mcp-mtls CLI, as an operator would.
 * 2. An MCP server (SDK 1.x) with the example policy (examples/demo/policy.yaml), in strict
 *    mode, on 127.0.0.1.
 * 3. alice, bob and carol connect with the MCP SDK client: who sees which tools, which calls
 *    are allowed or denied and by which rule; carol is refused at the handshake.
 *
 * It checks its own results (exit 1 if anything is off). --keep leaves the server running and
 * prints the paths for trying the CLI and the stdio bridge. The server listens on --port N
 * (default 0: a free port, printed).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { loadBundle } from '../../src/bundle/load.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { loadPolicy } from '../../src/policy-file/load.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.join(here, '..', '..', 'bin', 'mcp-mtls.js');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const dirArg = args.indexOf('--dir');
// --port N: where the server listens (default 0: a free port, printed); --keep never assumes 8443 is free
const portArg = args.indexOf('--port');
const port = portArg >= 0 ? Number(args[portArg + 1]) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`demo: --port "${args[portArg + 1] ?? ''}" is not a port (0 to 65535; 0 picks a free one)`);
  process.exit(64);
}
const work = dirArg >= 0 ? path.resolve(args[dirArg + 1] ?? 'demo') : fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-mtls-demo-'));
fs.mkdirSync(work, { recursive: true });
const pki = path.join(work, 'pki');
const certs = path.join(work, 'certs');
const failures: string[] = [];
const check = (ok: boolean, what: string) => void (ok || failures.push(what));

function mcpMtls(...cliArgs: string[]): unknown {
  const shown = cliArgs
    .filter((a) => a !== '--json')
    .map((a) => (a.startsWith(work) ? `$DEMO${a.slice(work.length)}` : a))
    .map((a) => (/\s/.test(a) ? `"${a}"` : a))
    .join(' ');
  console.log(`$ mcp-mtls ${shown}`);
  const r = spawnSync(process.execPath, [bin, ...cliArgs], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mcp-mtls ${cliArgs[0]} failed (exit ${r.status}): ${r.stderr}`);
  return cliArgs.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
}

interface Issued {
  serial: string;
  files: { cert: string; key: string; ca: string };
}

console.log(`mcp-mtls demo: an MCP server that knows who is calling (DEMO=${work})\n`);
mcpMtls('ca', 'init', '--dir', pki, '--trust-domain', 'demo.test', '--name', 'Demo MCP CA', '--json');
const server = mcpMtls('issue', 'server', '--dir', pki, '--dns', 'localhost', '--ip', '127.0.0.1', '--out', certs, '--json') as Issued;
const people: [string, string[]][] = [
  ['alice', ['--team', 'sre', '--role', 'admin']],
  ['bob', ['--team', 'dev']],
  ['carol', ['--team', 'sre']],
];
const issued: Record<string, Issued> = {};
for (const [who, extra] of people) issued[who] = mcpMtls('issue', 'client', '--dir', pki, '--user', who, ...extra, '--out', certs, '--json') as Issued;
mcpMtls('revoke', issued.carol!.serial, '--dir', pki, '--reason', 'affiliationChanged', '--json');
for (const who of Object.keys(issued)) mcpMtls('bundle', issued[who]!.files.cert, '--dir', pki, '--format', 'profile', '--url', 'https://localhost/mcp', '--out', path.join(certs, `${who}.yaml`), '--json');

// the MCP server: a few tools, schemas made once; the policy decides who sees what
const envArg = { env: z.enum(['staging', 'production']) };
const queryArg = { q: z.string() };
function build(s: McpServer) {
  s.registerTool('search_docs', { description: 'search the handbook', inputSchema: queryArg }, async ({ q }) => ({ content: [{ type: 'text', text: `3 pages match "${q}"` }] }));
  s.registerTool('deploy', { description: 'deploy the app', inputSchema: envArg }, async ({ env }, extra) => ({
    content: [{ type: 'text', text: `deployed to ${env} by ${(extra.authInfo?.extra as { identity: { principal: string } }).identity.principal}` }],
  }));
  s.registerTool('restart_service', { description: 'restart a service' }, async () => ({ content: [{ type: 'text', text: 'restarted' }] }));
  s.registerTool('read_payroll', { description: 'HR only' }, async () => ({ content: [{ type: 'text', text: 'salaries' }] }));
}
const audit = memoryAudit();
const handler = createMcpSdk1Handler({ serverInfo: { name: 'demo', version: '1.0.0' }, policy: loadPolicy(path.join(here, 'policy.yaml')), build, audit, whoami: true });
const httpsServer = createMtlsServer({ ...tlsFromPki(pki, server.files.cert, server.files.key), mode: 'strict', audit, log: () => undefined }, handler);
await new Promise<void>((resolve, reject) => {
  httpsServer.once('error', (e: NodeJS.ErrnoException) =>
    reject(e.code === 'EADDRINUSE' ? new Error(`port ${port} is in use: pass another --port, or --port 0 for a free one`) : e),
  );
  httpsServer.listen(port, '127.0.0.1', () => resolve());
});
const url = `https://localhost:${(httpsServer.address() as AddressInfo).port}/mcp`;
console.log(`\nMCP server (SDK 1.x + mcp-mtls, strict mode) on ${url}, policy examples/demo/policy.yaml\n`);

interface Row {
  who: string;
  identity: string;
  tools: string;
  calls: string;
}
const rows: Row[] = [];
const calls: [string, Record<string, unknown>][] = [
  ['deploy', { env: 'staging' }],
  ['deploy', { env: 'production' }],
  ['restart_service', {}],
  ['read_payroll', {}],
];
for (const who of ['alice', 'bob', 'carol']) {
  const client = new Client({ name: `${who}-agent`, version: '1.0.0' });
  try {
    await client.connect(createSdk1Transport(await loadBundle(path.join(certs, `${who}.yaml`)), url));
    const tools = (await client.listTools()).tools.map((t) => t.name).filter((t) => t !== 'whoami').sort();
    const outcomes: string[] = [];
    for (const [name, a] of calls) {
      const r = (await client.callTool({ name, arguments: a })) as { isError?: boolean; content: { text: string }[] };
      const decision = audit.events.findLast((e) => e.event === 'decision' && e.target === name && e.principal === `spiffe://demo.test/user/${who}`);
      const label = `${name}${a.env ? `(${a.env})` : ''}`;
      const hidden = r.isError === true && /not found/.test(r.content[0]?.text ?? '');
      outcomes.push(!r.isError ? `${label}: ok` : hidden ? `${label}: hidden${decision?.ruleId ? ` (${decision.ruleId})` : ''}` : `${label}: denied by ${decision?.ruleId}`);
    }
    const me = JSON.parse(((await client.callTool({ name: 'whoami', arguments: {} })) as { content: { text: string }[] }).content[0]!.text);
    rows.push({ who, identity: `${me.principal} teams=[${me.teams}] roles=[${me.roles}]`, tools: tools.join(' '), calls: outcomes.join('; ') });
  } catch (e) {
    const refused = audit.events.findLast((x) => x.event === 'auth.refused');
    rows.push({ who, identity: 'refused at the TLS handshake', tools: '-', calls: `reason: ${refused?.reason ?? (e as Error).message}` });
  } finally {
    await client.close().catch(() => undefined);
  }
}

for (const r of rows) {
  console.log(`${r.who.padEnd(6)} ${r.identity}`);
  console.log(`       sees:  ${r.tools}`);
  console.log(`       calls: ${r.calls}\n`);
}
const row = (who: string) => rows.find((r) => r.who === who) as Row;
check(row('alice').tools === 'deploy restart_service search_docs', 'alice sees deploy, restart_service and search_docs');
check(/deploy\(production\): ok/.test(row('alice').calls), 'alice deploys to production');
check(row('bob').tools === 'deploy search_docs', 'bob sees deploy and search_docs');
check(/deploy\(staging\): ok/.test(row('bob').calls) && /deploy\(production\): denied by dev-staging-only/.test(row('bob').calls), 'bob deploys to staging only');
check(/restart_service: hidden/.test(row('bob').calls), 'restart_service is hidden from bob');
check(/read_payroll: hidden \(payroll-is-hr-only\)/.test(row('alice').calls), 'nobody reads payroll');
check(row('carol').identity === 'refused at the TLS handshake' && /certificate_revoked/.test(row('carol').calls), 'carol (revoked) is refused');

if (failures.length) {
  console.error(`demo FAILED:\n  ${failures.join('\n  ')}`);
  process.exitCode = 1;
} else {
  console.log('demo OK: each caller got exactly what the policy gives their certificate; the revoked one was refused.');
}
if (keep) {
  const chosen = (httpsServer.address() as AddressInfo).port;
  console.log(`\nThe server keeps running on ${url} (port ${chosen}${port === 0 ? ', a free one; --port N to choose' : ''}; Ctrl-C to stop). Try:
  npx mcp-mtls inspect ${path.join(certs, 'alice.crt')} --dir ${pki}
  npx mcp-mtls policy explain ${path.join(here, 'policy.yaml')} --cert ${path.join(certs, 'bob.crt')} --tool deploy --args '{"env":"production"}'
  npx mcp-mtls connect ${url} --bundle ${path.join(certs, 'alice.yaml')}     # the stdio bridge: paste {"jsonrpc":"2.0","id":1,"method":"initialize",...}`);
} else {
  await handler.close();
  httpsServer.closeAllConnections();
  httpsServer.close();
  if (dirArg < 0) fs.rmSync(work, { recursive: true, force: true });
}
