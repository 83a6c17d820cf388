/**
 * createDelegatingAgent does not retry-storm the CA (review 2 of issue 23). A renewal the CA
 * answers 429 RATE_LIMITED (config.yaml delegation.rate, per actor) is tried again after the
 * CA's Retry-After, not at once: before, a failed renewal was retried after
 * min(30 s x attempt, time left - 5 s), which is 0 within the last 5 s of a certificate (always,
 * for a 10-25 s one renewed at a fifth of it) and stays 0 once it ran out, so the agent asked the
 * CA in a loop, for ever, for every person, and the rate limit it hit never recovered. Then,
 * once the certificate ran out, a request for the person within the Retry-After is answered with
 * the CA's last refusal without asking it again. Real `ca serve`, real MCP server over mTLS.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDelegatingAgent } from '../../src/client/delegating-agent.js';
import { isMtlsError } from '../../src/errors.js';
import { useDelegationCa } from '../support/delegation-ca.js';

const TD = 'acme.test';
const PLATFORM = `spiffe://${TD}/service/chat-platform`;
const BOB = `spiffe://${TD}/user/bob`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// one exchange, then one a minute: the renewal of a 10 s certificate is refused 429 with a Retry-After of about 60 s
const dca = useDelegationCa({
  trustDomain: TD,
  delegation: `  rate: { burst: 1, perMinute: 1 }
  actors:
    - actor: service/chat-platform
      for: { any: true }
`,
  people: {
    bob: { id: 'bob', teams: ['sre'] },
    platform: { kind: 'service', id: 'chat-platform' },
  },
});
const { who, grant } = dca;
const limited = () => dca.audit.filter((a) => a.event === 'ca.delegate' && a.status === 429 && a.actor === PLATFORM).length;

test('a renewal refused 429 waits for the Retry-After: no retry loop before or after the certificate runs out', { timeout: 60_000 }, async () => {
  const platform = createDelegatingAgent({ bundle: dca.bundleOf(who.platform!), caUrl: dca.url, ttl: '10s' });
  try {
    platform.setProof(BOB, { grant: await grant(who.bob!, PLATFORM, { ttlMs: 3600_000 }) });
    await platform.dispatcherFor(BOB);
    assert.equal(platform.exchanges, 1);
    // the renewal comes at ~8 s (a fifth of 10 s left) and is refused
    for (let i = 0; i < 120 && limited() === 0; i++) await sleep(100);
    assert.equal(limited(), 1, 'the renewal was not refused 429');
    // until 3 s after the certificate ran out
    await sleep(5000);
    assert.equal(limited(), 1, `the agent asked the CA ${limited()} times within 5 s of a 429 with Retry-After ${dca.audit.find((a) => a.status === 429)?.retryAfter ?? '~60'} s`);
    // the certificate ran out; within the Retry-After a request gets the CA's refusal without asking it again
    await assert.rejects(platform.fetchFor(BOB), (e) => isMtlsError(e, 'CERT_EXPIRED') && /RATE_LIMITED/.test(e.message));
    assert.equal(limited(), 1);
  } finally {
    await platform.close();
  }
});
