/**
 * `revokePrincipal` (what `mcp-mtls revoke --principal` runs) is part of the `mcp-mtls/ca`
 * subpath: package.json maps `./ca` to dist/api/ca.js, built from src/api/ca.ts, so this test
 * imports that entry file and uses the export on a real CA (folder store): bob's two valid
 * certificates are revoked in one CRL, alice's is not.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import * as caApi from '../../src/api/ca.js';
import { parseCrl } from '../../src/x509/crl.js';
import { tmpDir } from '../support/cli.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

test('mcp-mtls/ca exports revokePrincipal, and it revokes every valid certificate of a principal in one CRL', async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.exports['./ca'].default, './dist/api/ca.js', 'the subpath is built from src/api/ca.ts');
  const api = caApi as Record<string, unknown>;
  assert.equal(typeof api.revokePrincipal, 'function', 'mcp-mtls/ca has no revokePrincipal export');
  const revokePrincipal = api.revokePrincipal as (ca: caApi.Authority, who: string, reason: string, by?: string) => Promise<{ principal: string; certificates: readonly { serial: string }[]; alsoRevoked: readonly string[]; crlNumber: string }>;

  const dir = tmpDir('mcp-mtls-revoke-principal-api-');
  caApi.initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * 365 * 86400_000, intermediateTtlMs: 5 * 365 * 86400_000 });
  const ca = caApi.Authority.open(dir);
  await caApi.writeCrls(ca);
  const b1 = await ca.issueClient({ kind: 'user', id: 'bob', teams: ['sre'], roles: [] });
  const b2 = await ca.issueClient({ kind: 'user', id: 'bob', teams: ['sre'], roles: [] });
  const alice = await ca.issueClient({ kind: 'user', id: 'alice', teams: ['sre'], roles: [] });
  const r = await revokePrincipal(ca, 'user/bob', 'affiliationChanged', 'api-test');
  assert.equal(r.principal, 'spiffe://acme.test/user/bob');
  assert.deepEqual(r.certificates.map((c) => c.serial), [b1.record.serial, b2.record.serial]);
  const crl = parseCrl((await ca.store.readCrl('intermediate'))!);
  assert.equal(String(crl.number), r.crlNumber);
  const listed = new Set(crl.entries.map((e) => e.serial));
  assert.ok(listed.has(b1.record.serial) && listed.has(b2.record.serial) && !listed.has(alice.record.serial));
});
