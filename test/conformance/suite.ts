/**
 * The official MCP conformance suite as this harness runs it: installed with `npm ci` from
 * test/conformance/suite (package.json + package-lock.json: both suite versions under npm aliases,
 * and Node 22, which the suite needs) into a temporary prefix named after the lock file's hash, so
 * a second run reuses it; run as `node --import preload.mjs conformance server --url ... -o DIR`;
 * its results read back from each scenario's checks.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SUITE_PACKAGE = path.join(HERE, 'suite');
export const PRELOAD = path.join(HERE, 'preload.mjs');

export type Revision = '2025-11-25' | '2026-07-28';

export interface Suite {
  node: string;
  version: Record<Revision, string>;
  cli: Record<Revision, string>;
}

/** Installs the locked suite (once per lock file) and returns where its Node and CLIs are. */
export function ensureSuite(log: (line: string) => void): Suite {
  const lock = fs.readFileSync(path.join(SUITE_PACKAGE, 'package-lock.json'));
  const dir = process.env.MCP_MTLS_CONFORMANCE_PREFIX ?? path.join(os.tmpdir(), `mcp-mtls-conformance-${crypto.createHash('sha256').update(lock).digest('hex').slice(0, 12)}`);
  const done = path.join(dir, '.installed');
  if (!fs.existsSync(done)) {
    log(`installing the conformance suite into ${dir} (npm ci)`);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(SUITE_PACKAGE, f), path.join(dir, f));
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`npm ci of the conformance suite failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    fs.writeFileSync(done, new Date().toISOString());
  }
  const node = path.join(dir, 'node_modules', '.bin', 'node');
  const v = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (!v.startsWith('v22.')) throw new Error(`the suite's Node should be 22 (fs.globSync), found ${v || 'none'} at ${node}`);
  const pkg = (rev: Revision) => path.join(dir, 'node_modules', `conformance-${rev}`);
  const version = (rev: Revision) => (JSON.parse(fs.readFileSync(path.join(pkg(rev), 'package.json'), 'utf8')) as { version: string }).version;
  return {
    node,
    version: { '2025-11-25': version('2025-11-25'), '2026-07-28': version('2026-07-28') },
    cli: { '2025-11-25': path.join(pkg('2025-11-25'), 'dist', 'index.js'), '2026-07-28': path.join(pkg('2026-07-28'), 'dist', 'index.js') },
  };
}

export type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';

export interface Check {
  id: string;
  name?: string;
  description?: string;
  status: CheckStatus;
  errorMessage?: string;
  details?: unknown;
}

export interface ScenarioResult {
  scenario: string;
  checks: Check[];
  /** the suite's own verdict: no FAILURE check */
  passed: boolean;
}

export interface SuiteRun {
  results: Map<string, ScenarioResult>;
  stdout: string;
  exitCode: number | null;
}

/** The suite's arguments per revision: every server scenario that applies to it, pending ones included, no extensions. */
export function scenarioArgs(rev: Revision): string[] {
  return rev === '2025-11-25' ? ['--suite', 'all'] : ['--suite', 'all', '--spec-version', '2026-07-28'];
}

/**
 * Runs the suite's server scenarios of one revision against a URL; with `tls`, the suite's fetch
 * presents that client certificate (and trusts that CA) through the preload.
 */
export async function runSuite(suite: Suite, rev: Revision, url: string, outDir: string, tls?: { ca: string; cert?: string; key?: string }, only?: string): Promise<SuiteRun> {
  // 2025-11-25: the suite's raw SSE requests announce the session's version (preload.mjs says why)
  const sessionVersion = rev === '2025-11-25' ? '2025-11-25' : undefined;
  const preload = Boolean(tls || sessionVersion);
  const host = new URL(url).hostname;
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const args = [...(preload ? ['--import', PRELOAD] : []), suite.cli[rev], 'server', '--url', url, ...(only ? ['--scenario', only, ...scenarioArgs(rev).slice(2)] : scenarioArgs(rev)), '-o', outDir];
  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  delete env.NODE_OPTIONS; // the harness's tsx loader is not the suite's
  if (sessionVersion) env.MCP_MTLS_CONFORMANCE_SESSION_VERSION = sessionVersion;
  if (tls) {
    env.MCP_MTLS_CONFORMANCE_CA = tls.ca;
    env.MCP_MTLS_CONFORMANCE_SERVERNAME = host;
    if (tls.cert) env.MCP_MTLS_CONFORMANCE_CERT = tls.cert;
    if (tls.key) env.MCP_MTLS_CONFORMANCE_KEY = tls.key;
  }
  const child = spawn(suite.node, args, { cwd: outDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stdout += d));
  // a hung scenario must not hang CI: the whole run gets a bound, what it wrote is still read
  const limitMs = Number(process.env.MCP_MTLS_CONFORMANCE_RUN_TIMEOUT_MS ?? 600_000);
  const timer = setTimeout(() => {
    stdout += `\n(killed after ${limitMs} ms)\n`;
    child.kill('SIGKILL');
  }, limitMs);
  const exitCode = await new Promise<number | null>((r) => child.once('close', r));
  clearTimeout(timer);
  return { results: readResults(outDir), stdout, exitCode };
}

/** checks.json of each `server-<scenario>-<timestamp>` folder the suite wrote */
export function readResults(outDir: string): Map<string, ScenarioResult> {
  const results = new Map<string, ScenarioResult>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'checks.json') {
        const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(path.basename(dir));
        if (!m) continue;
        const checks = JSON.parse(fs.readFileSync(p, 'utf8')) as Check[];
        results.set(m[1]!, { scenario: m[1]!, checks, passed: !checks.some((c) => c.status === 'FAILURE') });
      }
    }
  };
  walk(outDir);
  return results;
}

/**
 * Scenarios the suite runs with `node:http` (plain http whatever the URL says, to send header
 * bytes fetch would normalise): they reach an https server only through {@link startTlsTunnel}.
 */
export const RAW_HTTP_SCENARIOS: Record<Revision, string[]> = { '2025-11-25': [], '2026-07-28': ['http-header-validation', 'http-custom-header-server-validation'] };

/**
 * A plain-http listener on localhost whose connections are carried byte for byte over TLS to
 * `target`, presenting the client certificate: the raw-header scenarios reach the mTLS server
 * with their bytes unchanged (the Host header names the tunnel, a loopback name).
 */
export async function startTlsTunnel(target: string, files: { ca: string; cert: string; key: string }): Promise<{ url: string; close(): Promise<void> }> {
  const t = new URL(target);
  const ca = fs.readFileSync(files.ca);
  const cert = fs.readFileSync(files.cert);
  const key = fs.readFileSync(files.key);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((plain) => {
    const secure = tls.connect({ host: '127.0.0.1', port: Number(t.port), servername: t.hostname, ca, cert, key });
    sockets.add(plain).add(secure);
    plain.pipe(secure).pipe(plain);
    const end = () => {
      plain.destroy();
      secure.destroy();
      sockets.delete(plain);
      sockets.delete(secure);
    };
    plain.on('error', end).on('close', end);
    secure.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://localhost:${port}${t.pathname}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
