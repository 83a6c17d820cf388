/**
 * The package as a user gets it: `npm pack`, install the tarball into an empty project, and use
 * it only through its published subpaths and types. Checks what the tarball holds, that the
 * MCP SDKs really are optional (every subpath but the sdk ones loads without any SDK), that
 * nothing internal is reachable, that `mcp-mtls/ca` loads no HTTP or MCP code, that a server
 * and a client written against the package talk over mTLS, and that the README's TypeScript
 * examples type-check against the published declarations.
 *
 * Installs use npm's cache (`--prefer-offline`): `npm ci` filled it with every package of the
 * lock file, so the test does not depend on the registry being fast. The packing and install
 * helpers are test/support/packed.ts, shared with the slower checks of test/packed/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, run, tmpDir } from '../support/cli.js';
import { npm, pack, packedEnv as env, pinned, type Packed } from '../support/packed.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; exports: Record<string, unknown> };

let work: string;
let tarball: string;
let project: string;

/** runs an ES module in the user's project and returns its stdout */
async function node(file: string, source: string): Promise<{ code: number; stdout: string; stderr: string }> {
  fs.writeFileSync(path.join(project, file), source);
  return run(process.execPath, [file], { cwd: project, env: env() });
}

before(async () => {
  work = tmpDir('mcp-mtls-pack-');
  // dist/ is fresh: `npm test` builds first; pack does not build again
  packInfo = await pack(work);
  tarball = packInfo.tarball;
  project = path.join(work, 'app');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

let packInfo: Packed;

test('the tarball holds what users need and nothing else', () => {
  const files = packInfo.files;
  for (const needed of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'bin/mcp-mtls.js', 'dist/api/index.js', 'dist/api/index.d.ts', 'dist/api/ca.d.ts', 'dist/cli/main.js']) {
    assert.ok(files.includes(needed), `${needed} is in the tarball`);
  }
  const unwanted = files.filter((f) => /^(src|test|bench|examples|scripts|\.ci)\//.test(f) || (/^(docs|pki)\//.test(f) && !/^(docs\/[\w-]+\.md|pki\/README\.md)$/.test(f)) || f.endsWith('.map') || f.endsWith('.tsbuildinfo') || /\.test\./.test(f));
  assert.deepEqual(unwanted, [], 'no sources, tests, fixtures, examples or source maps; of docs/ and pki/ only the Markdown README.md links to');
  // every export target exists in the tarball
  for (const [key, target] of Object.entries(pkg.exports)) {
    const t = typeof target === 'string' ? [target] : Object.values(target as Record<string, string>);
    for (const f of t) assert.ok(files.includes(f.replace(/^\.\//, '')), `${key} -> ${f} is packed`);
  }
  // 774 kB packed at the end of the second round (dist/ with sign-in, delegation, stdio upstreams
  // and the console's 84 kB front end; docs/ shipped so README's links work once installed,
  // api.md alone 117 kB unpacked). The names above catch strays; this bound catches what they
  // miss (a source map inlined, a bundled dependency: each adds hundreds of kB), not growth by
  // features, so it sits ~15% above today's size and moves only with a note here of why
  assert.ok(packInfo.size < 900_000, `tarball is small (${packInfo.size} bytes packed; the bound is 900 kB: look for a stray file before raising it)`);
});

test('installed without any MCP SDK: every subpath but the SDK adapters loads; internals are not reachable; mcp-mtls/ca loads no HTTP or MCP code', { timeout: 180_000 }, async () => {
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], project);
  const r = await node(
    'imports.mjs',
    `
const out = {};
for (const s of ['mcp-mtls', 'mcp-mtls/identity', 'mcp-mtls/policy', 'mcp-mtls/server', 'mcp-mtls/client', 'mcp-mtls/gateway', 'mcp-mtls/server/sdk1', 'mcp-mtls/server/sdk2', 'mcp-mtls/client/sdk1', 'mcp-mtls/dist/ca/authority.js', 'mcp-mtls/package.json']) {
  try { const m = await import(s, s.endsWith('.json') ? { with: { type: 'json' } } : undefined); out[s] = Object.keys(m).length; }
  catch (e) { out[s] = e.code + ': ' + String(e.message).split('\\n')[0]; }
}
console.log(JSON.stringify(out));
`,
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, number | string>;
  for (const s of ['mcp-mtls', 'mcp-mtls/identity', 'mcp-mtls/policy', 'mcp-mtls/server', 'mcp-mtls/client', 'mcp-mtls/gateway', 'mcp-mtls/package.json']) {
    assert.equal(typeof out[s], 'number', `${s} loads without an MCP SDK: ${out[s]}`);
  }
  assert.match(String(out['mcp-mtls/server/sdk1']), /ERR_MODULE_NOT_FOUND.*@modelcontextprotocol\/sdk/);
  assert.match(String(out['mcp-mtls/server/sdk2']), /ERR_MODULE_NOT_FOUND.*@modelcontextprotocol\//);
  assert.match(String(out['mcp-mtls/client/sdk1']), /ERR_MODULE_NOT_FOUND.*@modelcontextprotocol\/sdk/);
  assert.match(String(out['mcp-mtls/dist/ca/authority.js']), /ERR_PACKAGE_PATH_NOT_EXPORTED/);

  // what importing mcp-mtls/ca loads: node's own list of loaded built-in modules, and every ES module URL
  const ca = await node(
    'ca-only.mjs',
    `
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const seen = [];
port1.on('message', (u) => seen.push(u));
register('data:text/javascript,' + encodeURIComponent('let port; export function initialize(d) { port = d.port; } export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }'), { data: { port: port2 }, transferList: [port2] });
const m = await import('mcp-mtls/ca');
await new Promise((r) => setTimeout(r, 50));
port1.close();
const builtins = process.moduleLoadList.filter((x) => x.startsWith('NativeModule ')).map((x) => x.slice(13));
console.log(JSON.stringify({ exports: Object.keys(m), builtins, urls: seen }));
`,
  );
  assert.equal(ca.code, 0, ca.stderr);
  const loaded = JSON.parse(ca.stdout) as { exports: string[]; builtins: string[]; urls: string[] };
  assert.ok(loaded.exports.includes('Authority') && loaded.exports.includes('initCa'));
  assert.ok(loaded.urls.some((u) => u.includes('/mcp-mtls/dist/ca/')), 'the hook saw the package load');
  assert.deepEqual(loaded.builtins.filter((b) => /^(http|https|http2|_http_\w+)$/.test(b)), [], 'no HTTP module is loaded by mcp-mtls/ca');
  assert.deepEqual(loaded.urls.filter((u) => /undici|@modelcontextprotocol|\/dist\/(server|client|gateway)\//.test(u)), [], 'no MCP, undici, server, client or gateway code');

  const version = await run(path.join(project, 'node_modules', '.bin', 'mcp-mtls'), ['--version'], { cwd: project, env: env() });
  assert.equal(version.stdout.trim(), pkg.version, 'the installed command reports the package version');
});

test('with the SDK installed: a server and a client written against the package talk over mTLS; README examples type-check', { timeout: 240_000 }, async () => {
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', pinned('@modelcontextprotocol/sdk'), pinned('zod')], project);
  const bin = path.join(project, 'node_modules', '.bin', 'mcp-mtls');
  const pki = path.join(project, 'pki');
  const certs = path.join(project, 'certs');
  const cmd = (...args: string[]) => execFileSync(bin, args, { cwd: project, env: env(), encoding: 'utf8' });
  cmd('ca', 'init', '--dir', pki, '--trust-domain', 'acme.test');
  cmd('issue', 'server', '--dir', pki, '--dns', 'localhost', '--out', certs);
  cmd('issue', 'client', '--dir', pki, '--user', 'alice', '--team', 'sre', '--out', certs);
  cmd('bundle', path.join(certs, 'alice.crt'), '--dir', pki, '--format', 'profile', '--out', path.join(certs, 'alice.yaml'));

  const r = await node(
    'app.mjs',
    `
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createMtlsServer, tlsFromPki, callerOf } from 'mcp-mtls/server';
import { createMcpSdk1Handler } from 'mcp-mtls/server/sdk1';
import { policyFromText } from 'mcp-mtls/policy';
import { loadBundle } from 'mcp-mtls/client';
import { createSdk1Transport } from 'mcp-mtls/client/sdk1';

const policy = policyFromText('version: 1\\nrules:\\n  - { id: sre-deploys, subjects: { teams: [sre] }, tools: [deploy] }\\n');
const handler = createMcpSdk1Handler({
  serverInfo: { name: 'deployer', version: '1.0.0' },
  policy,
  build: (server) => {
    server.registerTool('deploy', { inputSchema: { env: z.string() } }, async ({ env }, extra) => ({ content: [{ type: 'text', text: callerOf(extra).principal + ' deployed to ' + env }] }));
    server.registerTool('drop_db', {}, async () => ({ content: [{ type: 'text', text: 'dropped' }] }));
  },
});
const server = createMtlsServer(tlsFromPki('pki', 'certs/localhost.crt', 'certs/localhost.key'), handler);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const client = new Client({ name: 'app', version: '1.0.0' });
await client.connect(createSdk1Transport(await loadBundle('certs/alice.yaml'), 'https://localhost:' + server.address().port + '/mcp'));
const tools = (await client.listTools()).tools.map((t) => t.name);
const result = await client.callTool({ name: 'deploy', arguments: { env: 'prod' } });
const hidden = await client.callTool({ name: 'drop_db', arguments: {} }).then((x) => x.isError ? 'error: ' + x.content[0].text : 'ran', (e) => 'refused: ' + e.message);
await client.close();
await handler.close();
server.closeAllConnections();
server.close();
console.log(JSON.stringify({ tools, text: result.content[0].text, hidden }));
`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { tools: ['deploy'], text: 'spiffe://acme.test/user/alice deployed to prod', hidden: 'error: MCP error -32602: Tool drop_db not found' });

  // the README's TypeScript examples, compiled against the installed package's declarations
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 2 && blocks.every((b) => /from 'mcp-mtls/.test(b)), 'the README has library examples importing mcp-mtls');
  const dir = path.join(project, 'readme');
  fs.mkdirSync(dir);
  blocks.forEach((b, i) => fs.writeFileSync(path.join(dir, `example-${i + 1}.ts`), `${b}\nexport {};\n`));
  fs.writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')] },
      include: ['readme/*.ts'],
    }),
  );
  const tsc = await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: project, env: env() });
  assert.equal(tsc.code, 0, `README examples do not type-check against the package:\n${tsc.stdout}${tsc.stderr}`);
});
