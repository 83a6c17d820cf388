/**
 * The console is the operator's own (#23 review): a delegated certificate whose holder is an
 * operator ("bob via ops") is refused, though the console would read it as ops alone. It acts for
 * someone else, and it may be held by an agent runtime (a CSR's key the actor chose): the
 * operator's powers stay with the operator's own certificate.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { createConsole } from '../../src/console/console.js';
import { privateKeyPem } from '../../src/x509/keys.js';
import { tmpDir } from '../support/cli.js';
import { clientCreds, request, startServer, YEAR, type Creds } from '../support/ca-serve.js';

let ca: Authority;
let port: number;
let stop: () => Promise<void>;
const c: Record<string, Creds> = {};

before(async () => {
  const base = tmpDir('console-deleg-');
  const dir = path.join(base, 'pki');
  initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
  const cfgFile = path.join(dir, 'config.yaml');
  const cfg = YAML.parse(fs.readFileSync(cfgFile, 'utf8'));
  cfg.console = { act: { users: ['ops'] }, view: { users: ['ops'] } };
  fs.writeFileSync(cfgFile, YAML.stringify(cfg));
  ca = Authority.open(dir);
  c.ops = await clientCreds(ca, { id: 'ops' });
  const bob = await clientCreds(ca, { id: 'bob', roles: ['ca-admin'] });
  const d = await ca.issueClient({ kind: 'user', id: 'ops', teams: [], roles: ['ca-admin'], actingFor: { kind: 'user', id: 'bob' }, delegatedFrom: bob.serial } as never);
  c.opsForBob = { cert: d.chainPem, key: privateKeyPem(d.key!.pkcs8), serial: d.record.serial };
  const s = await startServer({ dir, ca } as never, { console: createConsole({ authority: ca, assetsDir: base }) });
  port = s.port;
  stop = () => s.server.shutdown(200);
});
after(() => stop?.());

test("a delegated certificate is refused at the console, even when its holder is an operator; the operator's own is let in", async () => {
  const own = await request(port, ca.rootPem, { path: '/console/api/session', creds: c.ops! });
  assert.equal(own.status, 200, own.text());
  const r = await request(port, ca.rootPem, { path: '/console/api/session', creds: c.opsForBob! });
  assert.deepEqual([r.status, r.json().error?.code], [403, 'CONSOLE_DELEGATED'], r.text());
  assert.match(r.json().error?.message ?? '', /acts for spiffe:\/\/acme\.test\/user\/bob/);
});
