/**
 * Every kind of bad client certificate against the server adapter: each gets its own 401
 * reason in default mode and is refused at connection time in strict mode, and the
 * server keeps serving good clients. Plus revocation reload closing live connections (a client's
 * own certificate, and its intermediate revoked on the root CRL), and trustDomainRoots binding
 * each trust domain to its own root when several are trusted.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { Authority } from '../../src/ca/authority.js';
import { intermediateSigner, rootSigner } from '../../src/ca/ca-keys.js';
import { buildCrl } from '../../src/ca/crl-signing.js';
import { clientFields } from '../../src/ca/profiles.js';
import { normalizeClaims } from '../../src/identity/encode.js';
import { randomSerial, signCertificate } from '../../src/x509/certificate.js';
import { oidDer, seq, setOf, utf8Der } from '../../src/x509/der.js';
import { extension } from '../../src/x509/extensions.js';
import { generateKey, keyIdentifier } from '../../src/x509/keys.js';
import { OID } from '../../src/x509/oids.js';
import { pemEncode, readCertificates } from '../../src/x509/pem.js';
import { createMtlsAgent, createMtlsFetch, CertificateRefusedError } from '../../src/client/agent.js';
import { createMtlsServer } from '../../src/mtls/mtls-server.js';
import { bundleOf, connect, revoke, startFixture, type McpFixture } from '../support/mcp.js';
import { makePki } from '../support/pki.js';

interface Material {
  chain: Buffer[];
  key: crypto.KeyObject;
}

let f: McpFixture;
let strict: McpFixture;
const cases: Record<string, Material | null> = {};

async function buildCases(fx: McpFixture) {
  const dir = fx.pki.pki;
  const ca = Authority.open(dir);
  const signer = await intermediateSigner(ca);
  // certificates from the real intermediate, outside their validity, or with a malformed identity extension
  const craft = (id: string, from: number, to: number, extra: Buffer[] = []): Material => {
    const key = generateKey('ec-p256');
    const fields = clientFields(ca.issuer, { serial: randomSerial(), notBefore: new Date(Date.now() + from), notAfter: new Date(Date.now() + to), spki: key.spki, keyType: 'ec-p256', claims: normalizeClaims({ trustDomain: 'acme.test', kind: 'user', id, teams: [], roles: [] }) });
    const der = signCertificate({ ...fields, extensions: [...fields.extensions, ...extra] }, signer);
    return { chain: [der, ca.intermediateDer], key: crypto.createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' }) };
  };
  const other = await makePki();
  const foreign = await other.issue(['issue', 'client', '--user', 'alice', '--team', 'sre', '--role', 'admin']);
  const dupTeams = seq(...[1, 2].map(() => seq(oidDer(OID.group), setOf([seq(seq(utf8Der('sre')))]))));
  // alice's certificate with one bit of its signature flipped
  const aliceChain = readCertificates(fs.readFileSync(fx.clients.alice.cert));
  const tampered = Buffer.from(aliceChain[0]!);
  tampered.writeUInt8(tampered.readUInt8(tampered.length - 3) ^ 0x01, tampered.length - 3);
  const keyOf = (file: string) => crypto.createPrivateKey(fs.readFileSync(file));
  Object.assign(cases, {
    certificate_required: null,
    certificate_expired: craft('old', -7_200_000, -3_600_000),
    certificate_not_yet_valid: craft('early', 3_600_000, 7_200_000),
    unknown_ca: { chain: readCertificates(fs.readFileSync(foreign.files.cert)), key: keyOf(foreign.files.key!) },
    not_a_client_certificate: { chain: readCertificates(fs.readFileSync(fx.serverFiles.cert)), key: keyOf(fx.serverFiles.key) },
    invalid_signature: { chain: [tampered, aliceChain[1]!], key: keyOf(fx.clients.alice.key) },
    invalid_identity: craft('mallory', -60_000, 3_600_000, [extension(OID.subjectDirectoryAttributes, false, dupTeams)]),
    'CA certificate as leaf': { chain: [ca.intermediateDer], key: keyOf(path.join(dir, 'private', 'intermediate.key')) },
  });
}

function agentFor(m: Material | null, fx: McpFixture): Agent {
  const ca = fs.readFileSync(path.join(fx.pki.pki, 'root.crt'));
  return new Agent({ connect: m ? { ca, cert: m.chain.map((d) => pemEncode('CERTIFICATE', d)).join(''), key: m.key.export({ format: 'pem', type: 'pkcs8' }) } : { ca } });
}

const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } };
async function post(fx: McpFixture, agent: Agent) {
  return fetch(fx.url, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(initialize) });
}

before(async () => {
  f = await startFixture();
  strict = await startFixture({ mode: 'strict' });
  await buildCases(f);
});
after(async () => {
  await f.close();
  await strict.close();
});

test('default mode: each bad certificate gets its own 401 reason, JSON body, no Bearer challenge', async () => {
  const expected: Record<string, string> = { 'CA certificate as leaf': 'not_a_client_certificate' };
  for (const [name, material] of Object.entries(cases)) {
    const agent = agentFor(material, f);
    try {
      const res = await post(f, agent);
      const body = (await res.json()) as { error: string; message: string };
      assert.equal(res.status, 401, name);
      assert.equal(body.error, expected[name] ?? name, `${name}: ${body.message}`);
      assert.ok(body.message.length > 20);
      assert.equal(res.headers.get('www-authenticate'), null);
    } finally {
      await agent.close();
    }
  }
  const refused = f.audit.events.filter((e) => e.event === 'auth.refused').map((e) => e.reason);
  assert.ok(refused.includes('invalid_identity') && refused.includes('unknown_ca'), 'refusals are audited');
  // and the server keeps serving good clients
  const alice = await connect(f.url, f.clients.alice);
  assert.ok((await alice.client.listTools()).tools.length > 0);
  await alice.close();
});

test('the client library turns a 401 into an error that says why', async () => {
  const m = cases.certificate_expired as Material;
  const agent = createMtlsAgent({ chain: m.chain, key: m.key, ca: readCertificates(fs.readFileSync(path.join(f.pki.pki, 'root.crt'))) });
  try {
    await assert.rejects(createMtlsFetch(agent)(f.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(initialize) }), (e) => e instanceof CertificateRefusedError && e.reason === 'certificate_expired' && /renew it/.test(e.message));
  } finally {
    await agent.close();
  }
});

test('strict mode: the same certificates are refused at connection time; good clients still work', async () => {
  for (const [name, material] of Object.entries(cases)) {
    const agent = agentFor(material, strict);
    try {
      await assert.rejects(post(strict, agent), (e) => e instanceof Error, name);
    } finally {
      await agent.close();
    }
  }
  const alice = await connect(strict.url, strict.clients.alice);
  assert.ok((await alice.client.listTools()).tools.length > 0);
  await alice.close();
});

test('revoking alice and reloading the CRLs closes her live keep-alive connection; bob\'s stays', async () => {
  const alice = await connect(f.url, f.clients.alice);
  const bob = await connect(f.url, f.clients.bob);
  try {
    await alice.client.listTools();
    await bob.client.listTools();
    const aliceFp = [...f.server.clientConnections().keys()];
    assert.ok(aliceFp.length >= 2, 'both have open connections');
    const crls = await revoke(f.pki, f.clients.alice.serial);
    const started = Date.now();
    const closed = f.server.reloadCrls(crls);
    assert.ok(closed >= 1, 'alice\'s connection was closed');
    assert.ok(Date.now() - started < 1000);
    // the request in flight on the closed connection fails; a new connection is refused with the reason
    await assert.rejects(alice.client.listTools());
    await assert.rejects(alice.client.listTools(), (e) => /certificate_revoked/.test(String((e as Error).message)));
    assert.ok((await bob.client.listTools()).tools.length > 0, 'bob carries on');
  } finally {
    await alice.close().catch(() => undefined);
    await bob.close();
  }
});

test('revoking the intermediate on the root CRL cuts off its clients: open connections and new ones', async () => {
  const f = await startFixture();
  try {
    const agent = createMtlsAgent(bundleOf(f.clients.alice));
    const post = (a: typeof agent) => createMtlsFetch(a)(f.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) });
    assert.equal((await post(agent)).status, 200);
    const ca = Authority.open(f.pki.pki);
    const rootCrl = buildCrl({ subjectName: ca.root.subjectName, keyId: keyIdentifier(ca.root.spki) }, await rootSigner(ca), {
      number: 99n,
      now: new Date(),
      nextUpdate: new Date(Date.now() + 86_400_000),
      entries: [{ serial: ca.intermediate.serial, revokedAt: new Date(), reason: 'cACompromise' }],
    });
    const closed = f.server.reloadCrls([fs.readFileSync(path.join(f.pki.pki, 'crl', 'intermediate.crl')), rootCrl]);
    assert.ok(closed >= 1, `closed ${closed} connections`);
    for (const a of [agent, createMtlsAgent(bundleOf(f.clients.bob))]) {
      const outcome = await post(a).then(
        (r) => r.status,
        (e: Error) => e.name,
      );
      assert.notEqual(outcome, 200, 'a client of the revoked intermediate is refused');
      await a.close();
    }
  } finally {
    await f.close();
  }
});

test('trustDomainRoots: with several roots trusted, one tenant\'s CA cannot issue another tenant\'s principals', async () => {
  const acme = await makePki();
  const globex = await makePki(['--trust-domain', 'globex.test']);
  const srv = await acme.issue(['issue', 'server', '--dns', 'localhost']);
  const legit = await globex.issue(['issue', 'client', '--user', 'gina']);
  // globex's own CA signs a certificate that claims to be acme's alice
  const gca = Authority.open(globex.pki);
  const key = generateKey('ec-p256');
  const fields = clientFields(gca.issuer, { serial: randomSerial(), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), spki: key.spki, keyType: 'ec-p256', claims: normalizeClaims({ trustDomain: 'acme.test', kind: 'user', id: 'alice', teams: ['sre'], roles: ['admin'] }) });
  const forged = { cert: [signCertificate(fields, await intermediateSigner(gca)), gca.intermediateDer].map((d) => pemEncode('CERTIFICATE', d)).join(''), key: crypto.createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) };
  const roots = { 'acme.test': fs.readFileSync(path.join(acme.pki, 'root.crt')), 'globex.test': fs.readFileSync(path.join(globex.pki, 'root.crt')) };
  const ask = async (trustDomainRoots: typeof roots | undefined, client: { cert: string | Buffer; key: string | Buffer }, withIntermediates = true) => {
    const server = createMtlsServer({ cert: fs.readFileSync(srv.files.cert), key: fs.readFileSync(srv.files.key!), ca: [...Object.values(roots), ...(withIntermediates ? [acme, globex].map((p) => fs.readFileSync(path.join(p.pki, 'intermediate.crt'))) : [])], trustDomains: ['acme.test', 'globex.test'], log: () => undefined, ...(trustDomainRoots ? { trustDomainRoots } : {}) }, (req, res) => {
      res.end(req.auth?.extra.identity.principal);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const agent = new Agent({ connect: { ca: roots['acme.test'], cert: client.cert, key: client.key } });
    try {
      const res = await fetch(`https://localhost:${(server.address() as AddressInfo).port}/`, { dispatcher: agent });
      return `${res.status} ${await res.text()}`;
    } finally {
      await agent.close();
      server.closeAllConnections();
      server.close();
    }
  };
  // without the binding the forged principal gets through: the reason the option exists
  assert.match(await ask(undefined, forged), /^200 spiffe:\/\/acme\.test\/user\/alice/);
  assert.match(await ask(roots, forged), /^401 .*not anchored/);
  const gina = { cert: fs.readFileSync(legit.files.cert), key: fs.readFileSync(legit.files.key!) };
  assert.match(await ask(roots, gina), /^200 spiffe:\/\/globex\.test\/user\/gina/);
  // the issuing intermediate must be known to bind it to a root: unknown fails closed, and says what to add
  assert.match(await ask(roots, gina, false), /^401 .*add its intermediate certificate/);
});
