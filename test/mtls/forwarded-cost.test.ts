/**
 * What a value forwarded by a trusted proxy may cost the server (forwarded-cache.ts,
 * forwarded-common.ts): the same bytes are verified once, a refusal included, and a chain is
 * bounded before any of its certificates is parsed. The sender of such a value is anyone the
 * proxy forwards for: with a proxy that passes certificates on unverified (AWS ALB passthrough,
 * nginx `ssl_verify_client optional_no_ca`), anyone at all, with a chain of its own making.
 * Real HTTP over loopback (requests written by hand from 127.0.0.x), real certificates, a real
 * authenticator whose verifyForwarded calls are counted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAuthenticator, type ForwardedAuthenticator } from '../../src/mtls/authenticate.js';
import { MAX_FORWARDED_CHAIN } from '../../src/mtls/forwarded-common.js';
import { createForwardedCache } from '../../src/mtls/forwarded-cache.js';
import { createForwardedReader } from '../../src/mtls/trusted-proxies.js';
import { sf, startReaderServer, type ReaderServer } from '../support/forwarded-reader.js';
import { memoryCertificates } from '../support/memory-ca.js';

const certs = memoryCertificates(Date.now());
const rootCa = certs.root('Cost Test Root', 100);
const root = rootCa.der;
const interCa = certs.intermediate(rootCa, 'Cost Test Intermediate', 50);
const inter = interCa.der;
/** an attacker's own CA (self-signed, not configured), named as the real root is */
const evilCa = certs.root('Cost Test Root', 100, 'Mallory');
const evil = evilCa.der;
const dave = certs.leaf(interCa, 'dave', 24);
const mallory = certs.leaf(evilCa, 'mallory', 24);

const auth = createAuthenticator({ caCertificates: [root] });
let verifications = 0;
const counted: ForwardedAuthenticator = { ...auth, verifyForwarded: (der, chain) => (verifications++, auth.verifyForwarded(der, chain)) };
const reader = createForwardedReader([{ from: '127.0.0.3', format: 'rfc9440' }], counted);
let server: ReaderServer;
const send = (from: string, lines: readonly [string, string][]) => server.send(from, lines);
before(async () => {
  server = await startReaderServer(reader);
});
after(() => server.close());

test('the same value with a chain of an unknown CA is verified once, not on every request; the right chain still passes', async () => {
  const lines: [string, string][] = [['client-cert', sf(mallory)], ['client-cert-chain', sf(evil)]];
  verifications = 0;
  for (let i = 0; i < 3; i++) assert.equal(await send('127.0.0.3', lines), 'unknown_ca');
  assert.equal(verifications, 1, 'the same bytes verified again');
  // kept for those bytes only: dave without his intermediate is unknown_ca, with it ok
  assert.equal(await send('127.0.0.3', [['client-cert', sf(dave)]]), 'unknown_ca');
  assert.equal(await send('127.0.0.3', [['client-cert', sf(dave)], ['client-cert-chain', sf(inter)]]), 'ok dave');
});

test(`a chain of more than ${MAX_FORWARDED_CHAIN} CA certificates is refused as malformed, before any is verified`, async () => {
  verifications = 0;
  const chain = Array.from({ length: MAX_FORWARDED_CHAIN + 1 }, () => sf(evil)).join(', ');
  assert.match(await send('127.0.0.3', [['client-cert', sf(mallory)], ['client-cert-chain', chain]]), /^forwarded_certificate_malformed: .*5 CA certificates after the client certificate, more than the 4 accepted/);
  assert.equal(verifications, 0);
  // the bound is not below a real chain: the intermediate and the root
  assert.equal(await send('127.0.0.3', [['client-cert', sf(dave)], ['client-cert-chain', `${sf(inter)}, ${sf(root)}`]]), 'ok dave');
});

test('the kept values are bounded in characters, not only in number: the oldest go first', () => {
  // a small budget for the test (the default is 32 Mi characters): 64 kB, values of 4 kB each
  const cache = createForwardedCache<string, string>(auth, (_, a) => (a.ok ? 'ok' : a.reason), 64 * 1024);
  const verified = auth.verifyForwarded(mallory, [evil]);
  assert.equal(verified.keep, true, JSON.stringify(verified.result));
  const valueOf = (i: number) => `:${i}`.padStart(4096, 'x'); // the end differs: the probe
  for (let i = 0; i < 100; i++) cache.add('proxy', 0, valueOf(i), mallory, verified);
  const { values, chars } = cache.size();
  assert.ok(chars <= 64 * 1024, `${values} values of ${chars} characters kept, more than the budget`);
  assert.ok(values >= 10, `only ${values} kept`);
  assert.equal(cache.lookup('proxy', 0, valueOf(99))?.answer.ok, false, 'the newest is kept');
  assert.equal(cache.lookup('proxy', 0, valueOf(0)), undefined, 'the oldest is evicted');
});
