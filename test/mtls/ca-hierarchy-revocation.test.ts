/**
 * Revocation in a deeper CA hierarchy (root -> policy CA I1 -> issuing CA I2 -> client), as an
 * enterprise PKI trusted by the server may have (made by test/oracle/ca_hierarchy.py with python
 * `cryptography`). Every CA certificate above the client's is checked under the key that signed
 * it: the root revoking I1 cuts off I2's clients, I1 revoking I2 does too, and I1's own CRL
 * being loaded does not make its sub-CA's clients unknown. Before, only one level was walked:
 * the root's revocation of I1 was ignored (200), and with I1's CRL loaded every client was
 * refused `revocation_unknown`. Against createMtlsServer and the middleware (one construction).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createMtlsMiddleware, mtlsServerOptions } from '../../src/mtls/middleware.js';
import { createMtlsServer, type MtlsServerOptions } from '../../src/mtls/mtls-server.js';
import { makePki, type IssuedFiles, type TestPki } from '../support/pki.js';
import { authOutcome } from '../support/auth-outcome.js';

const GEN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'oracle', 'ca_hierarchy.py');
let pki: TestPki;
let srv: IssuedFiles;
let dir: string;
const h = (f: string) => fs.readFileSync(path.join(dir, f));
const listening: { close(): void; closeAllConnections?(): void }[] = [];
after(() => {
  for (const s of listening) {
    s.closeAllConnections?.();
    s.close();
  }
  if (pki) fs.rmSync(pki.base, { recursive: true, force: true });
});

before(async () => {
  pki = await makePki();
  srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  const alice = await pki.issue(['issue', 'client', '--user', 'alice', '--team', 'eng']);
  dir = path.join(pki.base, 'hierarchy');
  fs.mkdirSync(dir);
  execFileSync('python3', [GEN, alice.files.cert, dir]);
});

const listen = async (s: http.Server): Promise<number> => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  listening.push(s);
  return (s.address() as AddressInfo).port;
};

async function startBoth(options: MtlsServerOptions): Promise<Record<'server' | 'middleware', number>> {
  const server = createMtlsServer(options, (_req, res) => void res.end('hello'));
  const { cert, key, ca, crl, ...rest } = options;
  const mtls = createMtlsMiddleware({ tls: { cert, key, ca, ...(crl ? { crl } : {}) }, ...rest });
  listening.push({ close: () => mtls.close() });
  const byHand = https.createServer(mtlsServerOptions(options), (req, res) => mtls(req, res, () => void res.end('hello')));
  return { server: await listen(server), middleware: await listen(byHand) };
}

const attempt = (port: number): Promise<string> => authOutcome(port, { ca: fs.readFileSync(path.join(pki.pki, 'root.crt')), cert: h('leaf.crt'), key: h('leaf.key') });

test('a three-level hierarchy: each CA certificate above the client is checked under the key that signed it', async () => {
  const cases: [string, string[], string, Partial<MtlsServerOptions>?][] = [
    ['nothing revoked, every CRL loaded', ['root.crl', 'i1.crl', 'i2.crl'], 'ok'],
    ['the root revokes I1, no CRL of I1 loaded', ['root-revokes-i1.crl', 'i2.crl'], 'certificate_revoked'],
    ['the root revokes I1, every CRL loaded', ['root-revokes-i1.crl', 'i1.crl', 'i2.crl'], 'certificate_revoked'],
    ['I1 revokes I2', ['root.crl', 'i1-revokes-i2.crl', 'i2.crl'], 'certificate_revoked'],
    ['the trust domain bound to the top root', ['root.crl', 'i1.crl', 'i2.crl'], 'ok', { trustDomainRoots: { 'acme.test': h('root.crt') } }],
  ];
  for (const [label, crls, want, extra] of cases) {
    const ports = await startBoth({
      cert: fs.readFileSync(srv.files.cert),
      key: fs.readFileSync(srv.files.key!),
      ca: [h('root.crt'), h('i1.crt'), h('i2.crt')],
      crl: crls.map(h),
      log: () => undefined,
      ...extra,
    });
    for (const [kind, port] of Object.entries(ports)) assert.equal(await attempt(port), want, `${label} (${kind})`);
  }
});
