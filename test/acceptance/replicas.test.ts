/**
 * Acceptance (#11): two `mcp-mtls ca serve` processes (the built CLI) on one PostgreSQL
 * database issue 1,000 certificates concurrently through POST /sign, with no duplicate serial;
 * one of them is killed (SIGKILL) mid-run and nothing is lost.
 *
 * "Nothing lost" is checked from both sides: every client gets its certificate (a request cut
 * off by the kill is retried on the other replica with the same token and CSR: if the killed
 * replica had committed, the retry gets that same certificate again, else a new one), and the
 * database holds exactly one certificate per token, each the one its client received.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import { PostgresStore } from '../../src/ca/store/postgres-store.js';
import type { IssuedRecord } from '../../src/ca/store/store.js';
import { createEnrollmentToken } from '../../src/ca/tokens.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { BIN, cliOk, tmpDir } from '../support/cli.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

const TOTAL = Number(process.env.REPLICAS_CERTS ?? 1000);
const CONCURRENCY = 32;
const KILL_AFTER = Math.floor(TOTAL * 0.3);

let pg: TestPostgres;
const children: ChildProcess[] = [];

before(async () => {
  pg = await startPostgres();
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await pg.stop();
});

interface Replica {
  child: ChildProcess;
  port: number;
  agent: https.Agent;
}

async function startReplica(pki: string, tls: { cert: string; key: string }, env: Record<string, string>): Promise<Replica> {
  const child = spawn(process.execPath, [BIN, 'ca', 'serve', '--dir', pki, '--listen', '127.0.0.1:0', '--tls-cert', tls.cert, '--tls-key', tls.key], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      const e = JSON.parse(l) as { event: string; port?: number };
      if (e.event === 'serve.start') resolve(e.port!);
    });
    child.on('exit', (code) => reject(new Error(`ca serve exited ${code}: ${stderr}`)));
  });
  return { child, port, agent: new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY / 2 }) };
}

function sign(r: Replica, rootPem: string, secret: string, csr: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: r.port, path: '/sign', method: 'POST', ca: rootPem, agent: r.agent, headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/pkcs10', 'content-length': csr.length } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.end(csr);
  });
}

test(`two ca serve replicas on one PostgreSQL database issue ${TOTAL} certificates concurrently; one is killed mid-run; nothing is lost`, { timeout: 300_000 }, async () => {
  const base = tmpDir('acceptance-replicas-');
  const pki = path.join(base, 'pki');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test']);
  await cliOk(['ca', 'migrate', '--store', pg.url]);
  await cliOk(['ca', 'export', '--dir', pki, '--to', pg.url]);
  const env = { MCP_MTLS_STORE: pg.url };
  const tls = await cliOk<{ files: { cert: string; key: string } }>(['issue', 'server', '--dir', pki, '--ip', '127.0.0.1', '--out', path.join(base, 'tls'), '--json'], { env });
  const rootPem = fs.readFileSync(path.join(pki, 'root.crt'), 'utf8');

  // one token (one service id) per certificate, and a CSR of a key of its own
  const ca = Authority.open(pki, { store: new PostgresStore(pg.url) });
  const jobs: { id: string; secret: string; csr: Buffer }[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const id = `bot-${String(i).padStart(4, '0')}`;
    const { secret } = await createEnrollmentToken(ca, { kind: 'service', id, teams: ['ci'], roles: [], ttlMs: 3_600_000 });
    jobs.push({ id, secret, csr: createCsr(generateKey('ec-p256'), id) });
  }

  const replicas = [await startReplica(pki, tls.files, env), await startReplica(pki, tls.files, env)];
  const alive = new Set(replicas);
  const received = new Map<string, string>(); // id -> serial of the certificate the client got
  let done = 0;
  let killed = false;
  let next = 0;
  const worker = async (w: number) => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      let replica = replicas[w % 2]!;
      for (let attempt = 0; ; attempt++) {
        if (!alive.has(replica)) replica = [...alive][0]!;
        let r: { status: number; body: string };
        try {
          r = await sign(replica, rootPem, job.secret, job.csr);
        } catch {
          alive.delete(replica); // connection refused or reset: that replica is gone; retry on the other
          assert.ok(attempt < 3, `${job.id}: no replica answered`);
          continue;
        }
        if (r.status === 200) {
          const leaf = new crypto.X509Certificate(r.body.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0]);
          assert.equal(leaf.subject.match(/CN=([^\n]+)/)?.[1], job.id);
          received.set(job.id, leaf.serialNumber.toLowerCase());
        } else {
          assert.fail(`${job.id}: ${r.status} ${r.body}`);
        }
        break;
      }
      if (++done === KILL_AFTER && !killed) {
        killed = true;
        replicas[0]!.child.kill('SIGKILL');
      }
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  const seconds = (Date.now() - started) / 1000;
  for (const r of replicas) r.agent.destroy();
  replicas[1]!.child.kill('SIGTERM');

  // what the database holds
  const index = await ca.store.readIndex();
  const issued = index.filter((r): r is IssuedRecord => r.op === 'issue' && r.type === 'client');
  const serials = issued.map((r) => r.serial);
  const byId = new Map(issued.map((r) => [r.id, r.serial]));
  const tokens = await ca.store.readTokens();
  const replays = (await ca.store.readAudit()).filter((e) => e.event === 'token.replay').length;
  await ca.store.close();
  process.stdout.write(`# ${TOTAL} enrollments in ${seconds.toFixed(1)} s (${(TOTAL / seconds).toFixed(0)}/s) over 2 replicas, one killed after ${KILL_AFTER}; ${received.size} received, ${replays} of them again after the killed replica had committed\n`);

  assert.ok(killed && alive.size === 1, 'a replica was killed mid-run');
  assert.equal(new Set(serials).size, serials.length, 'no duplicate serial');
  assert.equal(issued.length, TOTAL, 'exactly one certificate per token in the database');
  for (const [id, serial] of received) assert.equal(byId.get(id), serial, `${id}: the certificate received is the one recorded`);
  assert.equal(received.size, TOTAL, 'every client got its certificate');
  assert.equal(tokens.filter((t) => t.usedAt).length, TOTAL, 'every token used once');
  fs.rmSync(base, { recursive: true, force: true });
});
