/**
 * Issue 18, `bundle` and `check-bundle`: a revoked certificate, a server certificate and a key
 * readable by everyone are warned about (stderr, `warnings` in --json) with what to do; a
 * revoked bundle is refused by check-bundle when it can tell (--ca-dir, --crl); a text file is
 * "not a bundle", not `missing field "(root)"`; `bundle --ca FILE` takes the root from a file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cli, cliOk, tmpDir } from '../support/cli.js';
import { makePki } from '../support/pki.js';

type BundleJson = { files: string[]; warnings: string[] };
type CheckJson = { warnings: string[]; revocation: { checked: boolean; revoked?: boolean; source?: string } };

const posix = process.platform !== 'win32';

test('check-bundle on a text file: "not a bundle", naming the file and what a bundle is', async () => {
  const base = tmpDir();
  for (const [name, text] of [['notes.txt', 'just some notes\nabout nothing\n'], ['empty.yaml', ''], ['list.yaml', '- a\n- b\n']] as const) {
    const file = path.join(base, name);
    fs.writeFileSync(file, text);
    const r = await cli(['check-bundle', file]);
    assert.equal(r.code, 65, r.stderr);
    assert.match(r.stderr, new RegExp(`error: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a bundle`));
    assert.match(r.stderr, /bundle profile \(YAML with kind: mcp-mtls\/bundle\), a PKCS#12 file \(\.p12, \.pfx\) or a PEM folder/);
    assert.match(r.stderr, /hint: .*mcp-mtls bundle/);
    assert.doesNotMatch(r.stderr, /\(root\)/);
    const j = await cli(['check-bundle', file, '--json']);
    assert.equal(JSON.parse(j.stderr).error.code, 'BUNDLE_INVALID');
  }
  // a certificate file is a bundle's ingredient: the hint says how to make one from it
  const t = await makePki();
  const alice = await t.issue(['issue', 'client', '--user', 'alice']);
  const r = await cli(['check-bundle', alice.files.cert]);
  assert.equal(r.code, 65, r.stderr);
  assert.match(r.stderr, /is not a bundle: it holds PEM \(CERTIFICATE\)/);
  assert.match(r.stderr, /hint: make a bundle from it: `mcp-mtls bundle .*alice\.crt --format profile --out FILE`/);
});

test('bundle and check-bundle warn about a server certificate (with what to do); a client certificate gets no warning', async () => {
  const t = await makePki();
  const srv = await t.issue(['issue', 'server', '--dns', 'mcp.acme.test']);
  const out = path.join(t.base, 'srv.yaml');
  const r = await cli(['bundle', srv.files.cert, '--dir', t.pki, '--format', 'profile', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: .*mcp\.acme\.test\.crt is a server certificate \(extKeyUsage serverAuth, no clientAuth\): mcp-mtls servers refuse it from a client/);
  assert.match(r.stderr, /issue a client certificate \(`mcp-mtls issue client --user ID`\) and bundle that/);
  const checked = await cli(['check-bundle', out, '--json']);
  assert.equal(checked.code, 0, checked.stderr);
  assert.ok((JSON.parse(checked.stdout) as CheckJson).warnings.some((w) => /is a server certificate/.test(w)));
  const human = await cli(['check-bundle', out]);
  assert.match(human.stderr, /warning: .*is a server certificate/);
  const json = await cliOk<BundleJson>(['bundle', srv.files.cert, '--dir', t.pki, '--format', 'pem', '--out', path.join(t.base, 'srv-pem'), '--json']);
  assert.ok(json.warnings.some((w) => /is a server certificate/.test(w)), JSON.stringify(json));

  const alice = await t.issue(['issue', 'client', '--user', 'alice']);
  const ok = await cliOk<BundleJson>(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'profile', '--out', path.join(t.base, 'alice.yaml'), '--json']);
  assert.deepEqual(ok.warnings, []);
  assert.deepEqual((await cliOk<CheckJson>(['check-bundle', path.join(t.base, 'alice.yaml'), '--json'])).warnings, []);
});

test('a key file readable by others: bundle and check-bundle warn and say chmod 600', { skip: !posix && 'POSIX modes' }, async () => {
  const t = await makePki();
  const alice = await t.issue(['issue', 'client', '--user', 'alice']);
  fs.chmodSync(alice.files.key!, 0o644);
  const pem = path.join(t.base, 'alice-pem');
  const r = await cli(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'pem', '--out', pem]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`warning: the private key ${alice.files.key!.replace(/\./g, '\\.')} can be read by other users \\(mode 0644\\): run \`chmod 600 `));
  // the bundle itself is written 0600; made readable, check-bundle says so for the folder's key.pem and a profile
  assert.deepEqual((await cliOk<CheckJson>(['check-bundle', pem, '--json'])).warnings, []);
  fs.chmodSync(path.join(pem, 'key.pem'), 0o640);
  const checked = await cliOk<CheckJson>(['check-bundle', pem, '--json']);
  assert.ok(checked.warnings.some((w) => /key\.pem can be read by other users \(mode 0640\): run `chmod 600 .*key\.pem`/.test(w)), JSON.stringify(checked));
  const profile = path.join(t.base, 'alice.yaml');
  await cliOk(['bundle', alice.files.cert, '--dir', t.pki, '--format', 'profile', '--out', profile]);
  fs.chmodSync(profile, 0o604);
  const human = await cli(['check-bundle', profile]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stderr, /warning: the private key in .*alice\.yaml can be read by other users \(mode 0604\)/);
});

test('a revoked certificate: bundle warns; check-bundle refuses it with --ca-dir or --crl, and says when it could not check', async () => {
  const t = await makePki();
  const carol = await t.issue(['issue', 'client', '--user', 'carol']);
  const profile = path.join(t.base, 'carol.yaml');
  await cliOk(['bundle', carol.files.cert, '--dir', t.pki, '--format', 'profile', '--out', profile]);
  const unchecked = await cli(['check-bundle', profile]);
  assert.equal(unchecked.code, 0, unchecked.stderr);
  assert.match(unchecked.stdout, /revocation not checked: pass --ca-dir DIR \(the CA folder\) or --crl FILE/);
  assert.deepEqual((await cliOk<CheckJson>(['check-bundle', profile, '--ca-dir', t.pki, '--json'])).revocation, { checked: true, revoked: false, source: path.resolve(t.pki) });

  await cliOk(['revoke', carol.serial, '--dir', t.pki, '--reason', 'keyCompromise']);
  for (const args of [['--ca-dir', t.pki], ['--crl', path.join(t.pki, 'crl', 'intermediate.crl')]]) {
    const r = await cli(['check-bundle', profile, ...args]);
    assert.equal(r.code, 65, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`error: the certificate in .*carol\\.yaml \\(serial ${carol.serial}\\) is revoked \\(keyCompromise`));
    assert.match(r.stderr, /hint: ask your operator for a new certificate; `mcp-mtls renew` cannot renew a revoked one/);
    const j = await cli(['check-bundle', profile, ...args, '--json']);
    assert.equal(JSON.parse(j.stderr).error.code, 'CERT_REVOKED');
  }
  // a CRL of another CA says nothing about this bundle: refused, not "not revoked"
  const other = await makePki();
  const foreign = await cli(['check-bundle', profile, '--crl', path.join(other.pki, 'crl', 'intermediate.crl')]);
  assert.equal(foreign.code, 65, foreign.stderr);
  assert.match(foreign.stderr, /was not signed by the CA that issued the certificate/);

  const again = path.join(t.base, 'carol-again.yaml');
  const r = await cli(['bundle', carol.serial, '--dir', t.pki, '--key', carol.files.key!, '--format', 'profile', '--out', again, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const warnings = (JSON.parse(r.stdout) as BundleJson).warnings;
  assert.ok(warnings.some((w) => new RegExp(`certificate ${carol.serial} was revoked .*\\(keyCompromise\\): servers refuse it; issue a new one`).test(w)), JSON.stringify(warnings));
  assert.match(r.stderr, /warning: certificate .* was revoked/);
});

test('bundle --ca FILE: the root from a file (no ca.crt beside the certificate, no CA folder); another CA is refused', async () => {
  const t = await makePki();
  const alice = await t.issue(['issue', 'client', '--user', 'alice']);
  const elsewhere = tmpDir();
  const cert = path.join(elsewhere, 'alice.pem');
  const key = path.join(elsewhere, 'alice-key.pem');
  const root = path.join(elsewhere, 'acme-root.pem');
  fs.copyFileSync(alice.files.cert, cert);
  fs.copyFileSync(alice.files.key!, key);
  fs.copyFileSync(alice.files.ca, root);
  const without = await cli(['bundle', cert, '--key', key, '--format', 'profile', '--out', path.join(elsewhere, 'a.yaml')], { cwd: elsewhere });
  assert.equal(without.code, 66, without.stderr);
  assert.match(without.stderr, /hint: .*--ca FILE/);
  const out = path.join(elsewhere, 'alice.yaml');
  const r = await cli(['bundle', cert, '--key', key, '--ca', root, '--format', 'profile', '--out', out], { cwd: elsewhere });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await cli(['check-bundle', out])).code, 0);
  const other = await makePki();
  const wrong = await cli(['bundle', cert, '--key', key, '--ca', path.join(other.pki, 'root.crt'), '--format', 'profile', '--out', path.join(elsewhere, 'w.yaml')], { cwd: elsewhere });
  assert.equal(wrong.code, 65, wrong.stderr);
  assert.match(wrong.stderr, /does not chain to .*root\.crt/);
  const missing = await cli(['bundle', cert, '--key', key, '--ca', path.join(elsewhere, 'nope.pem'), '--format', 'profile', '--out', path.join(elsewhere, 'n.yaml')], { cwd: elsewhere });
  assert.equal(missing.code, 66, missing.stderr);
  assert.match(missing.stderr, /cannot read the CA certificate .*nope\.pem/);
});

test("check-bundle --crl URL: the certificate's CRL distribution point, fetched (and named when revocation was not checked)", async () => {
  let pki = '';
  const server = http.createServer((req, res) => {
    if (req.url !== '/crl/intermediate.crl') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(fs.readFileSync(path.join(pki, 'crl', 'intermediate.crl')));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const t = await makePki(['--crl-url', `${base}/crl/intermediate.crl`]);
    pki = t.pki;
    const dave = await t.issue(['issue', 'client', '--user', 'dave']);
    const profile = path.join(t.base, 'dave.yaml');
    await cliOk(['bundle', dave.files.cert, '--dir', t.pki, '--format', 'profile', '--out', profile]);
    const unchecked = await cliOk<string>(['check-bundle', profile]);
    assert.match(unchecked, new RegExp(`revocation not checked: .* \\(or --crl ${base}/crl/intermediate\\.crl, the certificate's CRL distribution point\\)`));
    const fine = await cliOk<CheckJson>(['check-bundle', profile, '--crl', `${base}/crl/intermediate.crl`, '--json']);
    assert.deepEqual(fine.revocation, { checked: true, revoked: false, source: `${base}/crl/intermediate.crl` });
    await cliOk(['revoke', dave.serial, '--dir', t.pki, '--reason', 'superseded']);
    const r = await cli(['check-bundle', profile, '--crl', `${base}/crl/intermediate.crl`]);
    assert.equal(r.code, 65, r.stderr);
    assert.match(r.stderr, /is revoked \(superseded, .*per http:\/\/127\.0\.0\.1:\d+\/crl\/intermediate\.crl\)/);
    const missing = await cli(['check-bundle', profile, '--crl', `${base}/nothing.crl`]);
    assert.equal(missing.code, 74, missing.stderr);
    assert.match(missing.stderr, /cannot fetch the CRL .*nothing\.crl: HTTP 404/);
  } finally {
    server.close();
  }
});

test('check-bundle --crl: a delta, partitioned or critical-extension CRL of the right CA is refused, not taken as "not revoked"', async () => {
  const t = await makePki();
  const dave = await t.issue(['issue', 'client', '--user', 'dave']);
  const profile = path.join(t.base, 'dave.yaml');
  await cliOk(['bundle', dave.files.cert, '--dir', t.pki, '--format', 'profile', '--out', profile]);
  const dir = path.join(t.base, 'variants');
  fs.mkdirSync(dir);
  // signed with the intermediate's key by python cryptography: base.crl lists dave, the others are empty
  execFileSync('python3', [path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'oracle', 'crl_variants.py'), t.pki, dave.serial, dir]);
  const base = await cli(['check-bundle', profile, '--crl', path.join(dir, 'base.crl')]);
  assert.equal(base.code, 65, base.stderr);
  assert.match(base.stderr, /is revoked/);
  for (const [name, why] of [['delta', /delta CRL/], ['partition', /issuingDistributionPoint narrows its scope/], ['critical', /critical extension 1\.3\.6\.1\.4\.1\.55555\.1/]] as const) {
    const r = await cli(['check-bundle', profile, '--crl', path.join(dir, `${name}.crl`), '--json']);
    assert.notEqual(r.code, 0, `${name}.crl: exit 0, stdout ${r.stdout}`);
    const err = JSON.parse(r.stderr).error;
    assert.equal(err.code, 'CRL_INVALID', `${name}.crl: ${r.stderr}`);
    assert.match(err.message, why, name);
  }
});

test("check-bundle --crl takes the root's CRL too (it says whether the intermediate is revoked), as servers given both CRLs do", async () => {
  const t = await makePki();
  const erin = await t.issue(['issue', 'client', '--user', 'erin']);
  const profile = path.join(t.base, 'erin.yaml');
  await cliOk(['bundle', erin.files.cert, '--dir', t.pki, '--format', 'profile', '--out', profile]);
  const [rootCrl, interCrl] = [path.join(t.pki, 'crl', 'root.crl'), path.join(t.pki, 'crl', 'intermediate.crl')];
  // the CA folder's two CRLs, as `ca serve` serves them and servers load them
  const both = await cliOk<CheckJson>(['check-bundle', profile, '--crl', rootCrl, '--crl', interCrl, '--json']);
  assert.deepEqual(both.revocation, { checked: true, revoked: false, source: `${rootCrl}, ${interCrl}` });
  // a root CRL listing the intermediate (signed with the root key by python cryptography)
  const revoking = path.join(t.base, 'root-revoking.crl');
  execFileSync('python3', ['-c', `
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
d, out = sys.argv[1], sys.argv[2]
root = x509.load_pem_x509_certificate(open(d + '/root.crt', 'rb').read())
inter = x509.load_pem_x509_certificate(open(d + '/intermediate.crt', 'rb').read())
key = serialization.load_pem_private_key(open(d + '/private/root.key', 'rb').read(), None)
now = datetime.datetime.now(datetime.timezone.utc)
b = (x509.CertificateRevocationListBuilder().issuer_name(root.subject).last_update(now - datetime.timedelta(minutes=5))
     .next_update(now + datetime.timedelta(days=1)).add_extension(x509.CRLNumber(77), False)
     .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(inter.serial_number).revocation_date(now - datetime.timedelta(minutes=5)).build()))
open(out, 'wb').write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
`, t.pki, revoking]);
  const r = await cli(['check-bundle', profile, '--crl', revoking, '--json']);
  assert.equal(r.code, 65, r.stderr);
  const err = JSON.parse(r.stderr).error;
  assert.equal(err.code, 'CERT_REVOKED', r.stderr);
  assert.match(err.message, /the CA certificate .* \(serial [0-9a-f]+\) that issued the certificate in .*erin\.yaml is revoked/);
});

test('check-bundle --crl URL: a redirect or an oversized answer is refused, naming the URL', async () => {
  const server = http.createServer((req, res) => {
    if (req.url === '/moved.crl') return void res.writeHead(302, { location: '/elsewhere.crl' }).end();
    res.writeHead(200, { 'content-length': String(65 * 1024 * 1024) });
    res.write('x');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const t = await makePki();
    const frank = await t.issue(['issue', 'client', '--user', 'frank']);
    const profile = path.join(t.base, 'frank.yaml');
    await cliOk(['bundle', frank.files.cert, '--dir', t.pki, '--format', 'profile', '--out', profile]);
    const moved = await cli(['check-bundle', profile, '--crl', `${base}/moved.crl`]);
    assert.equal(moved.code, 74, moved.stderr);
    assert.match(moved.stderr, /cannot fetch the CRL http:\/\/127\.0\.0\.1:\d+\/moved\.crl: HTTP 302/);
    const huge = await cli(['check-bundle', profile, '--crl', `${base}/huge.crl`]);
    assert.equal(huge.code, 74, huge.stderr);
    assert.match(huge.stderr, /error: cannot fetch the CRL http:\/\/127\.0\.0\.1:\d+\/huge\.crl: the body is 68157440 bytes, more than the 67108864 allowed/);
    assert.match(huge.stderr, /hint: /);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
