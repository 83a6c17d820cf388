/**
 * Revocation reaches the README's server: a server given CRL files (tlsFromPki) watches them,
 * applies a new CRL written by the real CLI (closing the revoked client's open connection), and
 * keeps the last good CRL when a file is replaced by something that is not a valid CRL.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { memoryAudit } from '../../src/mtls/audit.js';
import { createMtlsServer, tlsFromPki } from '../../src/mtls/mtls-server.js';
import { cliOk } from '../support/cli.js';
import { makePki } from '../support/pki.js';
import { authOutcome } from '../support/auth-outcome.js';

const waitFor = async (what: string, check: () => boolean | Promise<boolean>, ms = 6000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`not within ${ms} ms: ${what}`);
};

test('a server from tlsFromPki applies a CRL the CLI writes: the revoked client is cut off, the others served; an invalid file keeps the last good CRL', async () => {
  const p = await makePki();
  await p.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  const alice = await p.issue(['issue', 'client', '--user', 'alice', '--out', path.join(p.base, 'alice')]);
  await p.issue(['issue', 'client', '--user', 'bob', '--out', path.join(p.base, 'bob')]);
  const creds = (who: string) => ({ ca: fs.readFileSync(path.join(p.base, who, 'ca.crt')), cert: fs.readFileSync(path.join(p.base, who, `${who}.crt`)), key: fs.readFileSync(path.join(p.base, who, `${who}.key`)) });
  const logs: string[] = [];
  const audit = memoryAudit();
  const server = createMtlsServer(
    { ...tlsFromPki(p.pki, path.join(p.out, 'localhost.crt'), path.join(p.out, 'localhost.key')), log: (m) => logs.push(m), audit },
    (_req, res) => void res.end('ok'),
  );
  server.keepAliveTimeout = 60_000; // alice's connection is closed by the revocation, not by idling
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    // alice holds a keep-alive connection open
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...creds('alice') });
    let closed = false;
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('secureConnect', r));
    socket.write('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: keep-alive\r\n\r\n');
    await waitFor('alice is answered', () => answer.includes('200 OK'));
    assert.equal(await authOutcome(port, creds('bob')), 'ok');

    const said = await cliOk<string>(['revoke', alice.serial, '--reason', 'keyCompromise', '--dir', p.pki]);
    assert.match(said, /servers reading it \(tlsFromPki, crlFiles, the gateway\) apply it within 3 s/);
    await cliOk(['crl', '--dir', p.pki]);
    await waitFor("alice's open connection is closed", () => closed);
    assert.equal(await authOutcome(port, creds('alice')), 'certificate_revoked');
    assert.equal(await authOutcome(port, creds('bob')), 'ok');
    assert.ok(audit.events.some((e) => e.event === 'reload' && e.what === 'crl' && (e.closedConnections as number) >= 1), JSON.stringify(audit.events));

    // a file replaced by something that is not a CRL (a partial write): refused, the last good one kept
    fs.writeFileSync(path.join(p.pki, 'crl', 'intermediate.crl'), '-----BEGIN X509 CRL-----\nMIIB');
    await waitFor('the invalid CRL is logged', () => logs.some((l) => /keeping the last good/.test(l)));
    assert.equal(await authOutcome(port, creds('alice')), 'certificate_revoked');
    assert.equal(await authOutcome(port, creds('bob')), 'ok');
    socket.destroy();
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
