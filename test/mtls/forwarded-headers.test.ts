/**
 * The forwarded-certificate readers (one per proxy format) and the authenticator's check of a
 * forwarded certificate, on recorded header values: Envoy's and AWS ALB's were written with the
 * encodings their documentation gives (test/fixtures/make-forwarded.ts says how), the others are
 * built here the way nginx, HAProxy and Traefik write them. Truncated, doubled and malformed
 * values are refused with a reason; certificates are judged by the authenticator only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAuthenticator } from '../../src/mtls/authenticate.js';
import { readAlb } from '../../src/mtls/forwarded-alb.js';
import { readNginx } from '../../src/mtls/forwarded-nginx.js';
import { readRfc9440 } from '../../src/mtls/forwarded-rfc9440.js';
import { readTraefik } from '../../src/mtls/forwarded-traefik.js';
import type { ForwardedRead } from '../../src/mtls/forwarded-common.js';
import { readXfcc } from '../../src/mtls/xfcc.js';
import { buildRevocation } from '../../src/mtls/revocation.js';
import { pemEncode, readCertificates } from '../../src/x509/pem.js';
import { makePki } from '../support/pki.js';
import { cliOk } from '../support/cli.js';

const fx = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'forwarded');
const fixture = (f: string) => fs.readFileSync(path.join(fx, f), 'utf8').trim();
const meta = JSON.parse(fixture('meta.json')) as { principal: string; fingerprint: string; notAfter: string };
const fixtureCas = [...readCertificates(fs.readFileSync(path.join(fx, 'root.crt'))), ...readCertificates(fs.readFileSync(path.join(fx, 'intermediate.crt')))];
// the recorded certificate lives a day: judge it an hour before it expires
const inside = () => new Date(Date.parse(meta.notAfter) - 3_600_000);

const leafOf = (r: ForwardedRead): Buffer => {
  assert.equal(r.kind, 'certificate', JSON.stringify(r));
  return (r as { certs: { leaf: Buffer } }).certs.leaf;
};
const problemOf = (r: ForwardedRead): string => {
  assert.equal(r.kind, 'malformed', `expected a refusal, got ${r.kind}`);
  return (r as { problem: string }).problem;
};
const fp = (der: Buffer) => crypto.createHash('sha256').update(der).digest('hex');

test('recorded Envoy XFCC and ALB headers: read, then verified against the configured CAs', () => {
  const auth = createAuthenticator({ caCertificates: fixtureCas, clock: inside });
  for (const r of [readXfcc({ 'x-forwarded-client-cert': [fixture('envoy-xfcc.txt')] }), readAlb({ 'x-amzn-mtls-clientcert-leaf': [fixture('alb-leaf.txt')] }), readAlb({ 'x-amzn-mtls-clientcert': [fixture('alb-chain.txt')] })]) {
    const leaf = leafOf(r);
    assert.equal(fp(leaf), meta.fingerprint);
    const a = auth.authenticateCertificate(leaf);
    assert.ok(a.ok, JSON.stringify(a));
    assert.equal(a.identity.principal, meta.principal);
    assert.deepEqual(a.identity.teams, ['sre']);
  }
  // passthrough: the chain comes along, the intermediate after the leaf
  const chain = readAlb({ 'x-amzn-mtls-clientcert': [fixture('alb-chain.txt')] });
  assert.equal(chain.kind === 'certificate' && chain.certs.chain.length, 1);
  // the same certificate after it expired, and before it was valid: the handshake's reasons
  const late = createAuthenticator({ caCertificates: fixtureCas, clock: () => new Date(Date.parse(meta.notAfter) + 60_000) });
  const expired = late.authenticateCertificate(leafOf(readAlb({ 'x-amzn-mtls-clientcert-leaf': [fixture('alb-leaf.txt')] })));
  assert.equal(!expired.ok && expired.reason, 'certificate_expired');
  const early = createAuthenticator({ caCertificates: fixtureCas, clock: () => new Date(Date.parse(meta.notAfter) - 3 * 86_400_000) });
  const notYet = early.authenticateCertificate(leafOf(readAlb({ 'x-amzn-mtls-clientcert-leaf': [fixture('alb-leaf.txt')] })));
  assert.equal(!notYet.ok && notYet.reason, 'certificate_not_yet_valid');
});

test('XFCC: Hash must be the SHA-256 of Cert; one element; Cert required; keys once', () => {
  const value = fixture('envoy-xfcc.txt');
  const otherHash = value.replace(/Hash=[0-9a-f]+/, `Hash=${'0'.repeat(64)}`);
  assert.match(problemOf(readXfcc({ 'x-forwarded-client-cert': [otherHash] })), /Hash 0{64} is not the SHA-256 of its Cert/);
  assert.match(problemOf(readXfcc({ 'x-forwarded-client-cert': [`${value},${value}`] })), /2 elements: the proxy appended/);
  assert.match(problemOf(readXfcc({ 'x-forwarded-client-cert': [value.replace(/Cert="[^"]*";/, '')] })), /no Cert=/);
  assert.match(problemOf(readXfcc({ 'x-forwarded-client-cert': [`${value};hash=${meta.fingerprint}`] })), /hash= twice/);
  assert.match(problemOf(readXfcc({ 'x-forwarded-client-cert': [value, value] })), /sent 2 times/);
  const cut = value.slice(0, value.indexOf('Cert="') + 400);
  assert.match(problemOf(readXfcc({ 'x-forwarded-client-cert': [cut] })), /unterminated quoted value|truncated/);
  // without Hash it is read (Envoy sends Hash always; the gateway does too)
  assert.equal(fp(leafOf(readXfcc({ 'x-forwarded-client-cert': [value.replace(/Hash=[0-9a-f]+;/, '')] }))), meta.fingerprint);
});

test('nginx, RFC 9440 and Traefik values; truncated, doubled and malformed ones refused with the reason', async () => {
  const pki = await makePki();
  const alice = await pki.issue(['issue', 'client', '--user', 'alice', '--team', 'sre']);
  const bob = await pki.issue(['issue', 'client', '--user', 'bob']);
  const [leaf, inter] = readCertificates(fs.readFileSync(alice.files.cert)) as [Buffer, Buffer];
  const [bobLeaf] = readCertificates(fs.readFileSync(bob.files.cert)) as [Buffer];
  const pem = pemEncode('CERTIFICATE', leaf);
  // nginx's $ssl_client_escaped_cert: the PEM, URL-encoded
  const escaped = encodeURIComponent(pem);
  assert.equal(fp(leafOf(readNginx({ 'ssl-client-cert': [escaped] }))), alice.fingerprint);
  assert.equal(fp(leafOf(readNginx({ 'x-client-cert': [escaped] }, 'x-client-cert'))), alice.fingerprint);
  assert.equal(readNginx({ 'ssl-client-cert': [''] }).kind, 'absent'); // ssl_verify_client optional, none given
  // cut at 300 characters but never inside a %XX escape (base64's + and / are escaped, the
  // certificate is new each run): a cut escape is bad URL-encoding, another refusal than truncation
  const pct = escaped.lastIndexOf('%', 299);
  assert.match(problemOf(readNginx({ 'ssl-client-cert': [escaped.slice(0, pct > 297 ? pct : 300)] })), /truncated: a PEM block has no END line/);
  assert.match(problemOf(readNginx({ 'ssl-client-cert': [escaped.replace(/%0A-----END/, 'AAAA%0A-----END')] })), /broken base64|not one complete DER/);
  assert.match(problemOf(readNginx({ 'ssl-client-cert': [encodeURIComponent(pem + pemEncode('CERTIFICATE', bobLeaf))] })), /2 certificates where one is meant/);
  assert.match(problemOf(readNginx({ 'ssl-client-cert': [escaped, escaped] })), /sent 2 times/);
  assert.match(problemOf(readNginx({ 'ssl-client-cert': ['%E0%A4%A'] })), /not validly URL-encoded/);
  assert.match(problemOf(readNginx({ 'ssl-client-cert': [pem.replaceAll('\n', '\n')] })), /not URL-encoded: forward \$ssl_client_escaped_cert/);

  // RFC 9440: :base64(DER): as HAProxy's ssl_c_der,base64 writes it
  const sf = `:${leaf.toString('base64')}:`;
  assert.equal(fp(leafOf(readRfc9440({ 'client-cert': [sf] }))), alice.fingerprint);
  const withChain = readRfc9440({ 'client-cert': [sf], 'client-cert-chain': [`:${inter.toString('base64')}:`] });
  assert.equal(withChain.kind === 'certificate' && withChain.certs.chain.length, 1);
  assert.match(problemOf(readRfc9440({ 'client-cert': [`:${leaf.subarray(0, leaf.length - 20).toString('base64')}:`] })), /not one complete DER certificate .*truncated/);
  assert.match(problemOf(readRfc9440({ 'client-cert': [`:${leaf.toString('base64')}`] })), /not a structured-field byte sequence/);
  assert.match(problemOf(readRfc9440({ 'client-cert': [`${sf}, ${sf}`] })), /holds a list/);
  assert.match(problemOf(readRfc9440({ 'client-cert': [sf, sf] })), /sent 2 times/);
  assert.match(problemOf(readRfc9440({ 'client-cert': [`:${Buffer.concat([leaf, bobLeaf]).toString('base64')}:`] })), /not one complete DER certificate/);
  assert.match(problemOf(readRfc9440({ 'client-cert': [sf], 'client-cert-chain': [`:${bobLeaf.toString('base64')}:`] })), /more than one client certificate/);
  assert.match(problemOf(readRfc9440({ 'client-cert': [':!!!!:'] })), /not base64/);
  assert.match(problemOf(readRfc9440({ 'client-cert-chain': [`:${inter.toString('base64')}:`] })), /without client-cert/);

  // Traefik: the base64 bodies, comma-joined; 2.x URL-escaped them
  assert.equal(fp(leafOf(readTraefik({ 'x-forwarded-tls-client-cert': [`${leaf.toString('base64')},${inter.toString('base64')}`] }))), alice.fingerprint);
  assert.equal(fp(leafOf(readTraefik({ 'x-forwarded-tls-client-cert': [encodeURIComponent(leaf.toString('base64'))] }))), alice.fingerprint);
  assert.match(problemOf(readTraefik({ 'x-forwarded-tls-client-cert': [`${leaf.toString('base64')},${bobLeaf.toString('base64')}`] })), /more than one client certificate/);

  // ALB: both modes at once is not something an ALB sends
  assert.match(problemOf(readAlb({ 'x-amzn-mtls-clientcert-leaf': [escaped], 'x-amzn-mtls-clientcert': [escaped] })), /both/);

  // the authenticator: a certificate of this CA passes, the recorded one (another CA) does not,
  // an altered one fails on its signature, a revoked one on the next call
  const cas = [...readCertificates(fs.readFileSync(path.join(pki.pki, 'root.crt'))), inter];
  const auth = createAuthenticator({ caCertificates: cas });
  const ok = auth.authenticateCertificate(leaf);
  assert.ok(ok.ok && ok.identity.principal === 'spiffe://acme.test/user/alice', JSON.stringify(ok));
  const foreign = auth.authenticateCertificate(leafOf(readAlb({ 'x-amzn-mtls-clientcert-leaf': [fixture('alb-leaf.txt')] })));
  assert.equal(!foreign.ok && foreign.reason, 'unknown_ca');
  const altered = Buffer.from(leaf);
  altered[altered.length - 5] = (altered[altered.length - 5] as number) ^ 1; // inside the signature
  const bad = auth.authenticateCertificate(altered);
  assert.equal(!bad.ok && bad.reason, 'invalid_signature', JSON.stringify(bad));
  await cliOk(['revoke', alice.serial, '--dir', pki.pki, '--reason', 'keyCompromise']);
  auth.setRevocation(buildRevocation(['root', 'intermediate'].map((w) => fs.readFileSync(path.join(pki.pki, 'crl', `${w}.crl`))), cas));
  const revoked = auth.authenticateCertificate(leaf);
  assert.equal(!revoked.ok && revoked.reason, 'certificate_revoked');
  // only the intermediate configured, not the root: refused, as a handshake would be
  const noRoot = createAuthenticator({ caCertificates: [inter] }).authenticateCertificate(bobLeaf);
  assert.equal(!noRoot.ok && noRoot.reason, 'unknown_ca');
});
