/**
 * `mcp-mtls inspect https://HOST:PORT` against this project's mTLS server (default and strict
 * mode) and a TLS 1.3-only server, checked against `openssl s_client -showcerts` as the oracle
 * ("Acceptable client certificate CA names", the certificates it prints).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { cli, openssl } from '../support/cli.js';
import { makePki, type TestPki } from '../support/pki.js';

interface Report {
  url: string;
  protocol: string;
  verified: { ok: boolean; reason?: string; against: string };
  chain: { subject: string; issuer: string; fingerprint: string; subjectAltNames: { dns: string[]; ips: string[] }; validity: string; keyType: string }[];
  clientCertificate: { requested: boolean | 'unknown'; required: boolean | 'unknown'; acceptedCas: string[] | 'unknown'; source: string };
}

async function mtlsServer(pki: TestPki, mode: 'default' | 'strict'): Promise<{ server: MtlsServer; port: number }> {
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  const server = createMtlsServer({ ...tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string), mode, log: () => undefined }, (_req, res) => {
    res.end('hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** What openssl s_client says: the names under "Acceptable client certificate CA names" and the certificates it shows. */
async function oracle(port: number, extra: string[] = []): Promise<{ names: string[]; fingerprints: string[]; text: string }> {
  const r = await openssl(['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-showcerts', ...extra], '');
  const text = r.stdout;
  const names: string[] = [];
  const at = text.indexOf('Acceptable client certificate CA names');
  if (at >= 0) {
    for (const line of text.slice(at).split('\n').slice(1)) {
      if (!line.trim() || /^(Requested|Client Certificate Types|Shared|Peer|Server Temp|---)/.test(line)) break;
      names.push(line.trim());
    }
  }
  const fingerprints = (text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((pem) => new crypto.X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase());
  return { names, fingerprints, text };
}

/** "CN = a, O = b" and "CN=a, O=b" the same: the set of attribute=value pairs. */
const norm = (name: string) => name.split(/,\s*/).map((p) => p.replace(/\s*=\s*/, '=').trim()).sort().join(',');

test('inspect https://: the mTLS server of this project: chain, verified against the CA folder, client certificate requested (not required in default mode), its CA names as openssl s_client shows them', async () => {
  const pki = await makePki();
  const { server, port } = await mtlsServer(pki, 'default');
  try {
    const r = await cli(['inspect', `https://localhost:${port}`, '--dir', pki.pki, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    const o = await oracle(port);
    assert.ok(o.names.length > 0, `openssl saw CA names:\n${o.text}`);
    assert.deepEqual(report.chain.map((c) => c.fingerprint), o.fingerprints, 'the chain openssl was shown');
    assert.equal(report.protocol, 'TLSv1.3');
    assert.deepEqual(report.verified, { ok: true, against: `the CA folder ${pki.pki}` });
    assert.deepEqual(report.chain[0]!.subjectAltNames.dns, ['localhost']);
    assert.equal(report.chain[0]!.validity, 'valid');
    assert.equal(report.clientCertificate.requested, true);
    assert.equal(report.clientCertificate.required, false, 'default mode completes the handshake and answers 401');
    assert.ok(Array.isArray(report.clientCertificate.acceptedCas));
    assert.deepEqual((report.clientCertificate.acceptedCas as string[]).map(norm), o.names.map(norm));
    assert.match(report.clientCertificate.source, /TLS 1\.2 CertificateRequest/);
    // the human form says the same
    const human = await cli(['inspect', `https://localhost:${port}`, '--dir', pki.pki]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^Client certificate: requested, not required by TLS/m);
    for (const n of report.clientCertificate.acceptedCas as string[]) assert.ok(human.stdout.includes(n), n);
    assert.match(human.stdout, /^Verified: {5}yes/m);
    // without the CA: not verified (the project's root is nobody's default), exit 65
    const other = await cli(['inspect', `https://localhost:${port}`, '--dir', path.join(pki.base, 'none')]);
    assert.equal(other.code, 65);
    assert.match(other.stdout, /^Verified: {5}no: /m);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('inspect https://: strict mode requires the certificate (the handshake fails without one), as openssl sees', async () => {
  const pki = await makePki();
  const { server, port } = await mtlsServer(pki, 'strict');
  try {
    const report = JSON.parse((await cli(['inspect', `https://localhost:${port}`, '--dir', pki.pki, '--json'])).stdout) as Report;
    const o = await oracle(port, ['-tls1_2']);
    assert.equal(report.clientCertificate.requested, true);
    assert.equal(report.clientCertificate.required, true);
    assert.deepEqual((report.clientCertificate.acceptedCas as string[]).map(norm), o.names.map(norm));
    assert.ok(report.chain.length >= 1);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('inspect https://: a TLS 1.3-only server: the CA names are "unknown", not guessed; a server that asks for nothing says so over TLS 1.2', async () => {
  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const key = fs.readFileSync(srv.files.key as string);
  const cert = fs.readFileSync(srv.files.cert);
  const ca = fs.readFileSync(path.join(pki.pki, 'root.crt'));
  const only13 = tls.createServer({ key, cert, ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, (s) => s.end());
  const plain = tls.createServer({ key, cert, maxVersion: 'TLSv1.2' }, (s) => s.end());
  for (const s of [only13, plain]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  try {
    const a = JSON.parse((await cli(['inspect', `https://localhost:${(only13.address() as AddressInfo).port}`, '--dir', pki.pki, '--json'])).stdout) as Report;
    assert.equal(a.clientCertificate.acceptedCas, 'unknown');
    assert.equal(a.clientCertificate.requested, 'unknown');
    assert.match(a.clientCertificate.source, /does not speak TLS 1\.2 \(ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION\), and in TLS 1\.3 the CertificateRequest is encrypted/);
    const o = await oracle((only13.address() as AddressInfo).port);
    assert.ok(o.names.length > 0, 'openssl (which decrypts TLS 1.3) does see names: ours is honest, not right by luck');
    const b = JSON.parse((await cli(['inspect', `https://localhost:${(plain.address() as AddressInfo).port}`, '--dir', pki.pki, '--json'])).stdout) as Report;
    assert.equal(b.protocol, 'TLSv1.2');
    assert.deepEqual(b.clientCertificate, { requested: false, required: false, acceptedCas: [], source: 'TLS 1.2 handshake: no CertificateRequest before ServerHelloDone' });
    const human = await cli(['inspect', `https://localhost:${(plain.address() as AddressInfo).port}`, '--dir', pki.pki]);
    assert.match(human.stdout, /^Client certificate: not requested$/m);
  } finally {
    only13.close();
    plain.close();
  }
  const down = await cli(['inspect', 'https://127.0.0.1:1']);
  assert.equal(down.code, 69);
  assert.match(down.stderr, /no TLS handshake with 127\.0\.0\.1:1: ECONNREFUSED/);
});
