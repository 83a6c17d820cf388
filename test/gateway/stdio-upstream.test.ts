/**
 * stdio upstreams behind the gateway (issue 21): real stdio MCP servers from npm
 * (server-everything, server-memory) and a tiny fixture server, real TLS, real SDK 1.x
 * clients. List filtering, hidden-as-unknown, calls, progress and a sampling round trip
 * through a shared process; per-principal isolation of server-memory (with `shared` both
 * callers see one graph, so the check can fail); a crash mid-call; the process cap.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, CreateMessageRequestSchema, ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { GatewayConfigSchema } from '../../src/gateway/config.js';
import { startGateway, type RunningGateway } from '../../src/gateway/run.js';
import { ROOT } from '../support/cli.js';
import { bundleOf } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

const EVERYTHING = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const MEMORY = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js');
const FILESYSTEM = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');
const TINY = path.join(ROOT, 'test/fixtures/stdio/tiny-server.mjs');

const POLICY = `
version: 1
rules:
  - id: sre-everything
    subjects: { teams: [sre] }
    tools: ["*"]
  - id: dev-basics
    subjects: { teams: [dev] }
    tools: [echo, get-sum, read_graph, create_entities, env, pid, crash, hang, freeze, big, read_text_file, list_allowed_directories]
`;

const ALICE_SECRET = 'ghp_alice-only-4f1c9e';
const CAROL_SECRET = 'ghp_carol-only-77ab02';

type Files = { cert: string; key: string; ca: string };
const clients: Record<string, Files> = {};
let gw: RunningGateway;
let base: string;
let url: string;
const logged: string[] = [];
let gwFiles: { cert: string; key: string; pki: string };

async function connect(route: string, who: string, opts: { sampling?: boolean; roots?: string[] } = {}) {
  const agent = createMtlsAgent(bundleOf(clients[who]!));
  const client = new Client({ name: `${who}-client`, version: '1.0.0' }, { capabilities: { ...(opts.sampling ? { sampling: {} } : {}), ...(opts.roots ? { roots: { listChanged: true } } : {}) } });
  if (opts.roots) client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: opts.roots!.map((uri) => ({ uri })) }));
  if (opts.sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
      model: 'test-model',
      role: 'assistant',
      content: { type: 'text', text: `${who} answers: ${JSON.stringify(req.params.messages[0]?.content)}` },
    }));
  }
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}${route}`), { fetch: createMtlsFetch(agent) as typeof fetch }));
  return { client, close: async () => { await client.close(); await agent.close(); } };
}

const text = (r: unknown) => ((r as { content: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');

before(async () => {
  const pki = await makePki();
  base = pki.base;
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  for (const [who, args] of [['alice', ['--team', 'sre']], ['bob', ['--team', 'dev']], ['carol', ['--team', 'dev']], ['dave', ['--team', 'sre']]] as const) {
    const r = await pki.issue(['issue', 'client', '--user', who, ...args]);
    clients[who] = { cert: r.files.cert, key: r.files.key as string, ca: r.files.ca };
  }
  gwFiles = { cert: srv.files.cert, key: srv.files.key as string, pki: pki.pki };
  const policy = path.join(base, 'policy.yaml');
  fs.writeFileSync(policy, POLICY);
  fs.writeFileSync(path.join(base, 'alice.token'), `${ALICE_SECRET}\n`);
  for (const who of ['alice', 'bob']) {
    fs.mkdirSync(path.join(base, 'files', who), { recursive: true });
    fs.writeFileSync(path.join(base, 'files', who, 'notes.txt'), `${who}'s notes`);
  }
  const mem = path.join(base, 'memory');
  fs.mkdirSync(mem);
  gw = await startGateway(
    GatewayConfigSchema.parse({
      listen: '127.0.0.1:0',
      tls: gwFiles,
      upstreamTimeout: '60s',
      routes: [
        { path: '/mcp/everything', policy, stdio: { command: process.execPath, args: [EVERYTHING, 'stdio'] } },
        { path: '/mcp/memory', policy, stdio: { command: process.execPath, args: [MEMORY], env: { MEMORY_FILE_PATH: path.join(mem, '{principal.id}.jsonl') }, processModel: 'per-principal', maxProcesses: 2 } },
        { path: '/mcp/memory-shared', policy, stdio: { command: process.execPath, args: [MEMORY], env: { MEMORY_FILE_PATH: path.join(mem, 'shared.jsonl') } } },
        {
          path: '/mcp/secret',
          policy,
          stdio: {
            command: process.execPath,
            args: [TINY],
            processModel: 'per-principal',
            credentials: [
              { principals: ['alice'], env: { SECRET_TOKEN: { file: path.join(base, 'alice.token') } } },
              { principals: ['spiffe://*/user/carol'], env: { SECRET_TOKEN: { env: 'TEST_CAROL_TOKEN' } } },
            ],
          },
        },
        { path: '/mcp/files', policy, stdio: { command: process.execPath, args: [FILESYSTEM, path.join(base, 'files', '{principal.id}')], processModel: 'per-principal' } },
        { path: '/mcp/tiny', policy, stdio: { command: process.execPath, args: [TINY], env: { TINY_WHO: '{principal.id}' }, processModel: 'per-principal', maxProcesses: 2, idleTimeout: '1h' } },
      ],
    }),
    (l) => void logged.push(l),
    { env: { ...process.env, TEST_CAROL_TOKEN: CAROL_SECRET } },
  );
  url = `https://localhost:${gw.address.port}`;
});

after(async () => {
  await gw?.stop();
});

test('server-everything over stdio: lists filtered per caller, a hidden tool as unknown, a call, progress', async () => {
  const alice = await connect('/mcp/everything', 'alice');
  const bob = await connect('/mcp/everything', 'bob');
  try {
    const aliceTools = (await alice.client.listTools()).tools.map((t) => t.name);
    const bobTools = (await bob.client.listTools()).tools.map((t) => t.name).sort();
    assert.ok(aliceTools.includes('trigger-long-running-operation') && aliceTools.includes('get-env'), aliceTools.join(','));
    assert.deepEqual(bobTools, ['echo', 'get-sum']);
    const echoed = await bob.client.callTool({ name: 'echo', arguments: { message: 'hello from bob' } });
    assert.match(text(echoed), /hello from bob/);
    // hidden: what an unknown tool gets (the gateway answers; the process never sees it)
    const hidden = await bob.client.callTool({ name: 'get-env', arguments: {} });
    const unknown = await bob.client.callTool({ name: 'no-such-tool', arguments: {} });
    assert.equal(hidden.isError, true);
    assert.deepEqual(text(hidden).replace('get-env', 'X'), text(unknown).replace('no-such-tool', 'X'));
    // progress notifications reach the caller that asked, in its own token
    const progress: number[] = [];
    const r = await alice.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, CallToolResultSchema, { onprogress: (p) => void progress.push(p.progress), timeout: 30_000 });
    assert.match(text(r), /completed/i);
    assert.deepEqual(progress, [1, 2, 3]);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('server-everything over stdio: a sampling request reaches the calling client and its answer comes back', async () => {
  const alice = await connect('/mcp/everything', 'alice', { sampling: true });
  try {
    const r = await alice.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'ping through stdio', maxTokens: 10 } }, CallToolResultSchema, { timeout: 30_000 });
    assert.match(text(r), /alice answers/);
    assert.match(text(r), /ping through stdio/);
  } finally {
    await alice.close();
  }
});

test('server-memory per-principal: what alice stores bob never sees; with a shared process he does', async () => {
  const entity = { name: 'alice-secret-project', entityType: 'project', observations: ['codename bluebird'] };
  for (const [route, bobSees] of [['/mcp/memory', false], ['/mcp/memory-shared', true]] as const) {
    const alice = await connect(route, 'alice');
    const bob = await connect(route, 'bob');
    try {
      await alice.client.callTool({ name: 'create_entities', arguments: { entities: [entity] } });
      assert.match(text(await alice.client.callTool({ name: 'read_graph', arguments: {} })), /bluebird/);
      const seen = text(await bob.client.callTool({ name: 'read_graph', arguments: {} }));
      assert.equal(/bluebird/.test(seen), bobSees, `${route}: bob's read_graph: ${seen}`);
    } finally {
      await alice.close();
      await bob.close();
    }
  }
});

test('per-principal: each principal its own process with its own {principal.id} in env; at most maxProcesses, least recently used stopped', async () => {
  const pids: Record<string, string> = {};
  for (const who of ['alice', 'bob']) {
    const c = await connect('/mcp/tiny', who);
    try {
      assert.deepEqual(JSON.parse(text(await c.client.callTool({ name: 'env', arguments: {} }))), { TINY_WHO: who });
      pids[who] = text(await c.client.callTool({ name: 'pid', arguments: {} }));
    } finally {
      await c.close();
    }
  }
  assert.notEqual(pids.alice, pids.bob);
  const health = await healthz();
  const tiny = (health.processes as Record<string, Record<string, unknown>>)['/mcp/tiny']!;
  assert.deepEqual({ ...tiny, sessions: undefined }, { processModel: 'per-principal', running: 2, max: 2, queued: 0, sessions: undefined });
  // carol is the third: alice's (least recently used) process is stopped for her
  const carol = await connect('/mcp/tiny', 'carol');
  try {
    assert.deepEqual(JSON.parse(text(await carol.client.callTool({ name: 'env', arguments: {} }))), { TINY_WHO: 'carol' });
  } finally {
    await carol.close();
  }
  assert.ok(logged.some((l) => l.includes('[spiffe://') && l.includes('/alice]') && l.includes('stopped to make room')), logged.join('\n'));
  assert.equal(((await healthz()).processes as Record<string, { running: number }>)['/mcp/tiny']!.running, 2);
});

test('a crash mid-call: the caller gets a JSON-RPC error, stderr is in the log tagged, the next call works in a new process', async () => {
  const bob = await connect('/mcp/tiny', 'bob');
  try {
    const before = text(await bob.client.callTool({ name: 'pid', arguments: {} }));
    await assert.rejects(bob.client.callTool({ name: 'crash', arguments: {} }), /exited before answering/);
    assert.ok(logged.some((l) => /stdio upstream \/mcp\/tiny \[spiffe:\/\/[^\]]*\/bob\] stderr: tiny-server crashing on purpose/.test(l)), logged.join('\n'));
    // the process exited within 10 s of its start only if this test ran fast; the next call may wait out a backoff
    let after: string | undefined;
    for (let i = 0; i < 40 && after === undefined; i++) {
      try {
        after = text(await bob.client.callTool({ name: 'pid', arguments: {} }));
      } catch (e) {
        assert.match((e as Error).message, /started again in/);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    assert.ok(after && after !== before, `pid before ${before}, after ${after}`);
  } finally {
    await bob.close();
  }
});

async function healthz(): Promise<Record<string, unknown>> {
  const ca = fs.readFileSync(path.join(gwFiles.pki, 'root.crt'));
  return new Promise((resolve, reject) => {
    https.get(`${url}/healthz`, { ca }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(JSON.parse(b)));
    }).on('error', reject);
  });
}

test('CLI: --upstream-command and --process-model; SIGTERM stops every child', async () => {
  const { spawn } = await import('node:child_process');
  const policy = path.join(base, 'policy.yaml');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/mcp-mtls.js'), 'gateway', '--listen', '127.0.0.1:0', '--upstream-command', `"${process.execPath}" ${TINY}`, '--process-model', 'per-principal', '--policy', policy, '--cert', gwFiles.cert, '--key', gwFiles.key, '--pki', gwFiles.pki], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  for (let i = 0; i < 400 && !/listening on/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
  const port = /listening on https:\/\/127\.0\.0\.1:(\d+) \(\/mcp -> stdio .* \(per-principal\)\)/.exec(stderr)?.[1];
  assert.ok(port, stderr);
  const saved = url;
  url = `https://localhost:${port}`;
  let pid: number;
  try {
    const bob = await connect('/mcp', 'bob');
    pid = Number(text(await bob.client.callTool({ name: 'pid', arguments: {} })));
    await bob.close();
  } finally {
    url = saved;
  }
  assert.ok(pid > 0);
  process.kill(pid, 0); // running
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the stdio child outlived the gateway');
});

test('a process that stops answering: the call times out with an error, the process is killed, the next call gets a new one; /metrics counts processes', async () => {
  const policy = path.join(base, 'policy.yaml');
  const quick = await startGateway(
    GatewayConfigSchema.parse({ listen: '127.0.0.1:0', tls: gwFiles, upstreamTimeout: '1s', routes: [{ path: '/mcp', policy, stdio: { command: process.execPath, args: [TINY], processModel: 'per-principal' } }] }),
    (l) => void logged.push(l),
    { env: process.env },
  );
  const saved = url;
  url = `https://localhost:${quick.address.port}`;
  try {
    const bob = await connect('/mcp', 'bob');
    const before = text(await bob.client.callTool({ name: 'pid', arguments: {} }));
    // freeze blocks the process's event loop: it answers no ping either (a call that merely never answers, as hang, does not get a process killed: stdio-hung-probe.test.ts)
    await assert.rejects(bob.client.callTool({ name: 'freeze', arguments: {} }), /did not answer within 1000 ms/);
    assert.ok(logged.some((l) => l.includes('no answer to tools/call within 1000 ms; the process wrote nothing since: asking it for a ping')), logged.join('\n'));
    for (let i = 0; i < 50 && !logged.some((l) => l.includes('answered no ping within 1000 ms either: killing it')); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(logged.some((l) => l.includes('answered no ping within 1000 ms either: killing it')), logged.join('\n'));
    const after = text(await bob.client.callTool({ name: 'pid', arguments: {} }));
    assert.notEqual(after, before);
    const metrics = await new Promise<string>((resolve, reject) => {
      https.get(`${url}/metrics`, { ca: fs.readFileSync(path.join(gwFiles.pki, 'root.crt')) }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    assert.match(metrics, /^mcp_mtls_gateway_stdio_processes\{route="\/mcp"\} 1$/m);
    assert.match(metrics, /^mcp_mtls_gateway_stdio_processes_max\{route="\/mcp"\} 16$/m);
    await bob.close();
  } finally {
    url = saved;
    await quick.stop();
  }
});

test("credentials: alice's and carol's secrets reach only their own processes; bob, with none, is refused; no secret in the log", async () => {
  for (const [who, secret] of [['alice', ALICE_SECRET], ['carol', CAROL_SECRET]] as const) {
    const c = await connect('/mcp/secret', who);
    try {
      // the fixture says a secret as its SHA-256: the gateway redacts the secret itself from what the process writes (stdio-secret-echo.test.ts)
      assert.deepEqual(JSON.parse(text(await c.client.callTool({ name: 'env', arguments: {} }))), { SECRET_TOKEN: `sha256:${crypto.createHash('sha256').update(secret).digest('hex')}` });
    } finally {
      await c.close();
    }
  }
  await assert.rejects(connect('/mcp/secret', 'bob'), /needs a credential, and the gateway has none for spiffe:\/\/[^ ]*\/bob/);
  // the shared route next to it never got one
  const bob = await connect('/mcp/tiny', 'bob');
  try {
    assert.deepEqual(JSON.parse(text(await bob.client.callTool({ name: 'env', arguments: {} }))), { TINY_WHO: 'bob' });
  } finally {
    await bob.close();
  }
  const all = logged.join('\n');
  assert.ok(!all.includes(ALICE_SECRET) && !all.includes(CAROL_SECRET), 'a secret in the log');
  assert.match(all, /refused spiffe:\/\/[^ ]*\/bob: no credentials entry is for it/);
});

test("server-filesystem rooted at {principal.id}: alice reads her folder, not bob's, even when her client offers / as a root", async () => {
  const alice = await connect('/mcp/files', 'alice', { roots: ['file:///'] });
  try {
    assert.equal(text(await alice.client.callTool({ name: 'read_text_file', arguments: { path: path.join(base, 'files', 'alice', 'notes.txt') } })), "alice's notes");
    const dirs = text(await alice.client.callTool({ name: 'list_allowed_directories', arguments: {} }));
    assert.ok(dirs.includes(path.join(base, 'files', 'alice')) && !dirs.includes(path.join(base, 'files', 'bob')), dirs);
    const theirs = await alice.client.callTool({ name: 'read_text_file', arguments: { path: path.join(base, 'files', 'bob', 'notes.txt') } });
    assert.equal(theirs.isError, true);
    assert.doesNotMatch(text(theirs), /bob's notes/);
  } finally {
    await alice.close();
  }
});

test('gateway.yaml refuses what a process model cannot do; --upstream-command is split as a shell would', async () => {
  const { splitCommandLine } = await import('../../src/gateway/stdio-config.js');
  const route = (extra: Record<string, unknown>) => GatewayConfigSchema.safeParse({ listen: '127.0.0.1:0', tls: { cert: 'c', key: 'k', pki: 'p' }, routes: [{ path: '/mcp', policy: 'p.yaml', ...extra }] });
  const refused = (extra: Record<string, unknown>, message: RegExp) => {
    const r = route(extra);
    assert.equal(r.success, false, JSON.stringify(extra));
    assert.match(r.error!.issues[0]!.message, message);
  };
  refused({ stdio: { command: 'x', args: ['/data/{principal.id}'] } }, /shared process serves every caller/);
  refused({ stdio: { command: 'x', env: { HOME: '/home/{principal.id}' }, processModel: 'per-team' } }, /per-team process serves every member/);
  refused({ stdio: { command: 'x', args: ['/teams/{team}'], processModel: 'per-principal' } }, /several teams/);
  refused({ stdio: { command: 'x', credentials: [{ teams: ['sre'], env: { T: { env: 'T' } } }] } }, /credentials need processModel per-principal or per-team/);
  refused({ stdio: { command: 'x', processModel: 'per-principal', credentials: [{ env: { T: { env: 'T' } } }] } }, /name the principals, teams or roles/);
  refused({ upstream: 'http://127.0.0.1:1/mcp', stdio: { command: 'x' } }, /not both/);
  refused({}, /give upstream/);
  assert.equal(route({ stdio: { command: 'x', args: ['/teams/{team}'], processModel: 'per-team' } }).success, true);
  assert.deepEqual(splitCommandLine(`npx -y "@scope/server files" '/data dir' a\\ b ""`), ['npx', '-y', '@scope/server files', '/data dir', 'a b', '']);
  assert.throws(() => splitCommandLine('npx "unclosed'), /unclosed "/);
});

test('a shared process: concurrent calls of two callers (the same JSON-RPC ids) each get their own answers', async () => {
  const alice = await connect('/mcp/everything', 'alice');
  const bob = await connect('/mcp/everything', 'bob');
  try {
    const calls = Array.from({ length: 40 }, (_, i) => {
      const [who, c] = i % 2 ? ['bob', bob] : ['alice', alice];
      return c.client.callTool({ name: 'echo', arguments: { message: `${who}-${i}` } }).then((r) => [`${who}-${i}`, text(r)] as const);
    });
    for (const [asked, got] of await Promise.all(calls)) assert.match(got, new RegExp(`: ${asked}$`), `asked ${asked}, got ${got}`);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('a shared process with requests of two principals in flight: a sampling request is refused, never sent to either client', async () => {
  let asked = 0;
  const handler = async () => {
    asked++;
    return { model: 'm', role: 'assistant' as const, content: { type: 'text' as const, text: 'should not be asked' } };
  };
  const alice = await connect('/mcp/everything', 'alice', { sampling: true });
  const dave = await connect('/mcp/everything', 'dave', { sampling: true });
  alice.client.setRequestHandler(CreateMessageRequestSchema, handler);
  dave.client.setRequestHandler(CreateMessageRequestSchema, handler);
  try {
    const long = dave.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 3 } }, CallToolResultSchema, { timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 500));
    const sampled = await alice.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'whose?', maxTokens: 5 } }, CallToolResultSchema, { timeout: 30_000 }).then(
      (r) => text(r),
      (e: Error) => e.message,
    );
    await long;
    assert.equal(asked, 0, 'a client was asked');
    assert.match(sampled, /cannot tell which client/);
  } finally {
    await alice.close();
    await dave.close();
  }
});
