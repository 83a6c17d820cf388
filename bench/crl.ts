/**
 * bench/crl: sign and load a CRL of N revoked certificates (default 100,000), next to
 * `openssl ca -gencrl` signing the same entries and OpenSSL loading the CRL into a TLS
 * context (Node's `crl` option), measured in the same run. `npm run bench:crl`;
 * BENCH_CRL_N=2000 is the smoke run the test suite does.
 */
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Authority } from '../src/ca/authority.js';
import { intermediateSigner } from '../src/ca/ca-keys.js';
import { initCa } from '../src/ca/init.js';
import { parseCrl, signCrl, verifyCrlSignature, type CrlEntry } from '../src/x509/crl.js';
import { pemEncode } from '../src/x509/pem.js';

const N = Number(process.env.BENCH_CRL_N ?? 100_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-crl-'));
initCa({ dir, trustDomain: 'bench.test', rootTtlMs: 10 * 365 * 86_400_000, intermediateTtlMs: 5 * 365 * 86_400_000 });
const ca = Authority.open(dir);
const signer = await intermediateSigner(ca);
const now = new Date();
const reasons = ['unspecified', 'keyCompromise', 'superseded', 'affiliationChanged'] as const;
const entries: CrlEntry[] = Array.from({ length: N }, (_, i) => ({
  serial: crypto.randomBytes(16).toString('hex').replace(/^./, '4'),
  revokedAt: new Date(now.getTime() - (i % 86_400) * 1000),
  reason: reasons[i % reasons.length] as (typeof reasons)[number],
}));

const time = <T>(fn: () => T): [T, number] => {
  const t0 = performance.now();
  const v = fn();
  return [v, performance.now() - t0];
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const rounds = N >= 50_000 ? 3 : 5;

// ours: sign
const fields = { issuerName: ca.issuer.subjectName, issuerKeyId: ca.issuer.keyId, number: 2n, thisUpdate: now, nextUpdate: new Date(now.getTime() + 7 * 86_400_000), entries };
let der: Buffer = Buffer.alloc(0);
const signTimes: number[] = [];
for (let r = 0; r < rounds; r++) {
  const [d, ms] = time(() => signCrl(fields, signer));
  der = d;
  signTimes.push(ms);
}
// ours: load = parse, verify the signature, build the serial set (what a server does)
const pub = crypto.createPublicKey(crypto.createPrivateKey(fs.readFileSync(path.join(dir, 'private', 'intermediate.key'))));
const loadTimes: number[] = [];
for (let r = 0; r < rounds; r++) {
  const [set, ms] = time(() => {
    const crl = parseCrl(der);
    if (!verifyCrlSignature(crl, pub)) throw new Error('signature');
    return crl.revokedSerials();
  });
  if (set.size !== N) throw new Error('lost entries');
  loadTimes.push(ms);
}
// OpenSSL loading the same CRL into a TLS context (the `crl` option)
const pem = pemEncode('X509 CRL', der);
const rootCrl = fs.readFileSync(path.join(dir, 'crl', 'root.crl'));
const ctxTimes: number[] = [];
for (let r = 0; r < rounds; r++) ctxTimes.push(time(() => tls.createSecureContext({ ca: fs.readFileSync(path.join(dir, 'root.crt')), crl: [pem, rootCrl] }))[1]);

// openssl ca -gencrl on the same entries
const ossl = path.join(dir, 'openssl-ca');
fs.mkdirSync(ossl);
const utc = (d: Date) => d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
const expiry = utc(new Date(now.getTime() + 86_400_000));
fs.writeFileSync(
  path.join(ossl, 'index.txt'),
  entries.map((e, i) => `R\t${expiry}\t${utc(e.revokedAt)}${e.reason === 'unspecified' ? '' : `,${e.reason}`}\t${e.serial.toUpperCase()}\tunknown\t/CN=u${i}\n`).join(''),
);
fs.writeFileSync(path.join(ossl, 'crlnumber'), '02\n');
fs.writeFileSync(
  path.join(ossl, 'ca.cnf'),
  `[ca]\ndefault_ca = d\n[d]\ndatabase = ${ossl}/index.txt\ncrlnumber = ${ossl}/crlnumber\ncertificate = ${dir}/intermediate.crt\nprivate_key = ${dir}/private/intermediate.key\ndefault_md = sha256\ndefault_crl_days = 7\ncrl_extensions = ext\n[ext]\nauthorityKeyIdentifier = keyid:always\n`,
);
const osslTimes: number[] = [];
let osslSize = 0;
for (let r = 0; r < rounds; r++) {
  fs.writeFileSync(path.join(ossl, 'crlnumber'), '02\n');
  const t0 = performance.now();
  const p = spawnSync('openssl', ['ca', '-gencrl', '-config', path.join(ossl, 'ca.cnf'), '-out', path.join(ossl, 'crl.pem')], { encoding: 'utf8' });
  osslTimes.push(performance.now() - t0);
  if (p.status !== 0) throw new Error(`openssl ca: ${p.stderr}`);
  spawnSync('openssl', ['crl', '-in', path.join(ossl, 'crl.pem'), '-outform', 'DER', '-out', path.join(ossl, 'crl.der')]);
  osslSize = fs.statSync(path.join(ossl, 'crl.der')).size;
}

const s = median(signTimes);
const o = median(osslTimes);
console.log(`bench/crl: ${N} entries, median of ${rounds} rounds (node ${process.version})`);
console.log(`sign    mcp-mtls ${s.toFixed(1).padStart(8)} ms   openssl ca -gencrl ${o.toFixed(1).padStart(8)} ms (process included)   ratio ${(o / s).toFixed(1)}x faster`);
console.log(`load    mcp-mtls ${median(loadTimes).toFixed(1).padStart(8)} ms   OpenSSL TLS context ${median(ctxTimes).toFixed(1).padStart(7)} ms   ratio ${(median(ctxTimes) / median(loadTimes)).toFixed(2)}x  (parse + verify + serial set)`);
console.log(`size    mcp-mtls ${der.length} bytes   openssl ${osslSize} bytes`);
fs.rmSync(dir, { recursive: true, force: true });
