/**
 * The trusted-proxy reader's cache key (forwarded-cache.ts): a forwarded header value is answered
 * from the cache only when it is exactly the input the kept answer was computed for: the same
 * entry (format and header), the same header lines, byte for byte. Each test sends a value that
 * would be served a kept answer under a looser key and expects what the value itself deserves;
 * and a kept answer must follow revocation and expiry on the very next request. Real HTTP over
 * loopback (a node:http server, requests written by hand from 127.0.0.x so that header lines
 * are exactly as given), real certificates, a real authenticator with a moved clock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createAuthenticator } from '../../src/mtls/authenticate.js';
import { caKeyOf } from '../../src/mtls/ca-key.js';
import { createForwardedReader } from '../../src/mtls/trusted-proxies.js';
import { EMPTY_REVOCATION } from '../../src/mtls/revocation.js';
import { pemEncode } from '../../src/x509/pem.js';
import { sf, startReaderServer, type ReaderServer } from '../support/forwarded-reader.js';
import { HOUR, memoryCertificates } from '../support/memory-ca.js';

const start = Date.now();
let now = start;
const certs = memoryCertificates(start);
const rootCa = certs.root('Key Test Root', 100);
const root = rootCa.der;
/** a CA under the root, not configured: a forwarded chain may link a leaf of it to the root */
const interCa = certs.intermediate(rootCa, 'Key Test Intermediate', 50);
const inter = interCa.der;
/** another CA under the root, which signed none of the leaves */
const other = certs.intermediate(rootCa, 'Key Test Other CA', 50).der;
/** a CA under the root that ends at 2 h, before its leaf (24 h) */
const shortCaIssuer = certs.intermediate(rootCa, 'Key Test Short CA', 2);
const shortCa = shortCaIssuer.der;
const alice = certs.leaf(rootCa, 'alice', 24);
const dave = certs.leaf(interCa, 'dave', 24);
const erin = certs.leaf(shortCaIssuer, 'erin', 24);

const auth = createAuthenticator({ caCertificates: [root], clock: () => new Date(now) });
const reader = createForwardedReader(
  [
    { from: '127.0.0.2', format: 'nginx' },
    { from: '127.0.0.3', format: 'rfc9440' },
    { from: '127.0.0.4', format: 'traefik' },
    // nginx reading the header Traefik's format uses: the same bytes, another decoder
    { from: '127.0.0.5', format: 'nginx', header: 'x-forwarded-tls-client-cert' },
  ],
  auth,
);
let server: ReaderServer;
const send = (from: string, lines: readonly [string, string][]) => server.send(from, lines);
before(async () => {
  server = await startReaderServer(reader);
});
after(() => server.close());

const escaped = (der: Buffer) => encodeURIComponent(pemEncode('CERTIFICATE', der));

test('the same leaf with another chain is not served the kept answer (RFC 9440 Client-Cert-Chain)', async () => {
  assert.equal(await send('127.0.0.3', [['client-cert', sf(dave)], ['client-cert-chain', sf(inter)]]), 'ok dave');
  assert.equal(await send('127.0.0.3', [['client-cert', sf(dave)], ['client-cert-chain', sf(other)]]), 'unknown_ca');
  assert.equal(await send('127.0.0.3', [['client-cert', sf(dave)]]), 'unknown_ca');
  assert.equal(await send('127.0.0.3', [['client-cert', sf(dave)], ['client-cert-chain', sf(inter)]]), 'ok dave');
});

test('a value sent twice is not the kept single value; a header line moved to the chain header is another input', async () => {
  assert.equal(await send('127.0.0.2', [['ssl-client-cert', escaped(alice)]]), 'ok alice');
  assert.match(await send('127.0.0.2', [['ssl-client-cert', escaped(alice)], ['SSL-Client-Cert', escaped(alice)]]), /^forwarded_certificate_malformed: .*sent 2 times/);
  // Client-Cert with Client-Cert-Chain is kept; the same two values both as Client-Cert lines are doubled
  assert.equal(await send('127.0.0.3', [['client-cert', sf(dave)], ['client-cert-chain', sf(inter)]]), 'ok dave');
  assert.match(await send('127.0.0.3', [['client-cert', sf(dave)], ['client-cert', sf(inter)]]), /^forwarded_certificate_malformed: .*client-cert was sent 2 times/);
});

test('a value kept for one proxy entry is no answer for another entry reading the same header', async () => {
  const value = alice.toString('base64'); // Traefik: base64 DER; for nginx, not URL-encoded PEM
  assert.equal(await send('127.0.0.4', [['x-forwarded-tls-client-cert', value]]), 'ok alice');
  assert.match(await send('127.0.0.5', [['x-forwarded-tls-client-cert', value]]), /^forwarded_certificate_malformed: .*holds no PEM certificate/);
});

test("a value that differs from a kept one only outside the cache's probe (the start of the PEM) is not the kept one", async () => {
  const value = escaped(alice);
  assert.equal(await send('127.0.0.2', [['ssl-client-cert', value]]), 'ok alice');
  // one base64 character near the start of the body changed: another DER, same length, same end and middle
  const at = value.indexOf('%0A') + 3 + 40;
  const altered = value.slice(0, at) + (value[at] === 'A' ? 'B' : 'A') + value.slice(at + 1);
  assert.equal(altered.length, value.length);
  assert.notEqual(await send('127.0.0.2', [['ssl-client-cert', altered]]), 'ok alice');
});

test('a kept answer follows revocation and expiry on the next request, and un-revocation', async () => {
  const value = escaped(alice);
  assert.equal(await send('127.0.0.2', [['ssl-client-cert', value]]), 'ok alice');
  const serial = new crypto.X509Certificate(alice).serialNumber.toLowerCase();
  auth.setRevocation({ byCa: new Map([[caKeyOf(root), new Set([serial])]]), crls: [] });
  assert.equal(await send('127.0.0.2', [['ssl-client-cert', value]]), 'certificate_revoked');
  auth.setRevocation(EMPTY_REVOCATION);
  assert.equal(await send('127.0.0.2', [['ssl-client-cert', value]]), 'ok alice');
  now = start + 25 * HOUR; // alice's certificate ends at 24 h
  try {
    assert.equal(await send('127.0.0.2', [['ssl-client-cert', value]]), 'certificate_expired');
  } finally {
    now = start;
  }
});

test('a kept answer is verified again once the first CA certificate on its chain has expired', async () => {
  const lines: [string, string][] = [['client-cert', sf(erin)], ['client-cert-chain', sf(shortCa)]];
  assert.equal(await send('127.0.0.3', lines), 'ok erin');
  now = start + 3 * HOUR; // the CA ends at 2 h, erin at 24 h
  try {
    assert.equal(await send('127.0.0.3', lines), 'certificate_expired');
  } finally {
    now = start;
  }
});
