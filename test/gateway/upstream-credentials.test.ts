/**
 * Credentials as headers for an HTTP upstream (issue 21, upstream-credentials.ts): a real SDK
 * 1.x Streamable HTTP server records the raw headers of every request it gets and answers a
 * tool with a hash of the `Authorization` it received (never the value: the test then finds
 * no secret anywhere a client, the log, the audit file or /metrics can see). alice's token
 * reaches the upstream for alice, carol's for carol, bob has none and is refused; a client's
 * own Authorization, in any spelling, duplicated, or named in `Connection`, never reaches it.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { GatewayConfigSchema } from '../../src/gateway/config.js';
import { startGateway, type RunningGateway } from '../../src/gateway/run.js';
import { UpstreamCredentials } from '../../src/gateway/upstream-credentials.js';
import type { Identity } from '../../src/identity/identity.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const ALICE = 'tok-alice-9c1f0e77d2';
const CAROL = 'tok-carol-51aa0b3e64';
const hash = (v: string | undefined) => (v === undefined ? 'none' : crypto.createHash('sha256').update(v).digest('hex').slice(0, 16));
const POLICY = 'version: 1\nrules:\n  - id: all\n    subjects: { any: true }\n    tools: ["*"]\n';

type Files = { cert: string; key: string; ca: string };
const clients: Record<string, Files> = {};
/** every request the upstream got: its raw header lines */
const seen: string[][] = [];
const logged: string[] = [];
/** everything a client received, for the secret check */
const received: string[] = [];
let upstream: http.Server;
let gw: RunningGateway;
let url: string;
let base: string;
let ca: Buffer;

before(async () => {
  upstream = http.createServer(async (req, res) => {
    seen.push(req.rawHeaders);
    // a careless upstream that names the header it got in a notification's method: the gateway drops it, and says why
    if (req.url?.startsWith('/odd')) {
      const method = `debug/${String(req.headers.authorization).replace(/ /g, '_')}`;
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ jsonrpc: '2.0', method }, { jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'odd', version: '1' } } }]));
    }
    const server = new McpServer({ name: 'up', version: '1' });
    server.registerTool('whoami', { description: 'a hash of the Authorization the upstream got' }, async () => ({ content: [{ type: 'text', text: hash(req.headers.authorization) }] }));
    // a careless upstream: names the header it got in an error, and in a response header
    server.registerTool('leak', { description: 'echoes the Authorization it got' }, async () => ({ isError: true, content: [{ type: 'text', text: `refused credential ${req.headers.authorization}` }] }));
    res.setHeader('x-upstream-saw', String(req.headers.authorization));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close());
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const up = `http://127.0.0.1:${(upstream.address() as { port: number }).port}/mcp`;
  const pki = await makePki();
  base = pki.base;
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  for (const who of ['alice', 'bob', 'carol']) {
    const r = await pki.issue(['issue', 'client', '--user', who, '--team', 'dev']);
    clients[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  }
  ca = fs.readFileSync(path.join(pki.pki, 'root.crt'));
  const policy = path.join(base, 'policy.yaml');
  fs.writeFileSync(policy, POLICY);
  fs.writeFileSync(path.join(base, 'alice.token'), `${ALICE}\n`);
  const bearer = (src: Record<string, string>) => ({ Authorization: { ...src, format: 'Bearer {secret}' } });
  gw = await startGateway(
    GatewayConfigSchema.parse({
      listen: '127.0.0.1:0',
      tls: { cert: srv.files.cert, key: srv.files.key, pki: pki.pki },
      audit: path.join(base, 'audit.jsonl'),
      routes: [
        { path: '/mcp/h', upstream: up, policy, credentials: [{ principals: ['alice'], headers: bearer({ file: path.join(base, 'alice.token') }) }, { principals: ['spiffe://*/user/carol'], headers: bearer({ env: 'TEST_CAROL_TOKEN' }) }] },
        // not required: a caller without an entry goes through with no Authorization at all (not his own)
        { path: '/mcp/odd', upstream: up.replace(/\/mcp$/, '/odd'), policy, credentials: [{ principals: ['alice'], headers: bearer({ file: path.join(base, 'alice.token') }) }] },
        { path: '/mcp/open', upstream: up, policy, credentialsRequired: false, credentials: [{ principals: ['alice'], headers: bearer({ file: path.join(base, 'alice.token') }) }] },
      ],
    }),
    (l) => void logged.push(l),
    { env: { ...process.env, TEST_CAROL_TOKEN: CAROL } },
  );
  url = `https://localhost:${gw.address.port}`;
});

after(async () => {
  await gw?.stop();
  upstream?.close();
});

async function whoami(route: string, who: string, extraHeaders: Record<string, string> = {}, tool = 'whoami'): Promise<string> {
  const agent = createMtlsAgent(bundleOf(clients[who]!));
  const mtlsFetch = createMtlsFetch(agent);
  // every body a client receives is kept for the secret check
  const recording = (async (input: string | URL | Request, init?: RequestInit) => {
    const r = await mtlsFetch(input as string, init);
    received.push(JSON.stringify([...r.headers]), await r.clone().text());
    return r;
  }) as typeof fetch;
  const client = new Client({ name: who, version: '1' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(`${url}${route}`), { fetch: recording, requestInit: { headers: extraHeaders } }));
    const r = (await client.callTool({ name: tool, arguments: {} })) as { content: { text: string }[] };
    return r.content[0]!.text;
  } finally {
    await client.close().catch(() => undefined);
    await agent.close();
  }
}

/** One raw HTTP/1.1 request over mTLS, header lines as given (duplicates, case variants). */
function raw(who: string, route: string, headerLines: string[], body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: gw.address.port, servername: 'localhost', ca, cert: fs.readFileSync(clients[who]!.cert), key: fs.readFileSync(clients[who]!.key) }, () => {
      s.write([`POST ${route} HTTP/1.1`, 'Host: localhost', 'Content-Type: application/json', 'Accept: application/json, text/event-stream', `Content-Length: ${Buffer.byteLength(body)}`, ...headerLines, 'Connection: close', '', body].join('\r\n'));
    });
    let out = '';
    s.on('data', (c) => (out += c));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(15_000, () => s.destroy(new Error('no answer')));
  });
}

const authorizationsOf = (rawHeaders: string[]) =>
  rawHeaders.flatMap((v, i) => (i % 2 === 0 && /^(proxy-)?authorization$/i.test(v) ? [`${v.toLowerCase()}: ${rawHeaders[i + 1]}`] : []));

test("alice's token reaches the upstream for alice, carol's for carol; bob, with none, is refused (403, audited), never given another's", async () => {
  assert.equal(await whoami('/mcp/h', 'alice'), hash(`Bearer ${ALICE}`));
  assert.equal(await whoami('/mcp/h', 'carol'), hash(`Bearer ${CAROL}`));
  // carol sends her own Authorization too: the gateway's replaces it
  assert.equal(await whoami('/mcp/h', 'carol', { Authorization: 'Bearer carol-made-this-up' }), hash(`Bearer ${CAROL}`));
  const before = seen.length;
  await assert.rejects(whoami('/mcp/h', 'bob'), /needs a credential, and the gateway has none for spiffe:\/\/[^ ]*\/bob/s);
  assert.equal(seen.length, before, 'the upstream got a request of bob');
  // the audit line is appended as the refusal is answered: it can land just after the answer does
  const refusedLine = /"event":"credential\.refused","principal":"spiffe:\/\/[^"]*\/bob"/;
  let audit = '';
  for (let i = 0; i < 40 && !refusedLine.test((audit = fs.readFileSync(path.join(base, 'audit.jsonl'), 'utf8'))); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(audit, refusedLine);
  // not required: bob reaches the upstream, without any Authorization (his own is dropped too)
  assert.equal(await whoami('/mcp/open', 'bob', { Authorization: `Bearer ${ALICE}` }), hash(undefined));
  assert.equal(await whoami('/mcp/open', 'alice'), hash(`Bearer ${ALICE}`));
});

test('a client cannot replace, duplicate or drop the injected header: case variants, duplicates, Proxy-Authorization, Connection: authorization', async () => {
  const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  const attempts: string[][] = [
    ['Authorization: Bearer evil-1', 'authorization: Bearer evil-2', 'AUTHORIZATION: Bearer evil-3'],
    ['Connection: authorization', 'Authorization: Bearer evil-4'],
    ['aUtHoRiZaTiOn: Bearer evil-5', 'Proxy-Authorization: Basic ZXZpbA=='],
    ['Connection: keep-alive, Authorization'],
  ];
  for (const lines of attempts) {
    const before = seen.length;
    const answer = await raw('alice', '/mcp/h', lines, init);
    received.push(answer);
    assert.match(answer, /^HTTP\/1\.1 200/, answer);
    const got = seen.slice(before);
    assert.equal(got.length, 1, `${lines.join(' | ')}: ${got.length} upstream requests`);
    assert.deepEqual(authorizationsOf(got[0]!), [`authorization: Bearer ${ALICE}`], lines.join(' | '));
  }
  // bob, raw, with alice's token as his own: refused before the upstream
  const before = seen.length;
  const answer = await raw('bob', '/mcp/h', [`Authorization: Bearer ${ALICE}`], init);
  assert.match(answer, /^HTTP\/1\.1 403/);
  assert.equal(seen.length, before);
});

test('an upstream that echoes the credential it got (in an answer, in a response header): the caller gets [redacted], never the secret', async () => {
  const from = received.length;
  assert.equal(await whoami('/mcp/h', 'alice', {}, 'leak'), 'refused credential Bearer [redacted]');
  const got = received.slice(from).join('\n');
  assert.match(got, /x-upstream-saw","Bearer \[redacted\]/);
  assert.ok(!got.includes(ALICE), `alice's client received her token: ${got.slice(0, 600)}`);
});

test('an upstream message dropped for a reason that quotes it (a notification method naming the token): the audit line and the log say [redacted]', async () => {
  const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  const answer = await raw('alice', '/mcp/odd', [], init);
  received.push(answer);
  assert.match(answer, /^HTTP\/1\.1 200/);
  await new Promise((r) => setTimeout(r, 100));
  const audit = fs.readFileSync(path.join(base, 'audit.jsonl'), 'utf8');
  assert.match(audit, /"event":"response\.refused"[^\n]*debug\/Bearer_\[redacted\]/);
  assert.ok(!audit.includes(ALICE), `the audit file holds the secret: ${audit.split('\n').filter((l) => l.includes(ALICE)).join('\n')}`);
  assert.ok(!logged.join('\n').includes(ALICE), 'the log holds the secret');
});

test('no secret in the log, the audit file, /metrics, /healthz or anything a client received', async () => {
  const get = (p: string) => new Promise<string>((resolve, reject) => https.get(`${url}${p}`, { ca }, (res) => { let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => resolve(b)); }).on('error', reject));
  // a reload re-reads the secrets: what it logs is checked too
  gw.reload();
  await new Promise((r) => setTimeout(r, 300));
  const outputs: Record<string, string> = {
    log: logged.join('\n'),
    audit: fs.readFileSync(path.join(base, 'audit.jsonl'), 'utf8'),
    metrics: await get('/metrics'),
    healthz: await get('/healthz'),
    received: received.join('\n'),
  };
  assert.ok(outputs.received!.length > 1000, 'the clients received answers');
  for (const [name, text] of Object.entries(outputs)) for (const secret of [ALICE, CAROL]) assert.ok(!text.includes(secret), `${name} holds a secret`);
});

test('gateway.yaml: header credentials only for HTTP upstreams, env only for stdio; reserved header names refused; an unreadable secret refuses its callers and says why without a value', async () => {
  const route = { path: '/x', upstream: 'http://127.0.0.1:1/mcp', policy: 'p.yaml' };
  const parse = (r: Record<string, unknown>) => GatewayConfigSchema.safeParse({ listen: '127.0.0.1:0', tls: { cert: 'c', key: 'k', pki: 'p' }, routes: [r] });
  const msg = (r: Record<string, unknown>) => { const p = parse(r); return p.success ? 'ok' : p.error.issues.map((i) => i.message).join('; '); };
  assert.match(msg({ ...route, credentials: [{ principals: ['a'], env: { T: { env: 'X' } } }] }), /an HTTP upstream gets credentials as headers, not env/);
  assert.match(msg({ ...route, credentials: [{ principals: ['a'], headers: { Host: { env: 'X' } } }] }), /a header the gateway sets or drops itself/);
  assert.match(msg({ ...route, credentials: [{ principals: ['a'], headers: { Authorization: { env: 'X', format: 'Bearer' } } }] }), /\{secret\}/);
  assert.match(msg({ path: '/x', policy: 'p.yaml', stdio: { command: 'x', processModel: 'per-principal', credentials: [{ principals: ['a'], headers: { Authorization: { env: 'X' } } }] } }), /not headers/);
  assert.equal(msg({ ...route, credentials: [{ principals: ['a'], headers: { Authorization: { env: 'X', format: 'Bearer {secret}' } } }] }), 'ok');
  const lines: string[] = [];
  const creds = new UpstreamCredentials('/x', [{ principals: ['alice'], headers: { Authorization: { env: 'NOT_SET_HERE', format: 'Bearer {secret}' } } }, { principals: ['carol'], headers: { 'X-Api-Key': { env: 'BROKEN' } } }], true, (l) => void lines.push(l));
  creds.load({ BROKEN: `${CAROL}\r\nX-Injected: 1` });
  const id = (who: string) => ({ principal: `spiffe://acme.test/user/${who}`, id: who, teams: [], roles: [] }) as unknown as Identity;
  assert.deepEqual(creds.for(id('alice')), { refused: "the credential for this upstream is unavailable (the gateway's log says why)" });
  assert.deepEqual(creds.for(id('carol')), { refused: "the credential for this upstream is unavailable (the gateway's log says why)" });
  assert.match(lines.join('\n'), /credentials\[0\]\.headers\.Authorization: the gateway's environment has no NOT_SET_HERE/);
  assert.match(lines.join('\n'), /credentials\[1\]\.headers\.X-Api-Key: the secret holds a line break/);
  assert.ok(!lines.join('\n').includes(CAROL));
  // a bare id is a user's: a service named alice does not get alice's credential; a URI names a service
  const svc = new UpstreamCredentials('/x', [{ principals: ['alice'], headers: { Authorization: { env: 'A' } } }, { principals: ['spiffe://acme.test/service/ci-*'], headers: { Authorization: { env: 'C' } } }], true, () => undefined);
  svc.load({ A: 'a-secret', C: 'ci-secret' });
  const as = (principal: string, id: string) => ({ principal, id, teams: [], roles: [] }) as unknown as Identity;
  assert.deepEqual(svc.for(as('spiffe://acme.test/user/alice', 'alice')), { headers: { authorization: 'a-secret' } });
  assert.match(JSON.stringify(svc.for(as('spiffe://acme.test/service/alice', 'alice'))), /needs a credential/);
  assert.deepEqual(svc.for(as('spiffe://acme.test/service/ci-bot', 'ci-bot')), { headers: { authorization: 'ci-secret' } });
});
