/**
 * POST /delegate is rate limited per actor principal (config.yaml `delegation.rate`, a token
 * bucket from rate-limit.ts): past the burst the actor gets 429 RATE_LIMITED with Retry-After,
 * audited as `ca.delegate` with the actor, before the grant is read or the store touched; another
 * actor keeps its own bucket.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadCaConfig } from '../../../src/ca/config.js';
import { DEFAULT_DELEGATE_RATE, DEFAULT_RENEW_RATE } from '../../../src/ca/serve/rate-limit.js';
import { useDelegationCa } from '../../support/delegation-ca.js';

const TD = 'acme.test';
const dca = useDelegationCa({
  trustDomain: TD,
  delegation: `  rate: { burst: 2, perMinute: 1 }
  actors:
    - actor: service/chat-platform
      for: { users: ["*"] }
    - actor: service/other-bot
      for: { users: ["*"] }
`,
  people: {
    bob: { id: 'bob', teams: ['sre'] },
    platform: { kind: 'service', id: 'chat-platform' },
    otherBot: { kind: 'service', id: 'other-bot' },
  },
});
const { who, grant } = dca;
const { exchange } = dca;

test('past its burst an actor gets 429 RATE_LIMITED with Retry-After, audited with the actor; another actor is not affected', async () => {
  const platform = `spiffe://${TD}/service/chat-platform`;
  for (let i = 0; i < 2; i++) {
    const r = await exchange(who.platform!, { grant: await grant(who.bob!, platform) });
    assert.equal(r.status, 200, r.text());
  }
  const r = await exchange(who.platform!, { grant: await grant(who.bob!, platform) });
  assert.equal(r.status, 429, r.text());
  assert.equal(r.json().error?.code, 'RATE_LIMITED');
  assert.match(r.json().error!.message, /chat-platform/);
  // 1 a minute: the next token is a minute away at most
  const wait = Number(r.headers['retry-after']);
  assert.ok(wait >= 1 && wait <= 60, `Retry-After: ${r.headers['retry-after']}`);
  const line = dca.audit.findLast((a) => a.event === 'ca.delegate')!;
  assert.deepEqual([line.status, line.code, line.actor], [429, 'RATE_LIMITED', platform]);
  assert.equal(line.newSerial, undefined);
  // a refusal before the grant is read: it names no delegator, and nothing was issued
  assert.equal(line.delegator, undefined);
  // the limit is per actor
  const other = await exchange(who.otherBot!, { grant: await grant(who.bob!, `spiffe://${TD}/service/other-bot`) });
  assert.equal(other.status, 200, other.text());
});

test('the default is sized for a platform acting for thousands of people, far above /renew\'s; config.yaml refuses a bad rate or tools maximum', () => {
  assert.deepEqual(DEFAULT_DELEGATE_RATE, { burst: 2000, perMinute: 2000 });
  assert.ok(DEFAULT_DELEGATE_RATE.burst >= 100 * DEFAULT_RENEW_RATE.burst);
  // config.yaml refuses a rate that is not a bucket
  const dir = fs.mkdtempSync(path.join(dca.t.dir, 'cfg-'));
  const base = fs.readFileSync(path.join(dca.t.dir, 'config.yaml'), 'utf8').replace('rate: { burst: 2, perMinute: 1 }', 'rate: { burst: 0, perMinute: 1 }');
  fs.writeFileSync(path.join(dir, 'config.yaml'), base);
  assert.throws(() => loadCaConfig(path.join(dir, 'config.yaml')), /burst/);
  // and an actor's tools maximum that is not in the policy's glob syntax (profile v1.2)
  fs.writeFileSync(path.join(dir, 'config.yaml'), base.replace('rate: { burst: 0, perMinute: 1 }', 'rate: { burst: 2, perMinute: 1 }').replace('    - actor: service/other-bot\n', '    - actor: service/other-bot\n      tools: ["{read_"]\n'));
  assert.throws(() => loadCaConfig(path.join(dir, 'config.yaml')), /tool name or glob/);
});
