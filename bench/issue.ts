/**
 * bench/issue: client certificates per second, in process, next to a plain @peculiar/x509
 * generator loop measured in the same run (the baseline). Run with `npm run bench`
 * (BENCH_N=5000 by default; BENCH_N=50 is the smoke run the test suite does).
 *
 * Rows:
 *   baseline        @peculiar/x509 X509CertificateGenerator.create, same extensions, key made beforehand
 *   engine+keygen   Authority.issueClients with an in-memory store, generating a P-256 key per cert
 *   engine (spki)   same, for a public key given (the CSR path after verification): no key generation
 *   csr verify+sign verifyCsr (proof of possession) then issue: the whole `sign` path
 *   folder store    Authority.issueClients into the folder store: the CLI batch path (files, index, audit)
 */
import 'reflect-metadata';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { Authority, type ClientRequest } from '../src/ca/authority.js';
import { initCa } from '../src/ca/init.js';
import { MemoryStore } from '../src/ca/store/memory-store.js';
import { createCsr, verifyCsr } from '../src/x509/csr.js';
import { generateKey } from '../src/x509/keys.js';

const N = Number(process.env.BENCH_N ?? 5000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-issue-'));
initCa({ dir, trustDomain: 'bench.test', rootTtlMs: 10 * 365 * 86_400_000, intermediateTtlMs: 5 * 365 * 86_400_000 });

const request = (i: number): ClientRequest => ({ kind: 'user', id: `user${i}`, teams: ['sre', 'platform'], roles: ['admin'] });

async function rate(label: string, n: number, fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  const perSec = n / ((performance.now() - t0) / 1000);
  return perSec;
}

async function baseline(n: number): Promise<number> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const caKeys = await crypto.webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const leafKeys = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const issuer = 'CN=bench.test MCP CA Intermediate';
  return rate('baseline', n, async () => {
    for (let i = 0; i < n; i++) {
      await x509.X509CertificateGenerator.create({
        serialNumber: crypto.randomBytes(16).toString('hex').replace(/^./, '4'),
        subject: `CN=user${i}`,
        issuer,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86_400_000),
        signingAlgorithm: alg,
        publicKey: leafKeys.publicKey,
        signingKey: caKeys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://bench.test/user/user${i}` }]),
          await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
        ],
      });
    }
  });
}

const chunks = <T>(items: T[], size: number) => Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

async function main() {
  const rows: [string, number][] = [];
  const baseN = Math.max(10, Math.round(N / 10)); // the baseline is slow: a tenth of N is plenty for its rate
  const base = await baseline(baseN);
  rows.push([`baseline @peculiar/x509 (n=${baseN}, no keygen)`, base]);

  const mem = Authority.open(dir, { store: new MemoryStore() });
  await mem.issueClients([request(-1)]); // warm up: load the key, JIT
  const reqs = Array.from({ length: N }, (_, i) => request(i));
  rows.push([`engine + P-256 keygen (n=${N})`, await rate('', N, async () => void (await mem.issueClients(reqs)))]);

  const spki = generateKey('ec-p256').spki;
  const withKey = reqs.map((r) => ({ ...r, spki }));
  rows.push([`engine, public key given (n=${N})`, await rate('', N, async () => void (await mem.issueClients(withKey)))]);

  const csrs = Array.from({ length: Math.min(N, 2000) }, (_, i) => createCsr(generateKey('ec-p256'), `user${i}`));
  rows.push([`CSR verify + issue (n=${csrs.length})`, await rate('', csrs.length, async () => void (await mem.issueClients(csrs.map((c, i) => ({ ...request(i), spki: verifyCsr(c).spki }))))) ]);

  const folder = Authority.open(dir);
  const batch = Array.from({ length: N }, (_, i) => request(i));
  rows.push([`folder store batch (n=${N}, 500 per transaction)`, await rate('', N, async () => {
    for (const c of chunks(batch, 500)) await folder.issueClients(c);
  })]);

  const width = Math.max(...rows.map(([l]) => l.length));
  console.log(`bench/issue on ${os.cpus()[0]?.model ?? 'cpu'} (node ${process.version}), one core`);
  console.log(`${'case'.padEnd(width)}  certs/s   x baseline`);
  for (const [label, r] of rows) console.log(`${label.padEnd(width)}  ${r.toFixed(0).padStart(7)}   ${(r / base).toFixed(1)}x`);
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
