/**
 * createDelegatingAgent and a proof replaced while an exchange is in flight (review 2 of issue
 * 23): the CA's refusal for good of the old proof (a bad grant) ended the person for good
 * (DELEGATION_REFUSED on every use) although setProof had given a good one meanwhile. A refusal
 * now ends the person only when it refused the proof in force. Real `ca serve`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDelegatingAgent } from '../../src/client/delegating-agent.js';
import { isMtlsError } from '../../src/errors.js';
import { useDelegationCa } from '../support/delegation-ca.js';

const TD = 'acme.test';
const PLATFORM = `spiffe://${TD}/service/chat-platform`;
const BOB = `spiffe://${TD}/user/bob`;

const dca = useDelegationCa({
  trustDomain: TD,
  delegation: `  actors:
    - actor: service/chat-platform
      for: { any: true }
`,
  people: {
    bob: { id: 'bob', teams: ['sre'] },
    platform: { kind: 'service', id: 'chat-platform' },
  },
});
const { who, grant } = dca;

test('a refusal of a proof replaced meanwhile does not end the person: the new proof is exchanged', { timeout: 30_000 }, async () => {
  const platform = createDelegatingAgent({ bundle: dca.bundleOf(who.platform!), caUrl: dca.url });
  try {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // the old proof: a grant for another actor (403 GRANT_INVALID, a refusal for good), given once the new proof is set
    const wrong = await grant(who.bob!, `spiffe://${TD}/service/other`, { ttlMs: 3600_000 });
    platform.setProof(BOB, async () => {
      await held;
      return { grant: wrong };
    });
    const first = platform.dispatcherFor(BOB);
    await new Promise((r) => setTimeout(r, 50));
    platform.setProof(BOB, { grant: await grant(who.bob!, PLATFORM, { ttlMs: 3600_000 }) });
    release();
    await assert.rejects(first, (e) => isMtlsError(e, 'DELEGATION_REFUSED') && e.details?.code === 'GRANT_INVALID');
    // the good proof now in force is exchanged, not refused with the old one's answer
    const agent = await platform.dispatcherFor(BOB);
    assert.ok(agent);
    assert.equal(dca.audit.filter((a) => a.event === 'ca.delegate' && a.status === 200).length, 1);
  } finally {
    await platform.close();
  }
});
