/**
 * createDelegatingAgent and a proof replaced while an exchange is in flight (review 2 of issue
 * 23): the CA's refusal for good of the old proof (a bad grant) ended the person for good
 * (DELEGATION_REFUSED on every use) although setProof had given a good one meanwhile. A refusal
 * now ends the person only when it refused the proof in force. Real `ca serve`.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import { createDelegatingAgent } from '../../src/client/delegating-agent.js';
import { signGrant } from '../../src/delegation/grant.js';
import { isMtlsError } from '../../src/errors.js';
import { readCertificates } from '../../src/x509/pem.js';
import { clientCreds, makeCa, startServer, type Creds, type TestCa } from '../support/ca-serve.js';

const TD = 'acme.test';
const PLATFORM = `spiffe://${TD}/service/chat-platform`;
const BOB = `spiffe://${TD}/user/bob`;

let t: TestCa;
let ca: Authority;
let caPort: number;
let audit: Record<string, unknown>[];
let stopCa: () => Promise<void>;
const who: Record<string, Creds> = {};
const chainOf = (c: Creds) => readCertificates(Buffer.from(c.cert));

before(async () => {
  t = makeCa(TD);
  fs.appendFileSync(path.join(t.dir, 'config.yaml'), `delegation:\n  actors:\n    - actor: service/chat-platform\n      for: { any: true }\n`);
  ca = Authority.open(t.dir);
  t = { ...t, ca };
  who.bob = await clientCreds(ca, { id: 'bob', teams: ['sre'] });
  who.platform = await clientCreds(ca, { kind: 'service', id: 'chat-platform' });
  const s = await startServer(t);
  caPort = s.port;
  audit = s.audit;
  stopCa = () => s.server.shutdown(1000);
});
after(async () => {
  await stopCa?.();
  await ca?.store.close();
});

test('a refusal of a proof replaced meanwhile does not end the person: the new proof is exchanged', { timeout: 30_000 }, async () => {
  const platform = createDelegatingAgent({ bundle: { chain: chainOf(who.platform!), key: crypto.createPrivateKey(who.platform!.key), ca: readCertificates(Buffer.from(t.rootPem)) }, caUrl: `https://localhost:${caPort}` });
  try {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // the old proof: a grant for another actor (403 GRANT_INVALID, a refusal for good), given once the new proof is set
    const wrong = await signGrant({ chain: chainOf(who.bob!), key: crypto.createPrivateKey(who.bob!.key), actor: `spiffe://${TD}/service/other`, ttlMs: 3600_000 });
    platform.setProof(BOB, async () => {
      await held;
      return { grant: wrong };
    });
    const first = platform.dispatcherFor(BOB);
    await new Promise((r) => setTimeout(r, 50));
    platform.setProof(BOB, { grant: await signGrant({ chain: chainOf(who.bob!), key: crypto.createPrivateKey(who.bob!.key), actor: PLATFORM, ttlMs: 3600_000 }) });
    release();
    await assert.rejects(first, (e) => isMtlsError(e, 'DELEGATION_REFUSED') && e.details?.code === 'GRANT_INVALID');
    // the good proof now in force is exchanged, not refused with the old one's answer
    const agent = await platform.dispatcherFor(BOB);
    assert.ok(agent);
    assert.equal(audit.filter((a) => a.event === 'ca.delegate' && a.status === 200).length, 1);
  } finally {
    await platform.close();
  }
});
