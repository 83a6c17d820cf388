/**
 * createDelegatingAgent renews (docs/delegation.md): with a 12 s delegated lifetime and renewal at
 * half of it, a platform calls a real MCP server (SDK 1.x over mTLS) for bob and alice through a
 * real `ca serve` for longer than one certificate lives: every call succeeds, each with a
 * certificate valid when it was made (never the expired one over a kept-alive connection), the CA
 * counts one exchange per person per renewal (its audit log), not one per call; then bob's own
 * certificate is revoked, the next renewal is refused (DELEGATOR_REVOKED) and bob's calls fail
 * with that error, not with the stale certificate, while alice's go on; a new proof recovers.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Authority } from '../../src/ca/authority.js';
import { revokeCertificate } from '../../src/ca/revocation.js';
import { createDelegatingAgent, type DelegatingAgent } from '../../src/client/delegating-agent.js';
import { signGrant } from '../../src/delegation/grant.js';
import { isMtlsError } from '../../src/errors.js';
import { callerOf } from '../../src/mcp/caller.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { readCertificates } from '../../src/x509/pem.js';
import { clientCreds, makeCa, request, serverCreds, startServer, type Creds, type TestCa } from '../support/ca-serve.js';
import { decodeIdentity } from '../../src/identity/decode.js';

const TD = 'acme.test';
const PLATFORM = `spiffe://${TD}/service/chat-platform`;
const BOB = `spiffe://${TD}/user/bob`;
const ALICE = `spiffe://${TD}/user/alice`;
const TTL_S = 12;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let t: TestCa;
let ca: Authority;
let caPort: number;
let audit: Record<string, unknown>[];
let stopCa: () => Promise<void>;
let mcp: MtlsServer;
let closeMcp: () => Promise<void>;
let mcpUrl: URL;
const who: Record<string, Creds> = {};

const chainOf = (c: Creds) => readCertificates(Buffer.from(c.cert));
const grant = (c: Creds) => signGrant({ chain: chainOf(c), key: crypto.createPrivateKey(c.key), actor: PLATFORM, ttlMs: 3600_000 });
const exchangesFor = (delegator: string, status = 200) => audit.filter((a) => a.event === 'ca.delegate' && a.delegator === delegator && a.status === status).length;

function build(server: McpServer): void {
  server.registerTool('who', { description: 'who is calling, with which certificate' }, async (extra) => {
    const id = callerOf(extra);
    return { content: [{ type: 'text', text: JSON.stringify({ principal: id.principal, actingFor: id.actingFor?.principal ?? null, serial: id.serial, notAfter: id.notAfter.getTime(), at: Date.now() }) }] };
  });
}

before(async () => {
  t = makeCa(TD);
  fs.appendFileSync(path.join(t.dir, 'config.yaml'), `delegation:\n  actors:\n    - actor: service/chat-platform\n      for: { teams: [sre] }\n`);
  ca = Authority.open(t.dir);
  t = { ...t, ca };
  who.bob = await clientCreds(ca, { id: 'bob', teams: ['sre'] });
  who.alice = await clientCreds(ca, { id: 'alice', teams: ['sre'] });
  who.platform = await clientCreds(ca, { kind: 'service', id: 'chat-platform' });
  const s = await startServer(t);
  caPort = s.port;
  audit = s.audit;
  stopCa = () => s.server.shutdown(1000);

  const dir = fs.mkdtempSync(path.join(t.dir, 'mcp-'));
  const creds = await serverCreds(ca);
  fs.writeFileSync(path.join(dir, 'cert.pem'), creds.cert);
  fs.writeFileSync(path.join(dir, 'key.pem'), creds.key);
  const policy = `version: 1\ntrustDomains: [${TD}]\nrules:\n  - id: sre-who\n    subjects: { teams: [sre] }\n    tools: [who]\n`;
  const handler = createMcpSdk1Handler({ serverInfo: { name: 'who', version: '1.0.0' }, build, policy: () => policyFromText(policy) });
  mcp = createMtlsServer({ ...tlsFromPki(t.dir, path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')), log: () => undefined, trustDomains: [TD] }, handler);
  await new Promise<void>((r) => mcp.listen(0, '127.0.0.1', r));
  mcpUrl = new URL(`https://localhost:${(mcp.address() as AddressInfo).port}/mcp`);
  closeMcp = async () => {
    await handler.close();
    mcp.closeAllConnections();
    await new Promise((r) => mcp.close(r));
  };
});
after(async () => {
  await closeMcp?.();
  await stopCa?.();
  await ca?.store.close();
});

async function clientFor(platform: DelegatingAgent, principal: string) {
  const c = new Client({ name: 'chat-platform', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(mcpUrl, { fetch: await platform.fetchFor(principal) }));
  return {
    who: async () => {
      const r = (await c.callTool({ name: 'who', arguments: {} })) as { isError?: boolean; content: { text: string }[] };
      assert.notEqual(r.isError, true, r.content[0]?.text);
      return JSON.parse(r.content[0]!.text) as { principal: string; actingFor: string | null; serial: string; notAfter: number; at: number };
    },
    close: () => c.close().catch(() => undefined),
  };
}

test('renewal across the certificate boundary, one certificate per person at a time; a revoked delegator is a clear error, not the stale certificate', { timeout: 90_000 }, async () => {
  const platform = createDelegatingAgent({ bundle: { chain: chainOf(who.platform!), key: crypto.createPrivateKey(who.platform!.key), ca: readCertificates(Buffer.from(t.rootPem)) }, caUrl: `https://localhost:${caPort}`, ttl: `${TTL_S}s`, renewAtFraction: 0.5 });
  platform.setProof(BOB, { grant: await grant(who.bob!) });
  platform.setProof(ALICE, { grant: await grant(who.alice!) });
  const bob = await clientFor(platform, BOB);
  const alice = await clientFor(platform, ALICE);
  try {
    const seen: Record<string, { serial: string; notAfter: number; at: number }[]> = { [BOB]: [], [ALICE]: [] };
    const started = Date.now();
    let firstEnd = Infinity;
    // until well past the first certificate's end
    while (Date.now() < Math.min(firstEnd + 2500, started + 40_000)) {
      for (const [principal, c] of [[BOB, bob], [ALICE, alice]] as const) {
        const r = await c.who();
        assert.deepEqual([r.principal, r.actingFor], [PLATFORM, principal]);
        // the certificate the server saw was valid when the call was made (the server does not re-check an open connection)
        assert.ok(r.notAfter > r.at, `${principal}: a call at ${new Date(r.at).toISOString()} with certificate ${r.serial} that ended ${new Date(r.notAfter).toISOString()}`);
        seen[principal]!.push(r);
      }
      firstEnd = Math.min(firstEnd, seen[BOB]![0]!.notAfter, seen[ALICE]![0]!.notAfter);
      await sleep(400);
    }
    for (const principal of [BOB, ALICE]) {
      const calls = seen[principal]!;
      const serials = [...new Set(calls.map((c) => c.serial))];
      assert.ok(calls.some((c) => c.at > firstEnd), `${principal}: no call after the first certificate ended`);
      assert.ok(serials.length >= 2, `${principal}: one certificate for ${calls.length} calls over ${(Date.now() - started) / 1000} s`);
      // one exchange per certificate, counted at the CA: a renewal at half of each lifetime, not one per call
      const exchanges = exchangesFor(principal);
      assert.ok(exchanges >= serials.length && exchanges <= 4, `${principal}: ${exchanges} exchanges for ${calls.length} calls (${serials.length} certificates seen)`);
      assert.ok(calls.length >= 3 * exchanges, `${principal}: ${calls.length} calls, ${exchanges} exchanges`);
    }
    assert.equal(platform.exchanges, exchangesFor(BOB) + exchangesFor(ALICE));

    // bob's own certificate is revoked: what he delegated is revoked with it, and the next renewal is refused
    await revokeCertificate(ca, who.bob!.serial, 'keyCompromise');
    const refusedBefore = exchangesFor(BOB, 403);
    for (let i = 0; i < 100 && exchangesFor(BOB, 403) === refusedBefore; i++) await sleep(100);
    assert.equal(exchangesFor(BOB, 403), refusedBefore + 1, 'no renewal was refused within 10 s');
    assert.equal(audit.findLast((a) => a.event === 'ca.delegate' && a.delegator === BOB)?.code, 'DELEGATOR_REVOKED');
    // the CA audits its refusal before its answer reaches the agent: give the agent that moment
    // (a call made in it goes out with the stale certificate, which the server refuses as revoked)
    for (let i = 0; i < 50; i++) {
      const refused = await platform.fetchFor(BOB).then(() => false, (e) => isMtlsError(e, 'DELEGATION_REFUSED'));
      if (refused) break;
      await sleep(100);
    }
    // bob's calls: the CA's refusal, not a call with the revoked, stale certificate
    await assert.rejects(bob.who(), (e: Error) => /DELEGATOR_REVOKED/.test(`${e.message} ${(e as { cause?: Error }).cause?.message ?? ''}`));
    await assert.rejects(platform.fetchFor(BOB), (e) => isMtlsError(e, 'DELEGATION_REFUSED') && e.details?.code === 'DELEGATOR_REVOKED' && /refused to delegate .*bob.*DELEGATOR_REVOKED/.test(e.message));
    // and it does not retry a refusal for good in a loop
    const refusals = exchangesFor(BOB, 403);
    await sleep(TTL_S * 500 + 1000);
    assert.equal(exchangesFor(BOB, 403), refusals, 'the agent kept asking the CA after a refusal for good');
    // alice is not affected
    assert.equal((await alice.who()).actingFor, ALICE);

    // bob gets a new certificate and signs a new grant: setProof recovers
    who.bob = await clientCreds(ca, { id: 'bob', teams: ['sre'] });
    platform.setProof(BOB, { grant: await grant(who.bob!) });
    const bob2 = await clientFor(platform, BOB);
    assert.equal((await bob2.who()).actingFor, BOB);
    await bob2.close();
  } finally {
    await bob.close();
    await alice.close();
    await platform.close();
  }
});

test('the CA gives a short lifetime asked for (down to 10 s), and refuses a shorter one with 400', async () => {
  const ask = async (ttl: string) => request(caPort, t.rootPem, { method: 'POST', path: '/delegate', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant: await grant(who.alice!), ttl }), creds: { cert: who.platform!.cert, key: who.platform!.key } });
  const ok = await ask('12s');
  assert.equal(ok.status, 200, ok.text());
  const left = decodeIdentity(readCertificates(ok.body)[0]!).notAfter.getTime() - Date.now();
  assert.ok(left > 10_000 && left <= 12_000, `${left} ms`);
  const short = await ask('5s');
  assert.deepEqual([short.status, short.json().error?.code], [400, 'BAD_REQUEST']);
  assert.match(short.json().error!.message, /shorter than 10s/);
});
