/**
 * Issue 18: a refused client certificate's hint follows the server's refusal reason. Each
 * reason is produced by a real mTLS server on 127.0.0.1 and fetched through createMtlsFetch:
 * revoked says to ask the operator (renew cannot help), expired says how to renew, unknown CA
 * says which CA to use, and so on; none of them sends the user to a check-bundle that says "fine".
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import { CertificateRefusedError, createMtlsAgent, createMtlsFetch } from '../../src/client/agent.js';
import { createMtlsServer, tlsFromPki, type MtlsServer, type MtlsServerOptions } from '../../src/mtls/mtls-server.js';
import { readCertificates } from '../../src/x509/pem.js';
import { bundleOf, revoke } from '../support/mcp.js';
import { makePki, type TestPki } from '../support/pki.js';

let t: TestPki;
let srv: { cert: string; key: string };
const servers: MtlsServer[] = [];

before(async () => {
  t = await makePki();
  const s = await t.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  srv = { cert: s.files.cert, key: s.files.key! };
});
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function server(extra: Partial<MtlsServerOptions> = {}): Promise<string> {
  const s = createMtlsServer({ ...tlsFromPki(t.pki, srv.cert, srv.key), log: () => undefined, ...extra }, (_req, res) => void res.end('ok'));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return `https://localhost:${(s.address() as AddressInfo).port}/mcp`;
}

/** Fetches `url` through `agent` and returns the refusal (failing when there is none). */
async function refusal(url: string, agent: Parameters<typeof createMtlsFetch>[0]): Promise<CertificateRefusedError> {
  try {
    const res = await createMtlsFetch(agent)(url, { method: 'POST', body: '{}' });
    assert.fail(`expected a refusal, got ${res.status}`);
  } catch (e) {
    if (!(e instanceof CertificateRefusedError)) throw e;
    return e;
  } finally {
    await agent.close();
  }
}

const clientFiles = async (pki: TestPki, args: string[]) => {
  const r = await pki.issue(['issue', 'client', ...args]);
  return { cert: r.files.cert, key: r.files.key!, ca: path.join(t.pki, 'root.crt'), serial: r.serial, notAfter: r.notAfter };
};

test('revoked: ask the operator for a new certificate; renew cannot help (and no check-bundle that says fine)', async () => {
  const url = await server();
  const carol = await clientFiles(t, ['--user', 'carol']);
  servers.at(-1)!.reloadCrls(await revoke(t, carol.serial));
  const e = await refusal(url, createMtlsAgent(bundleOf(carol)));
  assert.equal(e.reason, 'certificate_revoked');
  assert.match(e.hint!, /ask them for a new one/);
  assert.match(e.hint!, /`mcp-mtls renew` cannot renew a revoked certificate/);
  assert.doesNotMatch(e.hint!, /check-bundle/);
});

test('expired: the hint leads to the renew command', async () => {
  const url = await server();
  const brief = await clientFiles(t, ['--user', 'brief', '--ttl', '2s']);
  const agent = createMtlsAgent(bundleOf(brief)); // made while valid: loading it later refuses it before any connection
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(brief.notAfter) - Date.now()) + 1500));
  const e = await refusal(url, agent);
  assert.equal(e.reason, 'certificate_expired');
  assert.match(e.hint!, /renew it where the CA is: `mcp-mtls check-bundle FILE` prints the `mcp-mtls renew` command/);
});

test('unknown CA: use a bundle from the CA the server trusts', async () => {
  const url = await server();
  const other = await makePki();
  const mallory = await clientFiles(other, ['--user', 'mallory']);
  const e = await refusal(url, createMtlsAgent(bundleOf(mallory)));
  assert.equal(e.reason, 'unknown_ca');
  assert.match(e.hint!, /does not trust the CA that issued the certificate: use a bundle from the CA this server trusts/);
});

test('no certificate: connect with the bundle', async () => {
  const url = await server();
  const e = await refusal(url, new Agent({ connect: { ca: fs.readFileSync(path.join(t.pki, 'root.crt')) } }));
  assert.equal(e.reason, 'certificate_required');
  assert.match(e.hint!, /connect with your bundle \(`mcp-mtls connect URL --bundle FILE`/);
});

test('a server certificate presented as a client certificate: issue a client certificate', async () => {
  const url = await server();
  const e = await refusal(url, createMtlsAgent(bundleOf({ ...srv, ca: path.join(t.pki, 'root.crt') })));
  assert.equal(e.reason, 'not_a_client_certificate');
  assert.match(e.hint!, /issue a client certificate \(`mcp-mtls issue client --user ID`\)/);
});

test('another trust domain: the identity is not one this server accepts', async () => {
  const url = await server({ trustDomains: ['other.test'] });
  const alice = await clientFiles(t, ['--user', 'alice']);
  const e = await refusal(url, createMtlsAgent(bundleOf(alice)));
  assert.equal(e.reason, 'invalid_identity');
  assert.match(e.hint!, /not one this server accepts .*ask the server's operator which CA and trust domain it accepts/);
});

test('an altered certificate: make the bundle again', async () => {
  const url = await server();
  const alice = await clientFiles(t, ['--user', 'alice2']);
  const [leaf, ...rest] = readCertificates(fs.readFileSync(alice.cert));
  const altered = Buffer.from(leaf!);
  altered[altered.length - 2]! ^= 0x01; // inside the signature's last integer: still DER, no longer the CA's signature
  const e = await refusal(url, createMtlsAgent({ ...bundleOf(alice), chain: [altered, ...rest] }));
  assert.equal(e.reason, 'invalid_signature');
  assert.match(e.hint!, /altered after it was issued: make the bundle again/);
});

test('not yet valid: check the clocks', async () => {
  const url = await server();
  const later = await clientFiles(t, ['--user', 'later', '--not-before', new Date(Date.now() + 3_600_000).toISOString()]);
  const e = await refusal(url, createMtlsAgent(bundleOf(later)));
  assert.equal(e.reason, 'certificate_not_yet_valid');
  assert.match(e.hint!, /validity has not started: check the clocks/);
});

test('revocation unknown (the CRL its certificate names cannot be fetched): retry, then tell the operator', async () => {
  const dead = await makePki(['--crl-url', 'http://127.0.0.1:9/crl/intermediate.crl']); // nothing listens on port 9
  const s = await dead.issue(['issue', 'server', '--dns', 'localhost']);
  const eve = await clientFiles(dead, ['--user', 'eve']);
  const root = fs.readFileSync(path.join(dead.pki, 'root.crt'));
  const url = await server({ cert: fs.readFileSync(s.files.cert), key: fs.readFileSync(s.files.key!), ca: [root, fs.readFileSync(path.join(dead.pki, 'intermediate.crt'))], crl: [], crlFiles: [], crlFromCertificates: true });
  const e = await refusal(url, createMtlsAgent({ ...bundleOf(eve), ca: [readCertificates(root)[0]!] }));
  assert.equal(e.reason, 'revocation_unknown');
  assert.match(e.hint!, /cannot tell yet whether the certificate is revoked .*retry in a moment; if it persists, tell the server's operator/);
});
