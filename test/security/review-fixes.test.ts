/**
 * Regressions from the review of the online CA work (#11): each test failed before its fix.
 * - a CRL source that stops serving a CA's CRL must not un-revoke that CA's certificates;
 * - a PostgreSQL backend lost in the middle of a transaction must not crash the process;
 * - `ca import` must not write outside issued/ for a serial that is not a serial.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { revokeCertificate, writeCrls } from '../../src/ca/revocation.js';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { migrate, PostgresStore } from '../../src/ca/store/postgres-store.js';
import { isMtlsError } from '../../src/errors.js';
import { createMtlsServer } from '../../src/mtls/mtls-server.js';
import { pemEncode } from '../../src/x509/pem.js';
import { clientCreds, makeCa, request, serverCreds, startServer } from '../support/ca-serve.js';
import { createEnrollmentToken } from '../../src/ca/tokens.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { startPostgres } from '../support/postgres.js';

test('a CRL URL that answers with another CA\'s CRL (a root CRL at the intermediate\'s URL) does not drop the CRL it served before', async () => {
  const t = makeCa();
  await writeCrls(t.ca);
  const victim = await clientCreds(t.ca, { id: 'mallory' });
  await revokeCertificate(t.ca, victim.serial, 'keyCompromise');
  let rootCrl = (await t.ca.store.readCrl('root'))!;
  const interCrl = (await t.ca.store.readCrl('intermediate'))!;
  let wrongAnswer = false;
  const web = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/pkix-crl' });
    res.end(req.url === '/root.crl' || wrongAnswer ? rootCrl : interCrl);
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  const tls = await serverCreds(t.ca);
  const srv = createMtlsServer({ cert: tls.cert, key: tls.key, ca: [t.rootPem, pemEncode('CERTIFICATE', t.ca.intermediateDer)], crlUrls: [`${base}/intermediate.crl`, `${base}/root.crl`], log: () => undefined }, () => undefined);
  const revoked = () => [...srv.revocation().byCa.values()].some((s) => s.has(victim.serial));
  try {
    await srv.refreshCrls();
    assert.ok(revoked(), 'revoked after the first fetch');
    wrongAnswer = true; // someone in the path of the plain-http URL answers with the (valid) root CRL
    await srv.refreshCrls();
    await writeCrls(t.ca); // then a legitimate update of the root CRL makes the server rebuild
    rootCrl = (await t.ca.store.readCrl('root'))!;
    await srv.refreshCrls();
    assert.ok(revoked(), 'still revoked: the intermediate CRL of that source was kept');
  } finally {
    srv.close();
    web.close();
  }
});

test('PostgreSQL: a backend terminated in the middle of a transaction fails that transaction, not the process', async () => {
  const db = await startPostgres();
  const admin = new pg.Client({ connectionString: db.url });
  try {
    await migrate(db.url);
    const store = new PostgresStore(db.url);
    await store.readTokens();
    await admin.connect();
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.readCrl('intermediate');
        await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()');
        await new Promise((r) => setTimeout(r, 300)); // the 'error' event arrives while the client is checked out
        await tx.readCrl('intermediate');
      }),
      (e) => isMtlsError(e, 'STORE_UNAVAILABLE'),
    );
    assert.deepEqual(await store.readIndex(), [], 'the store works again with a new connection');
    await store.close();
  } finally {
    await admin.end().catch(() => undefined);
    await db.stop();
  }
});

test('ca import refuses a serial that would name a file outside issued/ (and writes nothing)', async () => {
  const t = makeCa();
  const root = fs.readFileSync(path.join(t.dir, 'root.crt'));
  const store = new FsStore(t.dir);
  const evil = { index: [], issued: [{ serial: '../root', der: Buffer.from('x') }], audit: [], crls: {}, tokens: [] };
  await assert.rejects(store.restore(evil as never, true), (e) => isMtlsError(e, 'STORE_CORRUPT'));
  assert.deepEqual(fs.readFileSync(path.join(t.dir, 'root.crt')), root, 'root.crt untouched');
});

test('ca serve: a flood of made-up enrollment tokens reads the token table at most about once a second; a new token is still found', async () => {
  const t = makeCa();
  await writeCrls(t.ca);
  let reads = 0;
  const readTokens = t.ca.store.readTokens.bind(t.ca.store);
  t.ca.store.readTokens = async () => (reads++, readTokens());
  const srv = await startServer(t, { crl: { checkMs: 0 } });
  try {
    const csr = createCsr(generateKey('ec-p256'), 'x');
    const fake = () => `mcpt_${crypto.randomBytes(8).toString('hex')}_${crypto.randomBytes(32).toString('base64url')}`;
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 60 }, () => request(srv.port, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${fake()}`, 'content-type': 'application/pkcs10' }, body: csr })));
    const seconds = (Date.now() - started) / 1000;
    assert.ok(answers.every((a) => a.status === 401 && a.json().error?.code === 'TOKEN_INVALID'));
    assert.ok(reads <= Math.ceil(seconds) + 2, `${reads} reads of the token table for 60 made-up tokens in ${seconds.toFixed(1)} s`);
    const { secret } = await createEnrollmentToken(t.ca, { kind: 'service', id: 'fresh', teams: [], roles: [], ttlMs: 60_000 });
    const ok = await request(srv.port, t.rootPem, { path: '/sign', method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10' }, body: csr });
    assert.equal(ok.status, 200, 'a token made a moment ago is found');
  } finally {
    await srv.server.shutdown(500);
  }
});
