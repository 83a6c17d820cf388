/**
 * Profile v1.1 (delegation, docs/identity.md) and v1.2 (a delegation limited to tool globs): the committed golden vectors in
 * test/fixtures/delegation/ (make-delegation-vectors.ts) read by four parsers that share no
 * code: ours (decodeIdentity), OpenSSL (its asn1parse tree, interpreted here), Go (crypto/x509 +
 * encoding/asn1, test/go/identity-reader) and the Python oracle. Also: what a reader without
 * delegation support makes of a delegated certificate (the actor alone, none of the delegated
 * teams or roles).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkClientCertificate, decodeIdentity } from '../../src/identity/decode.js';
import { parseCertificate } from '../../src/x509/certificate.js';
import { children, contentOf, decodeOid, readWhole, TAG } from '../../src/x509/der.js';
import { encodeIdentityAttributes } from '../../src/x509/identity-extension.js';
import { OID } from '../../src/x509/oids.js';
import { isMtlsError, type ErrorCode } from '../../src/errors.js';
import { openssl, ROOT, run, tmpDir } from '../support/cli.js';

const DIR = path.join(ROOT, 'test', 'fixtures', 'delegation');
const GOLDEN_HEX =
  '3081c3303f06082b06010505070a023133303186127370696666653a2f2f61636d652e74657374861b7370696666653a2f2f61636d652e746573742f757365722f626f62' +
  '303406082b06010505070a0431283026a01d861b7370696666653a2f2f61636d652e746573742f757365722f626f6230050c03737265304a060355044831433041a01d86' +
  '1b7370696666653a2f2f61636d652e746573742f757365722f626f62a120861e7370696666653a2f2f61636d652e746573742f726f6c652f6f6e63616c6c';
/** profile v1.2: bob via chat-platform, team sre, tools read_* and {list,get}_issue */
const TOOLS_GOLDEN_HEX =
  '3081d430819b06082b06010505070a0231818e303d861e7370696666653a2f2f61636d652e746573742f746f6f6c2f726561645f2a861b7370696666653a2f2f61636d65' +
  '2e746573742f757365722f626f62304d862e7370696666653a2f2f61636d652e746573742f746f6f6c2f2537426c6973742532436765742537445f6973737565861b73' +
  '70696666653a2f2f61636d652e746573742f757365722f626f62303406082b06010505070a0431283026a01d861b7370696666653a2f2f61636d652e746573742f7573' +
  '65722f626f6230050c03737265';
const PLATFORM = 'spiffe://acme.test/service/chat-platform';
const BOB = 'spiffe://acme.test/user/bob';

type Reading = { principal: string; teams: string[]; roles: string[]; actingFor?: { principal: string; teams: string[]; roles: string[]; tools?: string[] } };
const GOOD: Record<string, Reading> = {
  'delegated-bob-via-platform': { principal: PLATFORM, teams: [], roles: [], actingFor: { principal: BOB, teams: ['sre'], roles: ['oncall'] } },
  'delegated-no-claims': { principal: PLATFORM, teams: [], roles: [], actingFor: { principal: BOB, teams: [], roles: [] } },
  'delegated-tools': { principal: PLATFORM, teams: [], roles: [], actingFor: { principal: BOB, teams: ['sre'], roles: [], tools: ['read_*', '{list,get}_issue'] } },
  'delegated-one-tool': { principal: PLATFORM, teams: [], roles: [], actingFor: { principal: BOB, teams: [], roles: [], tools: ['read_repo'] } },
};
const BAD: Record<string, ErrorCode> = {
  'bad-unqualified-team': 'IDENTITY_BAD_VALUE_TYPE',
  'bad-authority-without-delegation': 'IDENTITY_BAD_VALUE_TYPE',
  'bad-authority-mismatch': 'IDENTITY_BAD_VALUE_TYPE',
  'bad-auth-info': 'IDENTITY_BAD_VALUE_TYPE',
  'bad-foreign-service': 'IDENTITY_FOREIGN_TRUST_DOMAIN',
  'bad-foreign-delegator': 'IDENTITY_FOREIGN_TRUST_DOMAIN',
  'bad-self-delegation': 'IDENTITY_BAD_PRINCIPAL',
  'bad-two-delegators': 'IDENTITY_DUPLICATE_ATTRIBUTE',
  'bad-tools-and-unscoped': 'IDENTITY_BAD_VALUE_TYPE',
  'bad-tools-two-delegators': 'IDENTITY_BAD_VALUE_TYPE',
  'bad-tool-encoding': 'IDENTITY_BAD_VALUE_TYPE',
  'bad-tool-glob': 'IDENTITY_BAD_NAME',
  'bad-tool-foreign-service': 'IDENTITY_FOREIGN_TRUST_DOMAIN',
};
/** What a profile v1.1 reader (before v1.2) answered for the v1.2 vectors: it refuses them, never reads them without their limit (our decoder at 3196d54, the Go reader and the Python oracle of then, run by hand). */
const V11_READING: Record<string, ErrorCode> = { 'delegated-tools': 'IDENTITY_BAD_VALUE_TYPE', 'delegated-one-tool': 'IDENTITY_FOREIGN_TRUST_DOMAIN' };
const ALL = [...Object.keys(GOOD), ...Object.keys(BAD)];
const file = (name: string) => path.join(DIR, `${name}.der`);
const read = (name: string) => fs.readFileSync(file(name));

function ours(name: string): Reading {
  const id = decodeIdentity(read(name), { trustDomains: ['acme.test'] });
  return { principal: id.principal, teams: [...id.teams], roles: [...id.roles], ...(id.actingFor ? { actingFor: { principal: id.actingFor.principal, teams: [...id.actingFor.teams], roles: [...id.actingFor.roles], ...(id.actingFor.tools ? { tools: [...id.actingFor.tools] } : {}) } } : {}) };
}

test('the encoder writes the golden v1.1 extension value, and the vector carries it (non-critical)', () => {
  const value = encodeIdentityAttributes({ teams: ['sre'], roleUris: ['spiffe://acme.test/role/oncall'], accessIdentity: { service: 'spiffe://acme.test', ident: BOB } });
  assert.equal(value?.toString('hex'), GOLDEN_HEX);
  const ext = parseCertificate(read('delegated-bob-via-platform')).extensions.get(OID.subjectDirectoryAttributes);
  assert.equal(ext?.value.toString('hex'), GOLDEN_HEX);
  assert.equal(ext?.critical, false);
});

test('profile v1.2: the encoder writes the golden tools extension value, one SvceAuthInfo per glob, and the vector carries it', () => {
  const value = encodeIdentityAttributes({ teams: ['sre'], roleUris: [], accessIdentity: { service: 'spiffe://acme.test', ident: BOB, tools: ['{list,get}_issue', 'read_*'] } });
  assert.equal(value?.toString('hex'), TOOLS_GOLDEN_HEX);
  assert.equal(parseCertificate(read('delegated-tools')).extensions.get(OID.subjectDirectoryAttributes)?.value.toString('hex'), TOOLS_GOLDEN_HEX);
  // the glob in its one spelling: , { } percent-encoded in uppercase
  assert.ok(Buffer.from(TOOLS_GOLDEN_HEX, 'hex').includes(Buffer.from('spiffe://acme.test/tool/%7Blist%2Cget%7D_issue')));
  assert.throws(() => encodeIdentityAttributes({ teams: [], roleUris: [], accessIdentity: { service: 'spiffe://acme.test', ident: BOB, tools: [] } }), /at least one tool glob/);
});

test('every v1.2 vector breaks the v1.1 reader rule "accessIdentity: exactly one SvceAuthInfo, service spiffe://<td>", which v1.1 readers refuse on', () => {
  // the v1.1 readers (our decoder at 3196d54, its Go reader and Python oracle) answered V11_READING for these, run by hand
  for (const [name, code] of Object.entries(V11_READING)) {
    assert.ok(name in GOOD, name);
    const ext = parseCertificate(read(name)).extensions.get(OID.subjectDirectoryAttributes)!.value;
    const attrs = children(ext, readWhole(ext, TAG.SEQUENCE)).map((t) => children(ext, t));
    const access = attrs.find(([type]) => decodeOid(contentOf(ext, type!)) === OID.accessIdentity)!;
    const values = children(ext, access[1]!);
    const services = values.map((v) => contentOf(ext, children(ext, v)[0]!).toString('latin1'));
    assert.equal(values.length > 1 ? 'IDENTITY_BAD_VALUE_TYPE' : services[0] !== 'spiffe://acme.test' ? 'IDENTITY_FOREIGN_TRUST_DOMAIN' : 'read', code, name);
  }
});

for (const [name, expected] of Object.entries(GOOD)) {
  test(`decodeIdentity reads ${name}: the actor, acting for bob with the delegated teams and roles only`, () => {
    checkClientCertificate(parseCertificate(read(name)));
    assert.deepEqual(ours(name), expected);
    const id = decodeIdentity(read(name));
    assert.deepEqual(id.actors, [PLATFORM]);
    assert.ok(Object.isFrozen(id.actingFor) && Object.isFrozen(id.actingFor?.teams) && Object.isFrozen(id.actors));
  });
  test(`a reader without delegation support sees the actor alone in ${name} (no actingFor, no teams, no roles)`, () => {
    const id = decodeIdentity(read(name), { trustDomains: ['acme.test'], delegation: false });
    assert.deepEqual({ principal: id.principal, teams: [...id.teams], roles: [...id.roles], actingFor: id.actingFor, actors: id.actors }, { principal: PLATFORM, teams: [], roles: [], actingFor: undefined, actors: undefined });
  });
}

for (const [name, code] of Object.entries(BAD)) {
  test(`decodeIdentity rejects ${name} with ${code}, with or without delegation support`, () => {
    for (const delegation of [true, false]) assert.throws(() => decodeIdentity(read(name), { trustDomains: ['acme.test'], delegation }), (e) => isMtlsError(e, code));
  });
}

/** The SDA extension read through OpenSSL only: its asn1parse tree and the bytes it dumps. */
async function opensslReading(name: string): Promise<Reading> {
  const outer = await openssl(['asn1parse', '-inform', 'DER', '-in', file(name)]);
  assert.equal(outer.code, 0, outer.stderr);
  const lines = outer.stdout.split('\n');
  const at = lines.findIndex((l) => l.includes(':X509v3 Subject Directory Attributes'));
  const m = /^\s*(\d+):.*\[HEX DUMP\]:([0-9A-F]+)/.exec(lines[at + 1] ?? '');
  assert.ok(m, `no SDA value in OpenSSL's output for ${name}`);
  const value = Buffer.from(m[2] as string, 'hex');
  const inner = await openssl(['asn1parse', '-inform', 'DER', '-in', file(name), '-strparse', m[1] as string]);
  assert.equal(inner.code, 0, inner.stderr);
  const nodes = inner.stdout
    .trim()
    .split('\n')
    .map((l) => {
      const n = /^\s*(\d+):d=(\d+)\s+hl=\s*(\d+) l=\s*(\d+) (prim|cons): (.*?)\s*(?::(.*))?$/.exec(l);
      assert.ok(n, `unexpected asn1parse line: ${l}`);
      const [off, depth, hl, len] = [1, 2, 3, 4].map((i) => Number(n[i]));
      return { depth: depth as number, type: (n[6] as string).trim(), text: n[7], bytes: value.subarray((off as number) + (hl as number), (off as number) + (hl as number) + (len as number)) };
    });
  const r: Reading = { principal: '', teams: [], roles: [] };
  const delegated: { principal: string; teams: string[]; roles: string[]; tools?: string[] } = { principal: '', teams: [], roles: [] };
  let attr = '';
  let uris: string[] = [];
  const flush = () => {
    if (attr === 'id-aca-accessIdentity') {
      // pairs of service, ident; v1.2: a service spiffe://acme.test/tool/<glob> per tool glob
      delegated.principal = uris[1] as string;
      for (let i = 0; i < uris.length; i += 2) {
        const m = /^spiffe:\/\/acme\.test\/tool\/(.+)$/.exec(uris[i] as string);
        if (m) (delegated.tools ??= []).push(decodeURIComponent(m[1] as string));
      }
      delegated.tools?.sort();
    }
    if (attr === 'role') delegated.roles.push(...uris.filter((u) => u.includes('/role/')).map((u) => u.split('/role/')[1] as string));
    uris = [];
  };
  for (const n of nodes) {
    if (n.depth === 2 && n.type === 'OBJECT') {
      flush();
      attr = n.text as string;
    } else if (n.type === 'cont [ 6 ]') uris.push(n.bytes.toString('latin1'));
    else if (n.type === 'UTF8STRING' && attr === 'id-aca-group') delegated.teams.push(n.text as string);
  }
  flush();
  const cert = await openssl(['x509', '-inform', 'DER', '-in', file(name), '-noout', '-ext', 'subjectAltName']);
  r.principal = /URI:(\S+)/.exec(cert.stdout)?.[1] ?? '';
  if (delegated.principal) r.actingFor = { ...delegated, teams: delegated.teams.sort(), roles: delegated.roles.sort() };
  return r;
}

test('OpenSSL parses and verifies every v1.1 vector, and reads the good ones as we do', async () => {
  for (const name of ALL) {
    const text = await openssl(['x509', '-inform', 'DER', '-in', file(name), '-noout', '-text']);
    assert.equal(text.code, 0, `${name}: ${text.stderr}`);
    const tmp = path.join(tmpDir(), 'leaf.pem');
    fs.writeFileSync(tmp, (await openssl(['x509', '-inform', 'DER', '-in', file(name)])).stdout);
    const verify = await openssl(['verify', '-CAfile', path.join(DIR, 'ca.crt'), '-purpose', 'sslclient', tmp]);
    fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
    assert.equal(verify.code, 0, `${name}: ${verify.stderr}${verify.stdout}`);
  }
  for (const name of Object.keys(GOOD)) assert.deepEqual(await opensslReading(name), ours(name), name);
});

test('Go (crypto/x509 + encoding/asn1) reads every vector as we do', { timeout: 180_000 }, async () => {
  const cache = path.join(tmpDir(), 'go');
  const env = { GOCACHE: path.join(cache, 'cache'), GOPATH: path.join(cache, 'path'), GO111MODULE: 'off', GOTOOLCHAIN: 'local' };
  const r = await run('go', ['run', path.join(ROOT, 'test', 'go', 'identity-reader', 'main.go'), ...ALL.map(file), path.join(ROOT, 'test', 'fixtures', 'vectors', 'good-teams-roles.der')], { env });
  fs.rmSync(cache, { recursive: true, force: true });
  assert.equal(r.code, 0, `go failed (is golang-go installed? .ci/run installs it): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, ALL.length + 1, r.stderr);
  ALL.forEach((name, i) => {
    const line = lines[i];
    if (name in GOOD) {
      assert.equal(line.ok, true, `${name}: ${JSON.stringify(line)}`);
      const o = decodeIdentity(read(name));
      assert.deepEqual({ principal: line.principal, teams: line.teams, roles: line.roles, actingFor: line.actingFor, serial: line.serial, fingerprint: line.fingerprint }, { ...ours(name), serial: o.serial, fingerprint: o.fingerprint });
    } else {
      assert.equal(line.ok, false, name);
      assert.equal(line.code, BAD[name], `${name}: ${line.message}`);
    }
  });
  const v1 = lines[ALL.length];
  assert.deepEqual({ teams: v1.teams, roles: v1.roles, actingFor: v1.actingFor }, { teams: ['platform', 'sre'], roles: ['admin', 'oncall'], actingFor: undefined });
});

test('the independent Python oracle reads every v1.1 vector as we do', async () => {
  const r = await run('python3', [path.join(ROOT, 'test', 'oracle', 'identity_oracle.py'), ...ALL.map(file), '--trust-domain', 'acme.test']);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, ALL.length, r.stderr);
  ALL.forEach((name, i) => {
    const line = lines[i];
    if (name in GOOD) {
      assert.equal(line.ok, true, `${name}: ${JSON.stringify(line)}`);
      assert.deepEqual({ principal: line.principal, teams: line.teams, roles: line.roles, ...(line.actingFor ? { actingFor: line.actingFor } : {}) }, ours(name));
    } else {
      assert.equal(line.ok, false, name);
      assert.equal(line.code, BAD[name], `${name}: ${line.message}`);
    }
  });
});
