/**
 * Every gateway audit line about a delegated caller names both sides (#23 review): the holder
 * (`principal`, the platform) and whom it acts for (`actingFor`, `actors`), as the decision lines
 * of the JSON-RPC gate do. Before, a body the gateway refused said only the platform, so an
 * operator reading the log could not tell which person's call it was. A real HTTP request on
 * loopback; the real golden v1.1 vector.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { delegationFields } from '../../src/gateway/identity-meta.js';
import { gateRequestBody } from '../../src/gateway/request-body.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { policyFromText } from '../../src/policy/compile.js';
import { ROOT } from '../support/cli.js';

const der = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'delegation', 'delegated-bob-via-platform.der'));
const BOTH = { actingFor: { principal: 'spiffe://acme.test/user/bob', teams: ['sre'], roles: ['oncall'] }, actors: ['spiffe://acme.test/service/chat-platform'] };

test("a body the gateway refuses (too large) is audited with the person a delegated caller acts for, and the actor chain", async () => {
  const audit = memoryAudit();
  const identity = decodeIdentity(der);
  const policy = policyFromText('version: 1\nrules:\n  - id: all\n    subjects: { any: true }\n    tools: ["*"]\n');
  const server = http.createServer((req, res) => {
    void gateRequestBody(req, { identity, policy, headers: req.headers, remote: req.socket.remoteAddress, audit, maxBodyBytes: 64 }).then((g) => res.writeHead(g.kind === 'respond' ? g.status : 200).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, method: 'POST', path: '/mcp', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: { pad: 'x'.repeat(500) } } }));
    });
    assert.equal(status, 413);
    const line = audit.events.find((e) => e.event === 'decision') as Record<string, unknown> | undefined;
    assert.equal(line?.principal, 'spiffe://acme.test/service/chat-platform');
    assert.deepEqual([line?.actingFor, line?.actors], [BOTH.actingFor, BOTH.actors], JSON.stringify(line));
  } finally {
    server.close();
  }
});

test('the fields are empty for a caller acting for itself, and for a delegated certificate read without delegation support', () => {
  assert.deepEqual(delegationFields(decodeIdentity(der)), BOTH);
  assert.deepEqual(delegationFields(decodeIdentity(der, { delegation: false })), {});
});
