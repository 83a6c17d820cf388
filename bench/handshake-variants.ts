/**
 * bench/handshake-variants: where createMtlsServer's cost per handshake over bare node:https
 * comes from (#24's resumed-handshake row). Each variant is a server process of its own; one
 * client here makes BENCH_HANDSHAKES (default 1000) connections one at a time, resumed then full,
 * BENCH_ROUNDS (default 8) rounds in ABBA order; the figure is the server's CPU per handshake,
 * the median of the rounds after the first two (warm-up), as a ratio to bare node:https:
 *
 *   bare        https.createServer with requestCert, rejectUnauthorized (bench/server's baseline)
 *   opts        the same with this project's TLS options (tlsServerOptions: sessionIdContext of the CAs, no renegotiation)
 *   getsession  bare, plus a 'secureConnection' listener that serializes the session (what the capture reads)
 *   mtls        createMtlsServer (capture, identity, revocation tracking), answering 'ok'
 *
 * `npm run bench:handshake-variants`; BENCH_HANDSHAKES=50 BENCH_ROUNDS=3 is a smoke run.
 */
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { forkBenchChild, serveForBench, type BenchChild } from './child-ipc.js';
const self = fileURLToPath(import.meta.url);
const mode = process.argv[2];
const N = Number(process.env.BENCH_HANDSHAKES ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
if (mode) {
  const dir = process.argv[3]!;
  const read = (n: string) => fs.readFileSync(path.join(dir, n));
  const material = { cert: read('server.crt'), key: read('server.key'), ca: read('root.crt') };
  let server: https.Server;
  if (mode === 'mtls') {
    const { createMtlsServer } = await import('../dist/mtls/mtls-server.js');
    server = createMtlsServer({ ...material, log: () => undefined }, (_req, res) => void res.end('ok'));
  } else {
    const { tlsServerOptions } = await import('../dist/mtls/tls-options.js');
    const opts: https.ServerOptions = mode === 'opts' ? tlsServerOptions({ ...material, rejectUnauthorized: true }) : { ...material, requestCert: true, rejectUnauthorized: true };
    server = https.createServer(opts, (_q, r) => void r.end('ok'));
    if (mode === 'getsession') {
      server.prependListener('secureConnection', (s: tls.TLSSocket) => {
        s.getSession()?.fill(0); // it holds the master secret, as in handshake-certificate.ts
      });
    }
  }
  serveForBench(server);
} else {
  const { benchPki } = await import('./bench-pki.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-handshakes-'));
  const { clientCtx } = await benchPki(dir);
  const modes = ['bare', 'opts', 'getsession', 'mtls'];
  const kids: Record<string, BenchChild> = {};
  for (const m of modes) kids[m] = await forkBenchChild(self, [m, dir]);
  // one connection at a time, each ended at once; resumed: with the session the last one gave
  const handshakes = (port: number, n: number, resume: boolean) =>
    new Promise<void>((resolve, reject) => {
      let session: Buffer | undefined;
      let left = n;
      const one = () => {
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: clientCtx, ...(resume && session ? { session } : {}) });
        s.once('session', (x) => (session = x));
        s.once('secureConnect', () => s.end());
        s.once('close', () => (--left === 0 ? resolve() : one()));
        s.once('error', reject);
      };
      one();
    });
  const res: Record<string, number[]> = {};
  for (const m of modes) {
    await handshakes(kids[m]!.port, Math.min(200, N), true);
    res[m] = [];
    res[`${m} full`] = [];
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of r % 2 ? [...modes].reverse() : modes) {
      for (const resume of [true, false]) {
        const kid = kids[m]!;
        const c0 = await kid.cpuMs();
        await handshakes(kid.port, N, resume);
        res[resume ? m : `${m} full`]!.push(((await kid.cpuMs()) - c0) * 1000 / N);
      }
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const warm = (a: number[]) => (a.length > 2 ? a.slice(2) : a);
  console.log(`bench/handshake-variants: server CPU per handshake, ${N} handshakes a round, median of ${Math.max(1, ROUNDS - 2)} warm rounds (of ${ROUNDS})`);
  for (const kind of ['resumed', 'full']) {
    const key = (m: string) => (kind === 'resumed' ? m : `${m} full`);
    const base = med(warm(res[key('bare')]!));
    for (const m of modes) {
      const v = warm(res[key(m)]!);
      console.log(`${kind.padEnd(8)} ${m.padEnd(11)} ${med(v).toFixed(0).padStart(5)} µs   ${(med(v) / base).toFixed(2)}x bare   rounds: ${res[key(m)]!.map((x) => x.toFixed(0)).join(' ')}`);
    }
  }
  for (const m of modes) kids[m]!.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
