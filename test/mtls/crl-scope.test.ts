/**
 * CRLs that are not their CA's complete CRL: a delta CRL (deltaCRLIndicator), a partitioned one
 * (issuingDistributionPoint narrowing its scope), one with an unknown critical extension. Each
 * CRL is taken as the whole of its CA's revocations and a newer one supersedes the older, so a
 * signed delta CRL served at the URL of the full one (by the CA, or by anyone in the path of an
 * http CRL URL replaying it from elsewhere) used to un-revoke everything only the full CRL
 * listed. Now they are refused (CRL_INVALID): the fetch fails and the last good CRL is kept.
 * The CRLs are signed by python `cryptography` (test/oracle/crl_variants.py) with the CA's key.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isMtlsError } from '../../src/errors.js';
import { createMtlsServer } from '../../src/mtls/mtls-server.js';
import { buildRevocation } from '../../src/mtls/revocation.js';
import { makePki, type IssuedFiles, type TestPki } from '../support/pki.js';
import { authOutcome } from '../support/auth-outcome.js';

const GEN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'oracle', 'crl_variants.py');
let pki: TestPki;
let srv: IssuedFiles;
let alice: IssuedFiles;
let dir: string;
const read = (f: string) => fs.readFileSync(f);
const variant = (name: string) => read(path.join(dir, `${name}.crl`));
const closing: (() => void)[] = [];
after(() => {
  for (const c of closing) c();
  if (pki) fs.rmSync(pki.base, { recursive: true, force: true });
});

before(async () => {
  pki = await makePki();
  srv = await pki.issue(['issue', 'server', '--dns', 'localhost']);
  alice = await pki.issue(['issue', 'client', '--user', 'alice']);
  dir = path.join(pki.base, 'variants');
  fs.mkdirSync(dir);
  execFileSync('python3', [GEN, pki.pki, alice.serial, dir]);
});

const attempt = (port: number): Promise<string> => authOutcome(port, { ca: read(path.join(pki.pki, 'root.crt')), cert: read(alice.files.cert), key: read(alice.files.key!) });

test('a delta or partitioned CRL served after the full one does not un-revoke: the fetch fails and the full CRL is kept', async () => {
  let body = variant('base');
  const crlServer = http.createServer((_req, res) => void res.end(body));
  await new Promise<void>((r) => crlServer.listen(0, '127.0.0.1', r));
  closing.push(() => crlServer.close());
  const url = `http://127.0.0.1:${(crlServer.address() as AddressInfo).port}/intermediate.crl`;
  const logs: string[] = [];
  const server = createMtlsServer({ cert: read(srv.files.cert), key: read(srv.files.key!), ca: read(path.join(pki.pki, 'root.crt')), crl: [read(path.join(pki.pki, 'crl', 'root.crl'))], crlUrls: [url], log: (m) => logs.push(m) }, (_req, res) => void res.end('hello'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closing.push(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  await server.refreshCrls();
  assert.equal(await attempt(port), 'certificate_revoked', 'the full CRL #1000 revokes alice');
  for (const name of ['delta', 'partition', 'critical']) {
    body = variant(name);
    await server.refreshCrls();
    assert.equal(await attempt(port), 'certificate_revoked', `after ${name} #1001`);
    assert.equal(server.crlSources()[0]?.status, 'error', name);
    assert.match(server.crlSources()[0]?.error ?? '', /cannot be used: (it is a delta CRL|its issuingDistributionPoint narrows its scope|it has a critical extension 1\.3\.6\.1\.4\.1\.55555\.1)/, name);
  }
  // an issuingDistributionPoint that only names the URL keeps the full scope: used
  body = variant('idp-plain');
  await server.refreshCrls();
  assert.equal(server.crlSources()[0]?.status, 'ok', logs.join('\n'));
  assert.equal(server.crlSources()[0]?.crls[0]?.number, '1001');
  assert.equal(await attempt(port), 'certificate_revoked');
});

test('a delta, partitioned or unknown-critical CRL given as a file is refused with CRL_INVALID', () => {
  const cas = [read(path.join(pki.pki, 'root.crt')), read(path.join(pki.pki, 'intermediate.crt'))];
  for (const name of ['delta', 'partition', 'critical']) {
    assert.throws(() => buildRevocation([variant(name)], cas), (e) => isMtlsError(e, 'CRL_INVALID'), name);
  }
  assert.equal(buildRevocation([variant('idp-plain')], cas).byCa.size, 1);
});
