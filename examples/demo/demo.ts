/**
 * The demo: `npm install && npm run demo`.
 *
 * Creates a CA in a temporary folder (or --dir DIR), issues a server certificate and client
 * certificates for alice (team sre, role admin), bob (team dev) and a build agent, then
 * starts a real mTLS server on 127.0.0.1 and connects as each client. The server turns
 * each verified certificate into an Identity, which is what MCP tools will receive.
 * A certificate from another CA is refused in the handshake. The demo checks its own
 * results and exits non-zero if anything is off; --keep leaves the files for the CLI.
 *
 * (The MCP server, policy and revocation parts join this demo as those capabilities land.)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { decodeIdentity } from '../../src/identity/decode.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'bin', 'mcp-mtls.js');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const dirArg = args.indexOf('--dir');
const work = dirArg >= 0 ? path.resolve(args[dirArg + 1] ?? 'pki') : fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-mtls-demo-'));
const pki = dirArg >= 0 ? work : path.join(work, 'pki');
const certs = path.join(dirArg >= 0 ? path.dirname(work) : work, 'certs');
const failures: string[] = [];

function mcpMtls(...cliArgs: string[]): unknown {
  const shown = cliArgs
    .filter((a) => a !== '--json')
    .map((a) => (a.startsWith(work) ? `$DEMO${a.slice(work.length)}` : a))
    .map((a) => (/\s/.test(a) ? `"${a}"` : a))
    .join(' ');
  console.log(`$ mcp-mtls ${shown}`);
  const r = spawnSync(process.execPath, [bin, ...cliArgs], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(r.stderr);
    throw new Error(`mcp-mtls ${cliArgs[0]} failed (exit ${r.status})`);
  }
  return cliArgs.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
}

interface Issued {
  principal?: string;
  files: { cert: string; key: string; ca: string };
}

console.log(`mcp-mtls demo: certificates that say who is calling (DEMO=${work})\n`);
mcpMtls('ca', 'init', '--dir', pki, '--trust-domain', 'demo.test', '--name', 'Demo MCP CA', '--json');
const server = mcpMtls('issue', 'server', '--dir', pki, '--dns', 'localhost', '--ip', '127.0.0.1', '--out', certs, '--json') as Issued;
const alice = mcpMtls('issue', 'client', '--dir', pki, '--user', 'alice', '--team', 'sre', '--role', 'admin', '--out', certs, '--json') as Issued;
const bob = mcpMtls('issue', 'client', '--dir', pki, '--user', 'bob', '--team', 'dev', '--out', certs, '--json') as Issued;
const agent = mcpMtls('issue', 'client', '--dir', pki, '--service', 'build-agent', '--team', 'dev', '--ttl', '1h', '--out', certs, '--json') as Issued;
// a certificate from a CA the server does not trust
const rogue = path.join(work, 'rogue');
mcpMtls('ca', 'init', '--dir', path.join(rogue, 'pki'), '--trust-domain', 'demo.test', '--json');
const mallory = mcpMtls('issue', 'client', '--dir', path.join(rogue, 'pki'), '--user', 'alice', '--role', 'admin', '--out', path.join(rogue, 'certs'), '--json') as Issued;

// A real mTLS server: the handshake verifies the chain; the server reads the identity once per connection.
const ca = fs.readFileSync(server.files.ca);
const srv = tls.createServer({ cert: fs.readFileSync(server.files.cert), key: fs.readFileSync(server.files.key), ca, requestCert: true, rejectUnauthorized: false }, (socket) => {
  socket.on('error', () => undefined);
  if (!socket.authorized) return socket.end(`refused: ${socket.authorizationError}\n`);
  const id = decodeIdentity(socket.getPeerX509Certificate()!.raw, { trustDomains: ['demo.test'] });
  socket.end(`${JSON.stringify({ principal: id.principal, teams: id.teams, roles: id.roles })}\n`);
});
await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
const port = (srv.address() as { port: number }).port;

function connectAs(client: Issued): Promise<string> {
  return new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, cert: fs.readFileSync(client.files.cert), key: fs.readFileSync(client.files.key) });
    let data = '';
    sock.on('data', (d) => (data += d));
    sock.on('end', () => resolve(data.trim()));
    sock.on('error', (e) => resolve(`error: ${e.message}`));
  });
}

console.log(`\nmTLS server on 127.0.0.1:${port}; connecting as each client:\n`);
const rows: [string, string, string, string][] = [];
const expect: [string, Issued, string | null][] = [
  ['alice', alice, '{"principal":"spiffe://demo.test/user/alice","teams":["sre"],"roles":["admin"]}'],
  ['bob', bob, '{"principal":"spiffe://demo.test/user/bob","teams":["dev"],"roles":[]}'],
  ['build-agent', agent, '{"principal":"spiffe://demo.test/service/build-agent","teams":["dev"],"roles":[]}'],
  ['mallory (other CA)', mallory, null],
];
for (const [who, cert, expected] of expect) {
  const answer = await connectAs(cert);
  if (expected === null) {
    const refused = answer.startsWith('refused');
    rows.push([who, 'refused', '-', answer.replace(/^refused: /, '')]);
    if (!refused) failures.push(`${who} was not refused: ${answer}`);
  } else {
    const seen = JSON.parse(answer.startsWith('{') ? answer : '{}');
    rows.push([who, seen.principal ?? answer, (seen.teams ?? []).join(',') || '-', (seen.roles ?? []).join(',') || '-']);
    if (answer !== expected) failures.push(`${who}: expected ${expected}, got ${answer}`);
  }
}
srv.close();

const header: [string, string, string, string] = ['client', 'identity the server sees', 'teams', 'roles / reason'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));

console.log('');
process.stdout.write(mcpMtls('list', '--dir', pki) as string);

if (failures.length) {
  console.error(`demo FAILED:\n  ${failures.join('\n  ')}`);
  process.exitCode = 1;
} else {
  console.log('demo OK: every client got the identity its certificate carries; the foreign certificate was refused.');
}
if (keep) {
  console.log(`\nKept: CA folder ${pki}, certificates in ${certs}. Try:\n  npx mcp-mtls inspect ${path.join(certs, 'alice.crt')} --dir ${pki}\n  npx mcp-mtls list --dir ${pki} --team dev`);
} else if (dirArg < 0) {
  fs.rmSync(work, { recursive: true, force: true });
}
