/** `mcp-mtls delegate` (docs/delegation.md): a grant signed with the caller's own bundle, as the CA reads it; bad input refused. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { readGrant } from '../../src/delegation/grant.js';
import { clientCreds, makeCa } from '../support/ca-serve.js';
import { cli, tmpDir } from '../support/cli.js';

const t = makeCa('acme.test');
after(() => t.ca.store.close());

async function pemFolder(id: string, teams: string[]): Promise<string> {
  const c = await clientCreds(t.ca, { id, teams, roles: ['oncall'] });
  const dir = tmpDir('delegate-bundle-');
  fs.writeFileSync(path.join(dir, 'cert.pem'), c.cert);
  fs.writeFileSync(path.join(dir, 'key.pem'), c.key, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'ca.pem'), t.rootPem);
  return dir;
}

test('delegate --to service/chat-platform signs a grant the CA reads: bob to the platform, his chosen team, no roles, 2h', async () => {
  const bundle = await pemFolder('bob', ['sre', 'dev']);
  const out = path.join(tmpDir('delegate-out-'), 'grant.jws');
  const r = await cli(['delegate', '--bundle', bundle, '--to', 'service/chat-platform', '--team', 'sre', '--no-roles', '--ttl', '2h', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.statSync(out).mode & 0o777, 0o600);
  const g = await readGrant(fs.readFileSync(out, 'utf8').trim(), { trustDomain: 'acme.test', now: new Date() });
  assert.deepEqual([g.delegator.principal, g.actor, g.teams, g.roles], ['spiffe://acme.test/user/bob', 'spiffe://acme.test/service/chat-platform', ['sre'], []]);
  const hours = (g.expiresAt.getTime() - g.issuedAt.getTime()) / 3600_000;
  assert.ok(hours > 1.99 && hours <= 2, String(hours));
  assert.equal(JSON.parse(r.stdout).delegator, 'spiffe://acme.test/user/bob');
});

test('bad input: an actor not named kind/id, a bad team name, no bundle: non-zero exit, the problem named, nothing written', async () => {
  const bundle = await pemFolder('carol', ['sre']);
  const out = path.join(tmpDir('delegate-out-'), 'grant.jws');
  for (const [args, expected] of [
    [['--bundle', bundle, '--to', 'chat-platform', '--out', out], /--to chat-platform: name the actor as service\/ID or user\/ID/],
    [['--bundle', bundle, '--to', 'service/chat-platform', '--team', 'bad team', '--out', out], /invalid team name "bad team"/],
    [['--to', 'service/chat-platform', '--out', out], /pass --bundle FILE or --profile NAME/],
  ] as const) {
    const r = await cli(['delegate', ...args]);
    assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, expected);
    assert.equal(fs.existsSync(out), false);
  }
});

test('delegate --tool (repeatable) puts the tool globs into the grant, sorted; a glob outside the policy syntax is refused, nothing written', async () => {
  const bundle = await pemFolder('dave', ['sre']);
  const out = path.join(tmpDir('delegate-out-'), 'grant.jws');
  const r = await cli(['delegate', '--bundle', bundle, '--to', 'service/coding-agent', '--tool', 'read_*', '--tool', '{list,get}_issue', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const g = await readGrant(fs.readFileSync(out, 'utf8').trim(), { trustDomain: 'acme.test', now: new Date() });
  assert.deepEqual(g.tools, ['read_*', '{list,get}_issue']);
  assert.deepEqual(JSON.parse(r.stdout).tools, ['read_*', '{list,get}_issue']);
  const out2 = path.join(tmpDir('delegate-out-'), 'grant.jws');
  const bad = await cli(['delegate', '--bundle', bundle, '--to', 'service/coding-agent', '--tool', '{read_', '--out', out2]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /"\{read_" is not a tool glob/);
  assert.equal(fs.existsSync(out2), false);
});
