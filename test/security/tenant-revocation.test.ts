/**
 * Revocation across tenants: a server trusting two tenants' CAs, where the hostile tenant made
 * its CAs with the other's names (`mcp-mtls ca init --trust-domain globex.test --name "acme.test
 * MCP CA"`, the real CLI). CRLs and revocations are kept per CA key (name and public key), so
 * its CRLs revoke none of acme's users, and CRL URLs are learned per issuing CA key, failing
 * closed until fetched, so its clients connecting first cannot stop acme's CRL from applying.
 * Against createMtlsServer and an https server built with mtlsServerOptions + createMtlsMiddleware.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent, fetch } from 'undici';
import { Authority } from '../../src/ca/authority.js';
import { intermediateSigner, rootSigner } from '../../src/ca/ca-keys.js';
import { buildCrl } from '../../src/ca/crl-signing.js';
import { isMtlsError } from '../../src/errors.js';
import { createMtlsMiddleware, mtlsServerOptions } from '../../src/mtls/middleware.js';
import { buildRevocation } from '../../src/mtls/revocation.js';
import { createMtlsServer, type MtlsServerOptions } from '../../src/mtls/mtls-server.js';
import { keyIdentifier } from '../../src/x509/keys.js';
import { pemEncode } from '../../src/x509/pem.js';
import { cliOk, tmpDir } from '../support/cli.js';

interface Issued {
  serial: string;
  files: { cert: string; key: string };
}
const base = tmpDir('tenant-revocation-');
const read = (f: string) => fs.readFileSync(f);
const listening: { close(): void; closeAllConnections?(): void }[] = [];
after(() => {
  for (const s of listening) {
    s.closeAllConnections?.();
    s.close();
  }
  fs.rmSync(base, { recursive: true, force: true });
});

async function ca(name: string, args: string[]) {
  const dir = path.join(base, name);
  await cliOk(['ca', 'init', '--dir', dir, ...args]);
  const issue = (a: string[]) => cliOk<Issued>([...a.slice(0, 2), '--dir', dir, ...a.slice(2), '--out', path.join(dir, 'out'), '--json']);
  const revoke = (serial: string) => cliOk(['revoke', serial, '--dir', dir, '--reason', 'keyCompromise']);
  return { dir, issue, revoke, root: read(path.join(dir, 'root.crt')), intermediate: read(path.join(dir, 'intermediate.crt')), crl: (w: 'root' | 'intermediate') => read(path.join(dir, 'crl', `${w}.crl`)) };
}

const listen = async <S extends http.Server>(s: S): Promise<number> => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  listening.push(s);
  return (s.address() as AddressInfo).port;
};

/** One new connection, one request: 'ok' for 200, else the 401 reason (and its message). */
async function attempt(port: number, who: Issued, trust: Buffer): Promise<{ answer: string; message?: string }> {
  const agent = new Agent({ connect: { ca: trust, cert: read(who.files.cert), key: read(who.files.key), servername: 'localhost' } });
  try {
    const res = await fetch(`https://127.0.0.1:${port}/`, { dispatcher: agent });
    const text = await res.text();
    if (res.status === 200) return { answer: 'ok' };
    const body = JSON.parse(text) as { error: string; message: string };
    return { answer: body.error, message: body.message };
  } finally {
    await agent.close();
  }
}

/** The same options as createMtlsServer, given to an https server built by hand with the middleware. */
async function startBoth(options: MtlsServerOptions): Promise<Record<'server' | 'middleware', number>> {
  const server = createMtlsServer(options, (_req, res) => void res.end('hello'));
  const { cert, key, ca: cas, crl, log, ...rest } = options;
  const mtls = createMtlsMiddleware({ tls: { cert, key, ca: cas, ...(crl ? { crl } : {}) }, ...rest, ...(log ? { log } : {}) });
  listening.push({ close: () => mtls.close() });
  const byHand = https.createServer(mtlsServerOptions(options), (req, res) => mtls(req, res, () => void res.end('hello')));
  return { server: await listen(server), middleware: await listen(byHand) };
}

let acme: Awaited<ReturnType<typeof ca>>;
let globex: Awaited<ReturnType<typeof ca>>;
let srv: Issued; // the server's certificate, from acme
before(async () => {
  acme = await ca('acme', ['--trust-domain', 'acme.test']);
  // the hostile tenant: its own trust domain, acme's CA names
  globex = await ca('globex', ['--trust-domain', 'globex.test', '--name', 'acme.test MCP CA']);
  srv = await acme.issue(['issue', 'server', '--dns', 'localhost']);
  const [a, g] = [Authority.open(acme.dir), Authority.open(globex.dir)];
  assert.equal(a.intermediate.subjectName.toString('hex'), g.intermediate.subjectName.toString('hex'), 'same names');
  assert.equal(a.root.subjectName.toString('hex'), g.root.subjectName.toString('hex'), 'same names');
});

test('a same-named CA of another tenant cannot revoke acme\'s users or intermediate with its CRLs; each tenant\'s own revocations still apply', async () => {
  const alice = await acme.issue(['issue', 'client', '--user', 'alice']);
  const carol = await acme.issue(['issue', 'client', '--user', 'carol']);
  await acme.revoke(carol.serial);
  const bob = await globex.issue(['issue', 'client', '--user', 'bob']);
  const dan = await globex.issue(['issue', 'client', '--user', 'dan']);
  await globex.revoke(bob.serial);
  // globex signs, with its own keys, an intermediate CRL listing acme's alice and a root CRL listing acme's intermediate
  const [a, g] = [Authority.open(acme.dir), Authority.open(globex.dir)];
  const now = new Date();
  const entry = (serial: string) => ({ serial, revokedAt: now, reason: 'keyCompromise' as never });
  const forgedLeafCrl = buildCrl({ subjectName: g.intermediate.subjectName, keyId: keyIdentifier(g.intermediate.spki) }, await intermediateSigner(g), { number: 90n, now, nextUpdate: new Date(now.getTime() + 86_400_000), entries: [entry(alice.serial), entry(bob.serial)] });
  const forgedRootCrl = buildCrl({ subjectName: g.root.subjectName, keyId: keyIdentifier(g.root.spki) }, await rootSigner(g), { number: 90n, now, nextUpdate: new Date(now.getTime() + 86_400_000), entries: [entry(a.intermediate.serial)] });
  const logs: string[] = [];
  const ports = await startBoth({
    cert: read(srv.files.cert),
    key: read(srv.files.key),
    ca: [acme.root, globex.root, acme.intermediate, globex.intermediate],
    crl: [acme.crl('root'), acme.crl('intermediate'), globex.crl('root'), globex.crl('intermediate'), Buffer.from(pemEncode('X509 CRL', forgedLeafCrl)), Buffer.from(pemEncode('X509 CRL', forgedRootCrl))],
    trustDomains: ['acme.test', 'globex.test'],
    trustDomainRoots: { 'acme.test': acme.root, 'globex.test': globex.root },
    log: (m) => logs.push(m),
  });
  for (const [kind, port] of Object.entries(ports)) {
    const got: Record<string, string> = {};
    for (const [name, who] of Object.entries({ alice, carol, bob, dan })) got[name] = (await attempt(port, who, acme.root)).answer;
    assert.deepEqual(got, { alice: 'ok', carol: 'certificate_revoked', bob: 'certificate_revoked', dan: 'ok' }, kind);
  }
  assert.ok(logs.some((l) => /2 CA certificates are named "CN=acme\.test MCP CA Intermediate" with different keys/.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /the CRL #90 of "CN=acme\.test MCP CA Intermediate" is signed by the CA with key sha256:[0-9a-f]{16}: it applies only to certificates that key signed/.test(l)), logs.join('\n'));
});

test('a client whose issuing CA is not configured: refused while a CRL of a CA with its issuer\'s name is loaded, or while its CRL URL cannot be verified', async () => {
  const bob = await globex.issue(['issue', 'client', '--user', 'bob2']);
  // globex's intermediate is not configured: nothing can say whether bob is revoked, and acme's
  // CRL (same issuer name) says nothing about him
  const ports = await startBoth({ cert: read(srv.files.cert), key: read(srv.files.key), ca: [acme.root, globex.root], crl: [acme.crl('root'), acme.crl('intermediate')], log: () => undefined });
  for (const [kind, port] of Object.entries(ports)) {
    const r = await attempt(port, bob, acme.root);
    assert.equal(r.answer, 'revocation_unknown', kind);
    assert.match(r.message ?? '', /a CRL of a CA with its issuer's name is loaded, but the CA certificate whose key signed it is not configured/);
  }
  // the middleware's former `revocation` option (CRLs without the CA certificates) is refused, not silently ignored
  assert.throws(() => createMtlsMiddleware({ revocation: buildRevocation([acme.crl('intermediate')], [acme.root, acme.intermediate]) } as never), (e) => isMtlsError(e, 'BAD_ARGUMENT') && /pass `tls: material`/.test(e.hint ?? ''));
});

test('CRL URLs are learned per issuing CA key: a same-named tenant connecting first does not stop acme\'s CRL from applying, and a CA\'s clients are refused until its CRL is fetched', async () => {
  // two CRL servers, one per tenant; acme's fails at first
  const state = { acmeDown: true };
  const crlServer = (dir: () => string, down: () => boolean) =>
    http.createServer((req, res) => {
      if (down()) return void res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(read(path.join(dir(), 'crl', 'intermediate.crl')));
    });
  let acmeDir = '';
  let globexDir = '';
  const acmePort = await listen(crlServer(() => acmeDir, () => state.acmeDown));
  const globexPort = await listen(crlServer(() => globexDir, () => false));
  const acmeUrl = `http://127.0.0.1:${acmePort}/acme/intermediate.crl`;
  const globexUrl = `http://127.0.0.1:${globexPort}/globex/intermediate.crl`;
  const acme2 = await ca('acme-urls', ['--trust-domain', 'acme.test', '--crl-url', acmeUrl]);
  const globex2 = await ca('globex-urls', ['--trust-domain', 'globex.test', '--name', 'acme.test MCP CA', '--crl-url', globexUrl]);
  acmeDir = acme2.dir;
  globexDir = globex2.dir;
  const third = await ca('server-ca', ['--trust-domain', 'servers.test']); // the server's certificate names no CRL URL
  const thirdSrv = await third.issue(['issue', 'server', '--dns', 'localhost']);
  const alice = await acme2.issue(['issue', 'client', '--user', 'alice']);
  const carol = await acme2.issue(['issue', 'client', '--user', 'carol']);
  await acme2.revoke(alice.serial);
  const bob = await globex2.issue(['issue', 'client', '--user', 'bob']);

  const logs: string[] = [];
  const server = createMtlsServer(
    {
      cert: read(thirdSrv.files.cert),
      key: read(thirdSrv.files.key),
      ca: [acme2.root, globex2.root, acme2.intermediate, globex2.intermediate],
      trustDomains: ['acme.test', 'globex.test'],
      trustDomainRoots: { 'acme.test': acme2.root, 'globex.test': globex2.root },
      crlFromCertificates: true,
      crlFetch: { intervalMs: 1000 },
      log: (m) => logs.push(m),
    },
    (_req, res) => void res.end('hello'),
  );
  const port = await listen(server);
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(ok(), `${what} (logs: ${logs.join(' | ')})`);
  };
  const status = (url: string) => server.crlSources().find((s) => s.url === url)?.status;

  // the hostile tenant's client connects first; its CA's URL is learned and fetched
  const bobFirst = await attempt(port, bob, third.root);
  await until('globex\'s CRL fetched', () => status(globexUrl) === 'ok');
  // then acme's revoked alice: never let in (before: her CA's name was "learned" already, so her CRL was never fetched)
  const aliceFirst = await attempt(port, alice, third.root);
  assert.notEqual(aliceFirst.answer, 'ok', 'a revoked client is not let in because a same-named CA was learned first');
  assert.equal(aliceFirst.answer, 'revocation_unknown');
  assert.match(aliceFirst.message ?? '', new RegExp(`no CRL of its CA has been fetched yet from ${acmeUrl.replaceAll('.', '\\.')}`));
  assert.equal(bobFirst.answer, 'revocation_unknown', 'bob too was refused until his CA\'s CRL was fetched');
  assert.equal((await attempt(port, bob, third.root)).answer, 'ok');
  // acme's CRL URL fails: fail closed, for every client of that CA
  await until('acme\'s CRL fetch failed', () => status(acmeUrl) === 'error');
  assert.equal((await attempt(port, carol, third.root)).answer, 'revocation_unknown');
  assert.ok(logs.some((l) => l.startsWith(`CRL fetch from ${acmeUrl} failed: HTTP 503`)));
  // once it is fetched: carol in, alice revoked
  state.acmeDown = false;
  await until('acme\'s CRL fetched', () => status(acmeUrl) === 'ok');
  assert.equal((await attempt(port, carol, third.root)).answer, 'ok');
  assert.equal((await attempt(port, alice, third.root)).answer, 'certificate_revoked');
  assert.deepEqual(server.crlSources().map((s) => [s.url, s.origin]).sort(), [[acmeUrl, 'certificate'], [globexUrl, 'certificate']].sort());

  // a client whose issuing CA is not configured names a CRL URL no CRL of it could be verified from: refused
  const partial = createMtlsServer({ cert: read(thirdSrv.files.cert), key: read(thirdSrv.files.key), ca: [acme2.root, globex2.root, acme2.intermediate], crlFromCertificates: true, log: () => undefined }, (_req, res) => void res.end('hello'));
  const partialPort = await listen(partial);
  const r = await attempt(partialPort, bob, third.root);
  assert.equal(r.answer, 'revocation_unknown');
  assert.match(r.message ?? '', /it names a CRL URL \(http:\/\/127\.0\.0\.1:\d+\/globex\/intermediate\.crl\), but the CA certificate whose key signed it is not among the server's CA certificates/);
});

test('learned CRL URLs are capped per CA: a tenant\'s certificate naming 40 URLs does not use up the budget and leave acme\'s CRL unfetched', async () => {
  const crlHost = http.createServer((req, res) => {
    if (!req.url?.startsWith('/acme/')) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(read(path.join(acme3.dir, 'crl', 'intermediate.crl')));
  });
  const crlPort = await listen(crlHost);
  const acme3 = await ca('acme-cap', ['--trust-domain', 'acme.test', '--crl-url', `http://127.0.0.1:${crlPort}/acme/intermediate.crl`]);
  const globex3 = await ca('globex-cap', ['--trust-domain', 'globex.test']);
  const alice = await acme3.issue(['issue', 'client', '--user', 'alice']);
  const bob = await globex3.issue(['issue', 'client', '--user', 'bob']);
  // the hostile tenant's CA signs a certificate for bob naming 40 CRL URLs of its choosing
  const many = path.join(globex3.dir, 'bob-many.crt');
  execFileSync('python3', [path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'oracle', 'many_crl_urls.py'), globex3.dir, bob.files.cert, '40', `http://127.0.0.1:${crlPort}/globex`, many]);
  const logs: string[] = [];
  const server = createMtlsServer(
    { cert: read(srv.files.cert), key: read(srv.files.key), ca: [acme3.root, acme3.intermediate, globex3.root, globex3.intermediate, acme.root], crlFromCertificates: true, crlFetch: { intervalMs: 1000 }, log: (m) => logs.push(m) },
    (_req, res) => void res.end('hello'),
  );
  const port = await listen(server);
  assert.equal((await attempt(port, { ...bob, files: { ...bob.files, cert: many } }, acme.root)).answer, 'revocation_unknown');
  await attempt(port, alice, acme.root); // learns acme's URL
  await server.refreshCrls();
  assert.equal((await attempt(port, alice, acme.root)).answer, 'ok', logs.filter((l) => /not fetching/.test(l)).slice(-3).join('\n'));
  assert.equal(server.crlSources().filter((s) => s.url.includes('/globex/')).length, 4, 'at most 4 learned URLs for the hostile CA');
  assert.ok(logs.some((l) => /at most 4 learned CRL URLs per CA/.test(l)));
});

test('a cross-certificate of acme\'s intermediate key by another tenant\'s root, listed first, does not hide acme\'s root revoking that intermediate', async () => {
  const acme4 = await ca('acme-cross', ['--trust-domain', 'acme.test']);
  const globex4 = await ca('globex-cross', ['--trust-domain', 'globex.test']);
  const alice = await acme4.issue(['issue', 'client', '--user', 'alice']);
  // globex hands the operator "its intermediate": acme's intermediate name and key, issued by globex's root
  const cross = path.join(globex4.dir, 'cross.crt');
  execFileSync('python3', [path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'oracle', 'cross_certify.py'), path.join(acme4.dir, 'intermediate.crt'), globex4.dir, cross]);
  // acme's root revokes acme's intermediate
  const a = Authority.open(acme4.dir);
  const now = new Date();
  const rootCrl = buildCrl({ subjectName: a.root.subjectName, keyId: keyIdentifier(a.root.spki) }, await rootSigner(a), { number: 90n, now, nextUpdate: new Date(now.getTime() + 86_400_000), entries: [{ serial: a.intermediate.serial, revokedAt: now, reason: 'keyCompromise' as never }] });
  for (const [order, cas] of Object.entries({ 'acme first': [acme4.root, acme4.intermediate, globex4.root, read(cross)], 'globex first': [globex4.root, read(cross), acme4.root, acme4.intermediate] })) {
    const ports = await startBoth({
      cert: read(srv.files.cert),
      key: read(srv.files.key),
      ca: [...cas, acme.root],
      crl: [Buffer.from(pemEncode('X509 CRL', rootCrl)), acme4.crl('intermediate'), globex4.crl('root')],
      log: () => undefined,
    });
    for (const [kind, port] of Object.entries(ports)) assert.equal((await attempt(port, alice, acme.root)).answer, 'certificate_revoked', `${order} (${kind})`);
  }
  // and with trust domains bound to roots, acme's users are still anchored in acme's root whatever the order
  const ports = await startBoth({ cert: read(srv.files.cert), key: read(srv.files.key), ca: [globex4.root, read(cross), acme4.root, acme4.intermediate, acme.root], trustDomainRoots: { 'acme.test': acme4.root, 'globex.test': globex4.root }, log: () => undefined });
  for (const [kind, port] of Object.entries(ports)) assert.equal((await attempt(port, alice, acme.root)).answer, 'ok', kind);
});

test('a CA whose certificates name different CRL URLs (it moved its CRL): a first client naming a dead URL does not hold the CA\'s other clients out', async () => {
  const crlHost = http.createServer((req, res) => {
    if (req.url !== '/new/intermediate.crl') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(read(path.join(moved.dir, 'crl', 'intermediate.crl')));
  });
  const crlPort = await listen(crlHost);
  const moved = await ca('moved', ['--trust-domain', 'acme.test']); // its intermediate names no CRL URL
  const config = path.join(moved.dir, 'config.yaml');
  const base = fs.readFileSync(config, 'utf8');
  fs.writeFileSync(config, `${base}crlUrl: http://127.0.0.1:1/old/intermediate.crl\n`);
  const old = await moved.issue(['issue', 'client', '--user', 'old-timer']);
  fs.writeFileSync(config, `${base}crlUrl: http://127.0.0.1:${crlPort}/new/intermediate.crl\n`);
  const carol = await moved.issue(['issue', 'client', '--user', 'carol']);
  await moved.revoke(old.serial);
  const logs: string[] = [];
  const server = createMtlsServer({ cert: read(srv.files.cert), key: read(srv.files.key), ca: [moved.root, moved.intermediate, acme.root], crlFromCertificates: true, crlFetch: { intervalMs: 1000 }, log: (m) => logs.push(m) }, (_req, res) => void res.end('hello'));
  const port = await listen(server);
  // the holder of an old certificate (revoked since) connects first: its dead URL is learned
  assert.equal((await attempt(port, old, acme.root)).answer, 'revocation_unknown');
  assert.equal((await attempt(port, carol, acme.root)).answer, 'revocation_unknown'); // learns the new URL
  await server.refreshCrls();
  assert.equal((await attempt(port, carol, acme.root)).answer, 'ok', logs.join('\n'));
  assert.equal((await attempt(port, old, acme.root)).answer, 'certificate_revoked');
});
