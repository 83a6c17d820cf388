/**
 * The certificate matrix, one table, against every listener: the SDK 1.x and 2.x adapters
 * (createMtlsServer), an https server built with mtlsServerOptions + createMtlsMiddleware, and
 * the gateway. Every row is refused with its reason (or accepted), audited, and the server keeps
 * serving others; the four answer alike because they share one construction of authentication
 * and revocation (mtls/trust.ts).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { McpServer as McpServer2 } from '@modelcontextprotocol/server';
import { Authority } from '../../src/ca/authority.js';
import { intermediateSigner, rootSigner as rootKeySigner } from '../../src/ca/ca-keys.js';
import { buildCrl } from '../../src/ca/crl-signing.js';
import { clientFields, intermediateFields } from '../../src/ca/profiles.js';
import { loadBundle } from '../../src/bundle/load.js';
import { isMtlsError } from '../../src/errors.js';
import { createGatewayHandler } from '../../src/gateway/proxy.js';
import { normalizeClaims } from '../../src/identity/encode.js';
import { policyFromText } from '../../src/policy/compile.js';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMtlsMiddleware, mtlsServerOptions } from '../../src/mtls/middleware.js';
import { createMtlsServer, type MtlsRequest } from '../../src/mtls/mtls-server.js';
import { parseCertificate, randomSerial, signCertificate, type CertificateFields } from '../../src/x509/certificate.js';
import { distinguishedName, extKeyUsage, extension, keyUsage, subjectAltName, uriName } from '../../src/x509/extensions.js';
import { oidDer, seq, setOf, utf8Der } from '../../src/x509/der.js';
import { createSigner, generateKey, keyIdentifier, spkiOf, type GeneratedKey } from '../../src/x509/keys.js';
import { OID } from '../../src/x509/oids.js';
import { pemEncode, readCertificates } from '../../src/x509/pem.js';
import { cliOk } from '../support/cli.js';
import { makePki, type TestPki } from '../support/pki.js';

interface Material {
  chain: Buffer[];
  key: crypto.KeyObject;
}
const rows: [string, Material | null, string][] = []; // [case, client material, expected: 'ok' | reason]
/** #20 review: the rows of chains OpenSSL refuses (the forwarded path verifies chains itself) */
const chainRows: [string, Material, string][] = [];
let renewal: { lapsed: Material; renewed: Material };
let acme: TestPki;
let other: TestPki;
let stranger: TestPki;
const audit = memoryAudit();
const KINDS = ['sdk1', 'sdk2', 'middleware', 'gateway'] as const;
type Kind = (typeof KINDS)[number];
const servers: Record<Kind, { server: https.Server; url: string }> = {} as never;
const closers: (() => Promise<void>)[] = [];
let upstream: http.Server;
let forwarded: { server: https.Server; url: string };
let forwardedNoRootCrl: { server: https.Server; url: string };

const keyObject = (k: GeneratedKey) => crypto.createPrivateKey({ key: k.pkcs8, format: 'der', type: 'pkcs8' });
const fileKey = (f: string) => crypto.createPrivateKey(fs.readFileSync(f));

before(async () => {
  acme = await makePki();
  other = await makePki(['--trust-domain', 'other.test'].slice(0, 0));
  stranger = await makePki();
  // other: a second CA the servers trust, but for another trust domain
  fs.rmSync(other.pki, { recursive: true });
  await cliOk(['ca', 'init', '--dir', other.pki, '--trust-domain', 'other.test']);
  const ca = Authority.open(acme.pki);
  const signer = await intermediateSigner(ca);
  const rootSigner = await rootKeySigner(ca);
  // no teams: these certificates get no identity extension of their own, so a row can add a bad one
  const claims = (id: string) => normalizeClaims({ trustDomain: 'acme.test', kind: 'user', id, teams: [], roles: [] });
  const craft = (id: string, from: number, to: number, change: (f: CertificateFields) => CertificateFields = (f) => f, sign = signer, issuer = ca.issuer, chainTail = ca.intermediateDer): Material => {
    const key = generateKey('ec-p256');
    const fields = clientFields(issuer, { serial: randomSerial(), notBefore: new Date(Date.now() + from), notAfter: new Date(Date.now() + to), spki: key.spki, keyType: 'ec-p256', claims: claims(id) });
    return { chain: [signCertificate(change(fields), sign), chainTail], key: keyObject(key) };
  };
  const issued = async (t: TestPki, args: string[]) => {
    const r = await t.issue(args);
    return { chain: readCertificates(fs.readFileSync(r.files.cert)), key: fileKey(r.files.key!), serial: r.serial, files: r.files };
  };
  const valid = await issued(acme, ['issue', 'client', '--user', 'alice', '--team', 'sre']);
  const revoked = await issued(acme, ['issue', 'client', '--user', 'rex', '--team', 'sre']);
  await cliOk(['revoke', revoked.serial, '--dir', acme.pki, '--reason', 'keyCompromise']);
  const serverCert = await issued(acme, ['issue', 'server', '--dns', 'localhost']);

  // a second intermediate under the same root, then revoked by a root CRL
  const i2Key = generateKey('ec-p256');
  const i2Fields = intermediateFields({ subjectName: ca.root.subjectName, keyId: keyIdentifier(ca.root.spki), notAfter: ca.root.notAfter }, { serial: randomSerial(), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000), spki: i2Key.spki, name: 'Retired Intermediate' });
  const i2Der = signCertificate(i2Fields, rootSigner);
  const i2 = { subjectName: i2Fields.subjectName, keyId: keyIdentifier(i2Key.spki), notAfter: i2Fields.notAfter };
  const underRevokedIntermediate = craft('ivy', -60_000, 3_600_000, (f) => f, createSigner(keyObject(i2Key)), i2, i2Der);
  const rootCrl = buildCrl({ subjectName: ca.root.subjectName, keyId: keyIdentifier(ca.root.spki) }, rootSigner, { number: 5n, now: new Date(), nextUpdate: ca.intermediate.notAfter, entries: [{ serial: Buffer.from(i2Fields.serial).toString('hex'), revokedAt: new Date(), reason: 'cACompromise' as never }] });

  // a self-signed certificate copying alice's subject and SAN
  const selfKey = generateKey('ec-p256');
  const selfName = distinguishedName('alice');
  const selfSigned = signCertificate({ ...clientFields({ subjectName: selfName, keyId: keyIdentifier(selfKey.spki), notAfter: new Date(Date.now() + 86_400_000) }, { serial: randomSerial(), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), spki: selfKey.spki, keyType: 'ec-p256', claims: claims('alice') }), issuerName: selfName }, createSigner(keyObject(selfKey)));

  const tampered = Buffer.from(valid.chain[0]!);
  tampered.writeUInt8(tampered.readUInt8(tampered.length - 3) ^ 1, tampered.length - 3);
  const dup = seq(...[1, 2].map(() => seq(oidDer(OID.group), setOf([seq(seq(utf8Der('sre')))]))));
  const sda = (v: Buffer) => extension(OID.subjectDirectoryAttributes, false, v);
  const withExt = (...exts: Buffer[]) => (f: CertificateFields): CertificateFields => ({ ...f, extensions: [...f.extensions, ...exts] });
  const twoUris = (f: CertificateFields): CertificateFields => ({ ...f, extensions: f.extensions.map((e) => (Buffer.from(e).includes(Buffer.from('spiffe://acme.test/user/', 'latin1')) && Buffer.from(e).includes(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11])) ? subjectAltName([uriName('spiffe://acme.test/user/mallory'), uriName('spiffe://acme.test/user/alice')]) : e)) });
  const foreign = await issued(other, ['issue', 'client', '--user', 'alice', '--team', 'sre']);
  const wrongCa = await issued(stranger, ['issue', 'client', '--user', 'alice', '--team', 'sre']);

  rows.push(
    ['valid certificate', valid, 'ok'],
    ['no certificate', null, 'certificate_required'],
    ['expired', craft('old', -7_200_000, -3_600_000), 'certificate_expired'],
    ['not yet valid', craft('early', 3_600_000, 7_200_000), 'certificate_not_yet_valid'],
    ['revoked leaf', { chain: revoked.chain, key: revoked.key }, 'certificate_revoked'],
    ['revoked intermediate', underRevokedIntermediate, 'certificate_revoked'],
    ['wrong CA', { chain: wrongCa.chain, key: wrongCa.key }, 'unknown_ca'],
    ['self-signed with a real user\'s subject', { chain: [selfSigned], key: keyObject(selfKey) }, 'unknown_ca'],
    ['server certificate as client', { chain: serverCert.chain, key: serverCert.key }, 'not_a_client_certificate'],
    ['CA certificate as leaf', { chain: [ca.intermediateDer], key: fileKey(path.join(acme.pki, 'private', 'intermediate.key')) }, 'not_a_client_certificate'],
    ['tampered signature', { chain: [tampered, valid.chain[1]!], key: valid.key }, 'invalid_signature'],
    ['two URI SANs', craft('two', -60_000, 3_600_000, twoUris), 'invalid_identity'],
    ['foreign trust domain', { chain: foreign.chain, key: foreign.key }, 'invalid_identity'],
    ['malformed identity extension', craft('bad', -60_000, 3_600_000, withExt(sda(Buffer.from('3071301f06082b0601', 'hex')))), 'invalid_identity'],
    ['duplicated identity attribute', craft('dupattr', -60_000, 3_600_000, withExt(sda(dup))), 'invalid_identity'],
    ['identity extension twice', craft('dupext', -60_000, 3_600_000, withExt(sda(seq(seq(oidDer(OID.group), setOf([seq(seq(utf8Der('a')))])))), sda(seq(seq(oidDer(OID.group), setOf([seq(seq(utf8Der('b')))])))))), 'invalid_identity'],
    ['unknown critical extension', craft('crit', -60_000, 3_600_000, withExt(extension('1.3.6.1.4.1.99999.1', true, Buffer.from('0500', 'hex')))), 'not_a_client_certificate'],
  );

  // #20 review: chains that OpenSSL refuses in a handshake, crafted with the CA keys; a forwarded
  // certificate must be refused alike (the intermediates come along in Client-Cert-Chain, as in
  // the handshake). Each CA below is signed by a configured one, so only the CA's own constraint breaks.
  const rootParent: typeof ca.issuer = { subjectName: ca.root.subjectName, keyId: keyIdentifier(ca.root.spki), notAfter: ca.root.notAfter };
  const interParent = ca.issuer;
  const subCa = (name: string, parent: typeof rootParent, sign: typeof signer, change: (f: CertificateFields) => CertificateFields = (f) => f, from = -60_000, to = 86_400_000, permitted?: { trustDomain: string; dns: string[] }, key = generateKey('ec-p256')) => {
    const fields = change(intermediateFields(parent, { serial: randomSerial(), notBefore: new Date(Date.now() + from), notAfter: new Date(Date.now() + to), spki: key.spki, name, ...(permitted ? { permitted } : {}) }));
    return { der: signCertificate(fields, sign), signer: createSigner(keyObject(key)), issuer: { subjectName: fields.subjectName, keyId: keyIdentifier(key.spki), notAfter: fields.notAfter } };
  };
  const under = (id: string, c: ReturnType<typeof subCa>, tail: Buffer[], change?: (f: CertificateFields) => CertificateFields): Material => {
    const m = craft(id, -60_000, 3_600_000, change, c.signer, c.issuer, c.der);
    return { chain: [...m.chain, ...tail], key: m.key };
  };
  const replaceExt = (oid: string, ext: Buffer) => (f: CertificateFields): CertificateFields => ({ ...f, extensions: f.extensions.map((e) => (Buffer.from(e).includes(oidDer(oid)) ? ext : e)) });
  // the configured intermediate has pathLen 0: a CA it signs may not issue
  const belowPathLen = subCa('Rogue Sub CA', interParent, signer);
  // an intermediate whose name constraints (opt-in, ca init --name-constraints) permit another trust domain
  const constrained = subCa('Constrained Intermediate', rootParent, rootSigner, (f) => f, -60_000, 86_400_000, { trustDomain: 'elsewhere.test', dns: [] });
  const permitting = subCa('Permitting Intermediate', rootParent, rootSigner, (f) => f, -60_000, 86_400_000, { trustDomain: 'acme.test', dns: ['acme.test'] });
  const noCertSign = subCa('No keyCertSign Intermediate', rootParent, rootSigner, replaceExt(OID.keyUsage, keyUsage(['cRLSign'])));
  const criticalCa = subCa('Critical Extension Intermediate', rootParent, rootSigner, (f) => ({ ...f, extensions: [...f.extensions, extension('1.3.6.1.4.1.99999.2', true, Buffer.from('0500', 'hex'))] }));
  const serverOnlyCa = subCa('Server Only Intermediate', rootParent, rootSigner, (f) => ({ ...f, extensions: [...f.extensions, extKeyUsage([OID.serverAuth])] }));
  const expiredCa = subCa('Expired Intermediate', rootParent, rootSigner, (f) => f, -7_200_000, -3_600_000);
  const earlyCa = subCa('Early Intermediate', rootParent, rootSigner, (f) => f, 3_600_000, 7_200_000);
  const leafAsCaKey = generateKey('ec-p256');
  const leafAsCa = craft('leafca', -60_000, 3_600_000, (f) => f);
  const leafSigned = (() => {
    const parsedLeaf = parseCertificate(leafAsCa.chain[0]!);
    const fields = clientFields({ subjectName: parsedLeaf.subjectName, keyId: keyIdentifier(spkiOf(crypto.createPublicKey(leafAsCa.key))), notAfter: parsedLeaf.notAfter }, { serial: randomSerial(), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), spki: leafAsCaKey.spki, keyType: 'ec-p256', claims: claims('leafsigned') });
    return { chain: [signCertificate(fields, createSigner(leafAsCa.key)), ...leafAsCa.chain], key: keyObject(leafAsCaKey) };
  })();
  const sha1Signer = { ...signer, algorithmDer: seq(oidDer('1.2.840.10045.4.1')), sign: (data: Uint8Array) => crypto.sign('sha1', data, fileKey(path.join(acme.pki, 'private', 'intermediate.key'))) };
  chainRows.push(
    ['CA signed by the pathLen 0 intermediate', under('subby', belowPathLen, [ca.intermediateDer]), 'unknown_ca'],
    ['intermediate whose name constraints exclude the trust domain', under('fenced', constrained, []), 'unknown_ca'],
    // the same, permitting acme.test: accepted by the chain check (revoked here only because its issuing CA is not configured while an intermediate is revoked)
    ['intermediate whose name constraints permit the trust domain', under('fencedin', permitting, []), 'certificate_revoked'],
    ['intermediate without keyCertSign', under('nosign', noCertSign, []), 'unknown_ca'],
    ['intermediate with an unknown critical extension', under('critca', criticalCa, []), 'unknown_ca'],
    ['intermediate for serverAuth only (extKeyUsage)', under('srvca', serverOnlyCa, []), 'not_a_client_certificate'],
    ['expired intermediate', under('lateca', expiredCa, []), 'certificate_expired'],
    ['not yet valid intermediate', under('earlyca', earlyCa, []), 'certificate_not_yet_valid'],
    ['signed by a client certificate', leafSigned, 'unknown_ca'],
    // another key under the intermediate's name, naming its key identifier, or naming none
    ['same issuer name and key identifier, another key', craft('namesake', -60_000, 3_600_000, (f) => f, createSigner(keyObject(leafAsCaKey))), 'invalid_signature'],
    ['same issuer name, no key identifier, another key', craft('namesake2', -60_000, 3_600_000, (f) => ({ ...f, extensions: f.extensions.filter((e) => !Buffer.from(e).includes(oidDer(OID.authorityKeyIdentifier))) }), createSigner(keyObject(leafAsCaKey))), 'invalid_signature'],
  );
  rows.push(...chainRows);
  // forwarded only: a 512-bit RSA key, below OpenSSL's security level 1 (a handshake with it does not even complete, so no 401 to compare)
  const rsa512 = crypto.generateKeyPairSync('rsa', { modulusLength: 512 });
  chainRows.push(['512-bit RSA key', { chain: [signCertificate(clientFields(ca.issuer, { serial: randomSerial(), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), spki: rsa512.publicKey.export({ format: 'der', type: 'spki' }), keyType: 'rsa-2048', claims: claims('rsa512') }), signer), ca.intermediateDer], key: rsa512.privateKey }, 'unknown_ca']);
  // one intermediate key, its certificate expired and then renewed (same name, same key): a leaf it issued, sent first with the expired one
  const renewKey = generateKey('ec-p256');
  const lapsedCa = subCa('Renewed Intermediate', rootParent, rootSigner, (f) => f, -7_200_000, -3_600_000, undefined, renewKey);
  const renewedCa = subCa('Renewed Intermediate', rootParent, rootSigner, (f) => f, -60_000, 86_400_000, undefined, renewKey);
  const renewedLeaf = under('renewed', renewedCa, []);
  renewal = { lapsed: { chain: [renewedLeaf.chain[0]!, lapsedCa.der], key: renewedLeaf.key }, renewed: renewedLeaf };
  // forwarded only: a Node client cannot even load it (OpenSSL's security level refuses SHA-1 signatures: 'ca md too weak'), nor can the server verify it in a handshake
  chainRows.push(['SHA-1 signature', { chain: [signCertificate(clientFields(ca.issuer, { serial: randomSerial(), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), spki: leafAsCaKey.spki, keyType: 'ec-p256', claims: claims('sha1') }), sha1Signer), ca.intermediateDer], key: keyObject(leafAsCaKey) }, 'unknown_ca']);

  // every server: the same TLS material, CRLs (with the root CRL revoking the second intermediate), trust domain
  const material = {
    cert: Buffer.concat(serverCert.chain.map((d) => Buffer.from(pemEncode('CERTIFICATE', d)))),
    key: fs.readFileSync(serverCert.files.key!),
    ca: [fs.readFileSync(path.join(acme.pki, 'root.crt')), fs.readFileSync(path.join(other.pki, 'root.crt'))],
    crl: [fs.readFileSync(path.join(acme.pki, 'crl', 'intermediate.crl')), Buffer.from(pemEncode('X509 CRL', rootCrl))],
    trustDomains: ['acme.test'],
    audit,
    log: () => undefined,
  };
  const policy = policyFromText('version: 1\nrules:\n  - { id: all, subjects: { any: true }, tools: ["*"] }\n');
  const build = (s: McpServer) => void s.registerTool('ping_tool', { description: 'pong' }, async () => ({ content: [{ type: 'text', text: 'pong' }] }));
  upstream = http.createServer(async (req, res) => {
    const s = new McpServer({ name: 'up', version: '1' });
    build(s);
    const t = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void t.close());
    await s.connect(t);
    await t.handleRequest(req, res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const build2 = (s: McpServer2) => void s.registerTool('ping_tool', { description: 'pong' }, async () => ({ content: [{ type: 'text' as const, text: 'pong' }] }));
  const sdk2 = createMcpSdk2Handler({ serverInfo: { name: 'adapter2', version: '1' }, policy, build: build2 });
  const behindMiddleware = createMcpSdk1Handler({ serverInfo: { name: 'middleware', version: '1' }, policy, build, enableJsonResponse: true });
  closers.push(() => sdk2.close());
  const handlers = {
    sdk1: createMcpSdk1Handler({ serverInfo: { name: 'adapter', version: '1' }, policy, build, enableJsonResponse: true }),
    sdk2,
    gateway: createGatewayHandler({ routes: [{ prefix: '/mcp', upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`), policy: () => policy }], log: () => undefined }),
  };
  // built by hand: the same material to mtlsServerOptions (TLS) and to the middleware (CAs, CRLs)
  const mtls = createMtlsMiddleware({ tls: material, trustDomains: material.trustDomains, audit, log: () => undefined });
  closers.push(async () => mtls.close());
  const byHand = https.createServer(mtlsServerOptions(material), (req, res) => mtls(req, res, () => void behindMiddleware(req as MtlsRequest, res)));
  for (const kind of KINDS) {
    const server = kind === 'middleware' ? byHand : createMtlsServer(material, handlers[kind]);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers[kind] = { server, url: `https://localhost:${(server.address() as AddressInfo).port}/mcp` };
  }
  // #20: the same material behind a TLS-terminating proxy (stood in for by 127.0.0.2) forwarding RFC 9440 Client-Cert
  const viaProxy = createMtlsServer({ ...material, trustedProxies: [{ from: '127.0.0.2', format: 'rfc9440' }] }, createMcpSdk1Handler({ serverInfo: { name: 'forwarded', version: '1' }, policy, build, enableJsonResponse: true }));
  await new Promise<void>((r) => viaProxy.listen(0, '127.0.0.1', r));
  forwarded = { server: viaProxy, url: `https://127.0.0.1:${(viaProxy.address() as AddressInfo).port}/mcp` };
  // and without the root CRL: no intermediate is revoked, so a certificate whose issuing CA is not configured is not refused for that alone
  const viaProxy2 = createMtlsServer({ ...material, crl: [material.crl[0]!], trustedProxies: [{ from: '127.0.0.2', format: 'rfc9440' }] }, createMcpSdk1Handler({ serverInfo: { name: 'forwarded2', version: '1' }, policy, build, enableJsonResponse: true }));
  await new Promise<void>((r) => viaProxy2.listen(0, '127.0.0.1', r));
  forwardedNoRootCrl = { server: viaProxy2, url: `https://127.0.0.1:${(viaProxy2.address() as AddressInfo).port}/mcp` };
});

after(async () => {
  for (const c of closers) await c();
  for (const s of Object.values(servers)) {
    s.server.closeAllConnections();
    s.server.close();
  }
  upstream.closeAllConnections();
  upstream.close();
  forwarded.server.closeAllConnections();
  forwarded.server.close();
  forwardedNoRootCrl.server.closeAllConnections();
  forwardedNoRootCrl.server.close();
});

/** The row's leaf forwarded by a proxy at 127.0.0.2 as `Client-Cert` (the proxy has no client certificate of its own). */
async function attemptForwarded(m: Material | null, url = forwarded.url): Promise<string> {
  const u = new URL(url);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'ping_tool', arguments: {} } });
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', servername: 'localhost', localAddress: '127.0.0.2', agent: false, ca: fs.readFileSync(path.join(acme.pki, 'root.crt')),
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', host: 'localhost', ...(m ? { 'client-cert': `:${m.chain[0]!.toString('base64')}:`, ...(m.chain.length > 1 ? { 'client-cert-chain': m.chain.slice(1).map((c) => `:${c.toString('base64')}:`).join(', ') } : {}) } : {}) } },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(res.statusCode === 200 && text.includes('pong') ? 'ok' : res.statusCode === 401 ? (JSON.parse(text) as { error: string }).error : `HTTP ${res.statusCode}`));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('the same matrix through a trusted proxy (RFC 9440 Client-Cert): the same answer, row by row', async () => {
  // the intermediates the client sent come along in Client-Cert-Chain, as in the handshake
  // a client certificate in Client-Cert-Chain is refused before authentication (400: only CA certificates may follow the leaf)
  const differs: Record<string, string> = { 'signed by a client certificate': 'HTTP 400' };
  const failed: string[] = [];
  for (const [name, material, expected] of rows) {
    const got = await attemptForwarded(material);
    const want = differs[name] ?? expected;
    if (got !== want) failed.push(`${name} (forwarded): ${got}, expected ${want}`);
  }
  assert.deepEqual(failed, []);
  assert.equal(await attemptForwarded(rows[0]![1]), 'ok');
});

test('#20 review: a chain OpenSSL refuses in a handshake is refused forwarded too, with no revoked intermediate to refuse it for another reason', async () => {
  const failed: string[] = [];
  const noRevokedIntermediate: Record<string, string> = { 'signed by a client certificate': 'HTTP 400', 'intermediate whose name constraints permit the trust domain': 'ok' };
  for (const [name, material, expected] of chainRows) {
    const got = await attemptForwarded(material, forwardedNoRootCrl.url);
    if (got !== (noRevokedIntermediate[name] ?? expected)) failed.push(`${name} (forwarded, no revoked intermediate): ${got}, expected ${expected}`);
  }
  assert.deepEqual(failed, []);
  assert.equal(await attemptForwarded(rows[0]![1], forwardedNoRootCrl.url), 'ok');
});

test('#20 review: a forwarded certificate refused for the intermediate sent with it passes once the client sends the renewed intermediate (the cache is not keyed by the leaf alone)', async () => {
  assert.equal(await attemptForwarded(renewal.lapsed, forwardedNoRootCrl.url), 'certificate_expired');
  for (const url of Object.values(servers).map((s) => s.url)) assert.equal(await attempt(renewal.renewed, url), 'certificate_revoked', 'a handshake accepts the chain (revoked only for the root CRL of these servers: its CA is not configured)');
  assert.equal(await attemptForwarded(renewal.renewed, forwardedNoRootCrl.url), 'ok');
});

async function attempt(m: Material | null, url: string): Promise<string> {
  const ca = fs.readFileSync(path.join(acme.pki, 'root.crt'));
  const agent = new Agent({ connect: m ? { ca, cert: m.chain.map((d) => pemEncode('CERTIFICATE', d)).join(''), key: m.key.export({ format: 'pem', type: 'pkcs8' }) } : { ca } });
  try {
    const res = await fetch(url, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'ping_tool', arguments: {} } }),
    });
    const text = await res.text();
    if (res.status === 200 && text.includes('pong')) return 'ok';
    return res.status === 401 ? (JSON.parse(text) as { error: string }).error : `HTTP ${res.status}`;
  } finally {
    await agent.close();
  }
}

test('certificate matrix: the SDK 1.x and 2.x adapters, the middleware and the gateway give the same answer, row by row', async () => {
  const table: string[] = [];
  const failed: string[] = [];
  for (const [name, material, expected] of rows) {
    const got: string[] = [];
    for (const kind of KINDS) got.push(await attempt(material, servers[kind].url));
    table.push(`${name.padEnd(40)} ${got.map((g) => g.padEnd(26)).join(' ')}`);
    if (process.env.MATRIX_DEBUG) console.log(table[table.length - 1], audit.events.at(-1)?.message);
    KINDS.forEach((kind, i) => got[i] !== expected && failed.push(`${name} (${kind}): ${got[i]}, expected ${expected}`));
    // and every one keeps serving good clients
    for (const kind of KINDS) assert.equal(await attempt(rows[0]![1], servers[kind].url), 'ok', `${kind} still serves alice after ${name}`);
  }
  console.log(`# ${'case'.padEnd(38)} ${KINDS.map((k) => k.padEnd(26)).join(' ')}\n# ${table.join('\n# ')}`);
  assert.deepEqual(failed, []);
  const refused = audit.events.filter((e) => e.event === 'auth.refused').map((e) => e.reason);
  for (const [, , expected] of rows.filter((r) => r[2] !== 'ok')) assert.ok(refused.includes(expected), `${expected} is audited`);
});

test('wrong key in the bundle: refused by the client before any connection', async () => {
  const dir = path.join(acme.base, 'wrong-key');
  const alice = rows[0]![1] as Material;
  const bob = await acme.issue(['issue', 'client', '--user', 'bob2', '--out', dir]);
  fs.mkdirSync(path.join(dir, 'bundle'));
  fs.writeFileSync(path.join(dir, 'bundle', 'cert.pem'), alice.chain.map((d) => pemEncode('CERTIFICATE', d)).join(''));
  fs.copyFileSync(bob.files.key!, path.join(dir, 'bundle', 'key.pem'));
  fs.copyFileSync(path.join(acme.pki, 'root.crt'), path.join(dir, 'bundle', 'ca.pem'));
  await assert.rejects(loadBundle(path.join(dir, 'bundle')), (e) => isMtlsError(e, 'BUNDLE_INVALID') && /does not match/.test((e as Error).message));
});
