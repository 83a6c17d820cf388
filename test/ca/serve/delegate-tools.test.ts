/**
 * Profile v1.2 end to end (docs/delegation.md, "Limiting a delegation to tools"): bob signs a
 * grant with `tools: [read_*]`, the platform exchanges it at a real `ca serve`, the delegated
 * certificate carries the globs, and a real MCP server (SDK 1.x, mTLS, policy) enforces them
 * without asking the CA: read_repo works, delete_repo (which bob's team rule allows) is hidden and
 * denied as rule "(delegation-grant)", audited with the reason. The CA checks requested tools
 * against config.yaml's per-actor maximum (delegation.actors[].tools) and gives a grant without
 * tools that maximum; `tools` in the body goes with an ID token only.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createMtlsAgent, createMtlsFetch } from '../../../src/client/agent.js';
import { decodeIdentity } from '../../../src/identity/decode.js';
import { callerOf } from '../../../src/mcp/caller.js';
import { createMcpSdk1Handler } from '../../../src/mcp/sdk1.js';
import { memoryAudit } from '../../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki } from '../../../src/mtls/mtls-server.js';
import { policyFromText } from '../../../src/policy/compile.js';
import { readCertificates } from '../../../src/x509/pem.js';
import { serverCreds } from '../../support/ca-serve.js';
import { useDelegationCa } from '../../support/delegation-ca.js';

const TD = 'acme.test';
const PLATFORM = `spiffe://${TD}/service/chat-platform`;
const AGENT = `spiffe://${TD}/service/coding-agent`;
const BOB = `spiffe://${TD}/user/bob`;
const POLICY = `
version: 1
trustDomains: [${TD}]
rules:
  - id: sre-repos
    subjects: { teams: [sre] }
    tools: [who, read_repo, delete_repo]
`;

const dca = useDelegationCa({
  trustDomain: TD,
  delegation: `  actors:
    - actor: service/chat-platform
      for: { teams: [sre] }
    - actor: service/coding-agent
      for: { teams: [sre] }
      tools: [read_*, who]
`,
  people: {
    bob: { id: 'bob', teams: ['sre'] },
    platform: { kind: 'service', id: 'chat-platform' },
    agent: { kind: 'service', id: 'coding-agent' },
  },
});
const { who, grant } = dca;
const { exchange } = dca;

function build(server: McpServer): void {
  server.registerTool('who', { description: 'who is calling' }, async (extra) => {
    const id = callerOf(extra);
    return { content: [{ type: 'text', text: JSON.stringify({ principal: id.principal, actingFor: id.actingFor?.principal ?? null, tools: id.actingFor?.tools ?? null }) }] };
  });
  server.registerTool('read_repo', { description: 'read', inputSchema: { name: z.string() } }, async ({ name }) => ({ content: [{ type: 'text', text: `read ${name}` }] }));
  server.registerTool('delete_repo', { description: 'delete', inputSchema: { name: z.string() } }, async ({ name }) => ({ content: [{ type: 'text', text: `deleted ${name}` }] }));
}

test('a grant limited to read_* reaches the certificate, and the MCP server enforces it: delete_repo, which bob\'s rule allows, is hidden and denied as "(delegation-grant)", audited', { timeout: 60_000 }, async () => {
  const r = await exchange(who.platform!, { grant: await grant(who.bob!, PLATFORM, { tools: ['read_*'] }) });
  assert.equal(r.status, 200, r.text());
  const id = decodeIdentity(readCertificates(r.body)[0]!, { trustDomains: [TD] });
  assert.deepEqual([id.actingFor?.principal, id.actingFor?.tools], [BOB, ['read_*']]);
  assert.deepEqual(dca.audit.findLast((a) => a.event === 'ca.delegate')?.tools, ['read_*']);

  const dir = fs.mkdtempSync(path.join(dca.t.dir, 'srv-'));
  const creds = await serverCreds(dca.ca);
  fs.writeFileSync(path.join(dir, 'cert.pem'), creds.cert);
  fs.writeFileSync(path.join(dir, 'key.pem'), creds.key);
  const a = memoryAudit();
  const handler = createMcpSdk1Handler({ serverInfo: { name: 'repos', version: '1.0.0' }, build, policy: () => policyFromText(POLICY), audit: a });
  const server = createMtlsServer({ ...tlsFromPki(dca.t.dir, path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')), audit: a, log: () => undefined, trustDomains: [TD] }, handler);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const agent = createMtlsAgent({ chain: readCertificates(r.body), key: crypto.createPrivateKey(who.platform!.key), ca: readCertificates(Buffer.from(dca.t.rootPem)) });
  const c = new Client({ name: 'platform', version: '1.0.0' });
  try {
    await c.connect(new StreamableHTTPClientTransport(new URL(`https://localhost:${(server.address() as AddressInfo).port}/mcp`), { fetch: createMtlsFetch(agent) as typeof fetch }));
    const call = async (name: string, args: Record<string, unknown> = {}) => {
      const res = (await c.callTool({ name, arguments: args })) as { isError?: boolean; content: { text: string }[] };
      return { error: res.isError === true, text: res.content[0]?.text ?? '' };
    };
    assert.deepEqual(await call('read_repo', { name: 'infra' }), { error: false, text: 'read infra' });
    // bob may call who and delete_repo (sre-repos), but the grant says read_* only
    assert.deepEqual((await c.listTools()).tools.map((x) => x.name), ['read_repo']);
    const del = await call('delete_repo', { name: 'infra' });
    assert.equal(del.error, true, del.text);
    assert.match(del.text, /not found/); // hidden: answered as an unknown tool
    assert.equal((await call('who')).error, true);
    const line = a.events.find((e) => e.event === 'decision' && (e as { target?: string }).target === 'delete_repo') as { ruleId?: string; reason?: string; allowed?: boolean; actingFor?: { principal: string } } | undefined;
    assert.ok(line, JSON.stringify(a.events.filter((e) => e.event === 'decision')));
    assert.deepEqual([line.allowed, line.ruleId, line.actingFor?.principal, (line.actingFor as { tools?: string[] }).tools], [false, '(delegation-grant)', BOB, ['read_*']]);
    assert.match(line.reason ?? '', /outside the delegation's tools \(read_\*\)/);
  } finally {
    await c.close().catch(() => undefined);
    await agent.close();
    await handler.close();
    server.closeAllConnections();
    await new Promise((res) => server.close(res));
  }
});

test('the CA checks a grant\'s tools against the actor\'s maximum (delegation.actors[].tools): beyond it 403 TOOLS_EXCEED_ACTOR, audited; a tool name a maximum glob matches is within; no tools asked gives the maximum', async () => {
  const beyond = await exchange(who.agent!, { grant: await grant(who.bob!, AGENT, { tools: ['read_*', 'delete_repo'] }) });
  assert.deepEqual([beyond.status, beyond.json().error?.code], [403, 'TOOLS_EXCEED_ACTOR'], beyond.text());
  assert.match(beyond.json().error!.message, /delete_repo/);
  const line = dca.audit.findLast((x) => x.event === 'ca.delegate')!;
  assert.deepEqual([line.status, line.code, line.actor, line.delegator], [403, 'TOOLS_EXCEED_ACTOR', AGENT, BOB]);
  // a broader glob than the maximum's is beyond it too (re_* is not within read_*)
  assert.equal((await exchange(who.agent!, { grant: await grant(who.bob!, AGENT, { tools: ['re*'] }) })).status, 403);

  const within = await exchange(who.agent!, { grant: await grant(who.bob!, AGENT, { tools: ['read_repo'] }) });
  assert.equal(within.status, 200, within.text());
  assert.deepEqual(decodeIdentity(readCertificates(within.body)[0]!).actingFor?.tools, ['read_repo']);

  const unasked = await exchange(who.agent!, { grant: await grant(who.bob!, AGENT) });
  assert.equal(unasked.status, 200, unasked.text());
  assert.deepEqual(decodeIdentity(readCertificates(unasked.body)[0]!).actingFor?.tools, ['read_*', 'who']);

  // no maximum, no tools asked: no limit (profile v1.1's certificate)
  const free = await exchange(who.platform!, { grant: await grant(who.bob!, PLATFORM) });
  assert.equal(decodeIdentity(readCertificates(free.body)[0]!).actingFor?.tools, undefined);
});

test('tools in the body go with an ID token: with a grant, and malformed, they are 400', async () => {
  const withGrant = await exchange(who.platform!, { grant: await grant(who.bob!, PLATFORM), tools: ['read_*'] });
  assert.deepEqual([withGrant.status, withGrant.json().error?.code], [400, 'BAD_REQUEST']);
  assert.match(withGrant.json().error!.message, /from the grant/);
  const bad = await exchange(who.platform!, { idToken: 'x.y.z', tools: ['{read_'] });
  assert.equal(bad.status, 400);
  assert.match(bad.json().error!.message, /not a tool glob/);
  assert.equal((await exchange(who.platform!, { idToken: 'x.y.z', tools: 'read_*' })).status, 400);
  // and a grant whose tools are not globs is refused when signed
  await assert.rejects(grant(who.bob!, PLATFORM, { tools: ['has space'] }), /not a tool glob/);
});

test('(review 2) no other spelling of a glob gets past the actor\'s maximum: a pattern is within only when it is one of the maximum\'s globs exactly, a tool name when a maximum glob matches it', async () => {
  // each narrower, equal or wider in ways a "does the maximum match this text" check would pass (read_* matches the string "read_*_x")
  for (const g of ['read_*_x', 'read_?*', 'read_[a-z]*', 'read_\\*', 'read_{repo,x}', '{read_repo}', 'read_**', '*', '**', '{read_*,delete_repo}', 'read_repo,delete_repo']) {
    const r = await exchange(who.agent!, { grant: await grant(who.bob!, AGENT, { tools: [g] }) });
    if (g === 'read_repo,delete_repo') {
      // no pattern: the tool literally named so, which read_* matches; the certificate then matches that one name only
      assert.equal(r.status, 200, r.text());
      const id = decodeIdentity(readCertificates(r.body)[0]!);
      assert.deepEqual(id.actingFor?.tools, [g]);
      const p = policyFromText(POLICY);
      for (const name of ['delete_repo', 'read_repo']) assert.equal(p.decide(id, { kind: 'tool', name }).ruleId, '(delegation-grant)', name);
      continue;
    }
    assert.equal(r.status, 403, `${g}: ${r.status} ${r.text().slice(0, 40)}`);
    assert.equal(r.json().error?.code, 'TOOLS_EXCEED_ACTOR', g);
  }
  // one of the maximum's globs exactly is within
  const same = await exchange(who.agent!, { grant: await grant(who.bob!, AGENT, { tools: ['read_*'] }) });
  assert.equal(same.status, 200, same.text());
});
