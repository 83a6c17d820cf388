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
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { clientFields, intermediateFields, rootFields } from '../../src/ca/profiles.js';
import { normalizeClaims } from '../../src/identity/encode.js';
import { createAuthenticator, type Authenticator } from '../../src/mtls/authenticate.js';
import { MAX_FORWARDED_CHAIN } from '../../src/mtls/forwarded-common.js';
import { createForwardedCache } from '../../src/mtls/forwarded-cache.js';
import { createForwardedReader, type ForwardedOutcome } from '../../src/mtls/trusted-proxies.js';
import { randomSerial, signCertificate } from '../../src/x509/certificate.js';
import { createSigner, generateKey, keyIdentifier } from '../../src/x509/keys.js';

const HOUR = 3_600_000;
const start = Date.now();
const signerOf = (k: ReturnType<typeof generateKey>) => createSigner(crypto.createPrivateKey({ key: k.pkcs8, format: 'der', type: 'pkcs8' }));
const rootKey = generateKey('ec-p256');
const rootF = rootFields({ name: 'Cost Test Root', serial: randomSerial(), notBefore: new Date(start - HOUR), notAfter: new Date(start + 100 * HOUR), spki: rootKey.spki });
const root = signCertificate(rootF, signerOf(rootKey));
const rootInfo = { subjectName: rootF.subjectName, keyId: keyIdentifier(rootKey.spki), notAfter: rootF.notAfter };
const interKey = generateKey('ec-p256');
const interF = intermediateFields(rootInfo as never, { name: 'Cost Test Intermediate', serial: randomSerial(), notBefore: new Date(start - HOUR), notAfter: new Date(start + 50 * HOUR), spki: interKey.spki });
const inter = signCertificate(interF, signerOf(rootKey));
const interInfo = { subjectName: interF.subjectName, keyId: keyIdentifier(interKey.spki), notAfter: interF.notAfter };
/** an attacker's own CA (self-signed, not configured) */
const evilKey = generateKey('ec-p256');
const evilF = rootFields({ name: 'Cost Test Root', organization: 'Mallory', serial: randomSerial(), notBefore: new Date(start - HOUR), notAfter: new Date(start + 100 * HOUR), spki: evilKey.spki });
const evil = signCertificate(evilF, signerOf(evilKey));
const evilInfo = { subjectName: evilF.subjectName, keyId: keyIdentifier(evilKey.spki), notAfter: evilF.notAfter };
const leaf = (issuer: typeof rootInfo, key: ReturnType<typeof generateKey>, id: string) =>
  signCertificate(clientFields(issuer as never, { serial: randomSerial(), notBefore: new Date(start - HOUR), notAfter: new Date(start + 24 * HOUR), spki: generateKey('ec-p256').spki, keyType: 'ec-p256', claims: normalizeClaims({ trustDomain: 'acme.test', kind: 'user', id, teams: [], roles: [] }) }), signerOf(key));
const dave = leaf(interInfo, interKey, 'dave');
const mallory = leaf(evilInfo, evilKey, 'mallory');

const auth = createAuthenticator({ caCertificates: [root] });
let verifications = 0;
const counted: Authenticator = { ...auth, verifyForwarded: (der, chain) => (verifications++, auth.verifyForwarded(der, chain)) };
const reader = createForwardedReader([{ from: '127.0.0.3', format: 'rfc9440' }], counted);
let server: http.Server;
let port: number;
before(async () => {
  server = http.createServer((req, res) => {
    const f: ForwardedOutcome = reader.read(req);
    res.end(f.kind === 'forwarded' ? (f.auth.ok ? `ok ${f.auth.identity.id}` : f.auth.reason) : f.kind === 'refused' ? `${f.error}: ${f.message}` : 'direct');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => server.close());

/** One request from `from` with exactly these header lines, on its own connection, bounded in time. */
function send(from: string, lines: readonly [string, string][]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: from });
    s.setTimeout(10_000, () => s.destroy(new Error('no answer in 10 s')));
    let text = '';
    s.on('data', (d) => (text += d.toString('latin1')));
    s.on('end', () => resolve(text.slice(text.indexOf('\r\n\r\n') + 4)));
    s.on('error', reject);
    s.end(`GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n${lines.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`);
  });
}
const sf = (der: Buffer) => `:${der.toString('base64')}:`;

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
