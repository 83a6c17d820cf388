/**
 * Delegation end to end (docs/delegation.md): bob signs a grant with his own certificate, the
 * platform (service/chat-platform) exchanges it at `ca serve` POST /delegate with its own mTLS
 * certificate, and calls a real MCP server (SDK 1.x, mTLS, policy) with the delegated
 * certificate: the tool sees bob via the platform, bob's team rules apply, an actor restriction
 * denies delete_repo that bob himself may call; a server without delegation support sees the
 * platform alone. Every refusal the issue names, each audited with actor and delegator, and the
 * revocation of bob's certificate revoking what he delegated.
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
import { revokeCertificate } from '../../../src/ca/revocation.js';
import { createMtlsAgent, createMtlsFetch } from '../../../src/client/agent.js';
import { decodeIdentity } from '../../../src/identity/decode.js';
import { callerOf } from '../../../src/mcp/caller.js';
import { createMcpSdk1Handler } from '../../../src/mcp/sdk1.js';
import { memoryAudit } from '../../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../../src/mtls/mtls-server.js';
import { policyFromText } from '../../../src/policy/compile.js';
import { readCertificates } from '../../../src/x509/pem.js';
import { serverCreds, type Creds } from '../../support/ca-serve.js';
import { useDelegationCa } from '../../support/delegation-ca.js';

const TD = 'acme.test';
const PLATFORM = `spiffe://${TD}/service/chat-platform`;
const POLICY = `
version: 1
trustDomains: [${TD}]
rules:
  - id: sre-repos
    subjects: { teams: [sre] }
    tools: [who, read_repo, delete_repo]
  - id: platform-who
    subjects: { services: [chat-platform] }
    tools: [who]
  - id: agents-never-delete
    effect: deny
    subjects: { delegated: true }
    tools: [delete_*]
`;

const dca = useDelegationCa({
  trustDomain: TD,
  delegation: `  maxTtl: 1h
  actors:
    - actor: service/chat-platform
      for: { teams: [sre, dev] }
      teams: [sre, dev]
      roles: [oncall]
    - actor: service/other-bot
      for: { users: [alice] }
`,
  people: {
    bob: { id: 'bob', teams: ['sre', 'dev', 'finance'], roles: ['oncall', 'admin'] },
    alice: { id: 'alice', teams: ['dev'] },
    platform: { kind: 'service', id: 'chat-platform' },
    otherBot: { kind: 'service', id: 'other-bot' },
    stranger: { kind: 'service', id: 'stranger' },
  },
});
const { who, grant } = dca;
const keyOf = (c: Creds) => crypto.createPrivateKey(c.key);
const { exchange } = dca;

test('the platform exchanges bob\'s grant: a certificate for its key, acting for bob, teams and roles cut to the actor\'s maximum, 1h at most', async () => {
  const r = await exchange(who.platform!, { grant: await grant(who.bob!, PLATFORM) });
  assert.equal(r.status, 200, r.text());
  const leaf = readCertificates(r.body)[0]!;
  const id = decodeIdentity(leaf, { trustDomains: [TD] });
  assert.equal(id.principal, PLATFORM);
  assert.deepEqual([...id.teams, ...id.roles], []);
  assert.equal(id.actingFor?.principal, `spiffe://${TD}/user/bob`);
  assert.deepEqual(id.actingFor?.teams, ['dev', 'sre']); // finance: not the actor's to be given
  assert.deepEqual(id.actingFor?.roles, ['oncall']); // admin: likewise
  assert.ok(id.notAfter.getTime() <= Date.now() + 3600_000 + 1000, id.notAfter.toISOString());
  // the platform's own key: the actor holds it, no key travels
  assert.equal(new crypto.X509Certificate(leaf).publicKey.export({ format: 'der', type: 'spki' }).toString('hex'), new crypto.X509Certificate(readCertificates(Buffer.from(who.platform!.cert))[0]!).publicKey.export({ format: 'der', type: 'spki' }).toString('hex'));
  const line = dca.audit.findLast((a) => a.event === 'ca.delegate');
  assert.deepEqual([line?.status, line?.actor, line?.delegator, line?.newSerial], [200, PLATFORM, `spiffe://${TD}/user/bob`, id.serial]);
  const record = (await dca.ca.store.readIndex()).find((x) => x.op === 'issue' && x.serial === id.serial);
  assert.deepEqual([record && 'delegatedFrom' in record ? record.delegatedFrom : undefined, record && 'actingFor' in record ? record.actingFor : undefined], [who.bob!.serial, `spiffe://${TD}/user/bob`]);
});

test('refusals, each audited with actor and delegator', async () => {
  const cases: [string, Creds, unknown, number, string][] = [
    ['an actor not allowed to act for bob', who.otherBot!, { grant: await grant(who.bob!, `spiffe://${TD}/service/other-bot`) }, 403, 'DELEGATOR_NOT_ALLOWED'],
    ['an actor not configured at all', who.stranger!, { grant: await grant(who.bob!, `spiffe://${TD}/service/stranger`) }, 403, 'ACTOR_NOT_ALLOWED'],
    ["a grant for another actor (the platform presents other-bot's)", who.platform!, { grant: await grant(who.alice!, `spiffe://${TD}/service/other-bot`) }, 403, 'GRANT_INVALID'],
    ['a grant asking for more than the delegator has', who.platform!, { grant: await grant(who.alice!, PLATFORM, { teams: ['dev', 'sre'] }) }, 403, 'GRANT_EXCEEDS_DELEGATOR'],
    ['a role the delegator lacks', who.platform!, { grant: await grant(who.bob!, PLATFORM, { roles: ['root'] }) }, 403, 'GRANT_EXCEEDS_DELEGATOR'],
    ['no proof', who.platform!, {}, 400, 'PROOF_REQUIRED'],
  ];
  for (const [name, actor, body, status, code] of cases) {
    const r = await exchange(actor, body);
    assert.equal(r.status, status, `${name}: ${r.text()}`);
    assert.equal(r.json().error?.code, code, `${name}: ${r.text()}`);
    const line = dca.audit.findLast((a) => a.event === 'ca.delegate');
    assert.equal(line?.code, code, name);
    assert.equal(line?.actor, decodeIdentity(readCertificates(Buffer.from(actor.cert))[0]!).principal, name);
    if (code !== 'PROOF_REQUIRED' && code !== 'ACTOR_NOT_ALLOWED') assert.match(String(line?.delegator), /^spiffe:\/\/acme\.test\/user\/(bob|alice)$/, name);
  }
});

test("alice's grant never yields bob's identity: a grant naming bob but signed by alice is refused; hers acts for alice", async () => {
  const mine = await grant(who.alice!, PLATFORM);
  const [h, p] = mine.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
  // alice's key signs a payload that says bob
  const forged = await (async () => {
    const { CompactSign } = await import('jose');
    return new CompactSign(Buffer.from(JSON.stringify({ ...payload, iss: `spiffe://${TD}/user/bob` }))).setProtectedHeader(JSON.parse(Buffer.from(h, 'base64url').toString())).sign(keyOf(who.alice!));
  })();
  const r = await exchange(who.platform!, { grant: forged });
  assert.deepEqual([r.status, r.json().error?.code], [403, 'GRANT_INVALID']);
  // alice's chain with bob's key's signature cannot be made; bob's chain in the header with alice's signature fails the signature
  const swapped = (await grant(who.alice!, PLATFORM)).split('.');
  const bobHeader = (await grant(who.bob!, PLATFORM)).split('.')[0];
  const r2 = await exchange(who.platform!, { grant: [bobHeader, swapped[1], swapped[2]].join('.') });
  assert.deepEqual([r2.status, r2.json().error?.code], [403, 'GRANT_INVALID']);
  const ok = await exchange(who.platform!, { grant: mine });
  assert.equal(ok.status, 200, ok.text());
  assert.equal(decodeIdentity(readCertificates(ok.body)[0]!).actingFor?.principal, `spiffe://${TD}/user/alice`);
});

const REPO = { name: z.string() };
function build(server: McpServer): void {
  server.registerTool('who', { description: 'who is calling' }, async (extra) => {
    const id = callerOf(extra);
    return { content: [{ type: 'text', text: JSON.stringify({ principal: id.principal, actingFor: id.actingFor?.principal ?? null, teams: id.actingFor?.teams ?? id.teams, actors: id.actors ?? null }) }] };
  });
  server.registerTool('read_repo', { description: 'read', inputSchema: REPO }, async ({ name }) => ({ content: [{ type: 'text', text: `read ${name}` }] }));
  server.registerTool('delete_repo', { description: 'delete', inputSchema: REPO }, async ({ name }) => ({ content: [{ type: 'text', text: `deleted ${name}` }] }));
}

async function mcpServer(delegation: boolean): Promise<{ url: string; server: MtlsServer; audit: ReturnType<typeof memoryAudit>; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(dca.t.dir, 'srv-'));
  const creds = await serverCreds(dca.ca);
  fs.writeFileSync(path.join(dir, 'cert.pem'), creds.cert);
  fs.writeFileSync(path.join(dir, 'key.pem'), creds.key);
  const a = memoryAudit();
  const handler = createMcpSdk1Handler({ serverInfo: { name: 'repos', version: '1.0.0' }, build, policy: () => policyFromText(POLICY), audit: a });
  const server = createMtlsServer({ ...tlsFromPki(dca.t.dir, path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')), audit: a, log: () => undefined, trustDomains: [TD], delegation }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}/mcp`,
    server,
    audit: a,
    close: async () => {
      await handler.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

async function client(url: string, cert: string | Buffer, key: string) {
  const agent = createMtlsAgent({ chain: readCertificates(Buffer.from(cert)), key: crypto.createPrivateKey(key), ca: readCertificates(Buffer.from(dca.t.rootPem)) });
  const c = new Client({ name: 'platform', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: createMtlsFetch(agent) as typeof fetch }));
  return {
    call: async (name: string, args: Record<string, unknown> = {}) => {
      const r = (await c.callTool({ name, arguments: args })) as { isError?: boolean; content: { text: string }[] };
      return { error: r.isError === true, text: r.content[0]?.text ?? '' };
    },
    close: async () => {
      await c.close();
      await agent.close();
    },
  };
}

test('end to end: the tool sees bob via the platform, bob\'s team rules apply, agents-never-delete denies what bob himself may do; a server without delegation support sees the platform alone; revoking bob revokes the delegation at once', { timeout: 60_000 }, async () => {
  const r = await exchange(who.platform!, { grant: await grant(who.bob!, PLATFORM) });
  assert.equal(r.status, 200, r.text());
  const delegatedCert = r.body.toString();
  const delegatedSerial = decodeIdentity(readCertificates(r.body)[0]!).serial;
  const srv = await mcpServer(true);
  const v1 = await mcpServer(false);
  try {
    const platformForBob = await client(srv.url, delegatedCert, who.platform!.key);
    const me = JSON.parse((await platformForBob.call('who')).text);
    assert.deepEqual(me, { principal: PLATFORM, actingFor: `spiffe://${TD}/user/bob`, teams: ['dev', 'sre'], actors: [PLATFORM] });
    assert.deepEqual(await platformForBob.call('read_repo', { name: 'infra' }), { error: false, text: 'read infra' });
    const del = await platformForBob.call('delete_repo', { name: 'infra' });
    assert.equal(del.error, true, del.text);
    const bobHimself = await client(srv.url, who.bob!.cert, who.bob!.key);
    assert.deepEqual(await bobHimself.call('delete_repo', { name: 'infra' }), { error: false, text: 'deleted infra' });
    await bobHimself.close();
    const decision = srv.audit.events.find((e) => e.event === 'decision' && (e as { target?: string }).target === 'delete_repo' && (e as { actingFor?: unknown }).actingFor);
    assert.ok(decision, JSON.stringify(srv.audit.events.filter((e) => e.event === 'decision').slice(-3)));
    assert.deepEqual([(decision as { principal?: string }).principal, (decision as { actingFor?: { principal: string } }).actingFor?.principal, (decision as { ruleId?: string }).ruleId], [PLATFORM, `spiffe://${TD}/user/bob`, 'agents-never-delete']);

    // the same certificate at a server that reads no delegation: the platform alone (its own rule: who only)
    const atV1 = await client(v1.url, delegatedCert, who.platform!.key);
    assert.deepEqual(JSON.parse((await atV1.call('who')).text), { principal: PLATFORM, actingFor: null, teams: [], actors: null });
    assert.equal((await atV1.call('read_repo', { name: 'infra' })).error, true); // bob's sre is not the platform's
    await atV1.close();

    // revoking bob's certificate revokes what he delegated: the CRL lists it, the server refuses it
    const rev = await revokeCertificate(dca.ca, who.bob!.serial, 'keyCompromise');
    assert.ok(rev.alsoRevoked.includes(delegatedSerial), JSON.stringify(rev.alsoRevoked));
    const crls = [await dca.ca.store.readCrl('root'), await dca.ca.store.readCrl('intermediate')].filter((c): c is Buffer => c !== undefined);
    srv.server.reloadCrls(crls);
    await platformForBob.close().catch(() => undefined);
    const again = await client(srv.url, delegatedCert, who.platform!.key).then(
      () => 'connected',
      (e: Error) => e.message,
    );
    assert.match(again, /revoked|401|403/i);
    // and a grant signed by the revoked certificate is refused
    const late = await exchange(who.platform!, { grant: await grant(who.bob!, PLATFORM) });
    assert.deepEqual([late.status, late.json().error?.code], [403, 'DELEGATOR_REVOKED']);
    assert.equal(dca.audit.findLast((a) => a.event === 'ca.delegate')?.delegator, `spiffe://${TD}/user/bob`);
  } finally {
    await srv.close();
    await v1.close();
  }
});
