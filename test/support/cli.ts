/** Test helpers: temporary folders, running the real CLI, running openssl. */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** the built CLI; MCP_MTLS_TEST_BIN points a run at a private build (the shared dist/ may be mid-rebuild) */
export const BIN = process.env.MCP_MTLS_TEST_BIN ?? path.join(ROOT, 'bin', 'mcp-mtls.js');

export function tmpDir(prefix = 'mcp-mtls-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `mcp-mtls ARGS` as a user would (the built bin), with a clean environment. */
export function cli(args: string[], options: { env?: Record<string, string>; cwd?: string; input?: string } = {}): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], options);
}

export function run(cmd: string, args: string[], options: { env?: Record<string, string>; cwd?: string; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...options.env };
    const child = spawn(cmd, args, { env, cwd: options.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.stdin.on('error', () => undefined); // a child that exits without reading stdin
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** Runs the CLI and expects exit 0, returning stdout (parsed when --json is among the args). */
export async function cliOk<T = unknown>(args: string[], options: { env?: Record<string, string> } = {}): Promise<T> {
  const r = await cli(args, options);
  if (r.code !== 0) throw new Error(`mcp-mtls ${args.join(' ')} exited ${r.code}\n${r.stderr}${r.stdout}`);
  return (args.includes('--json') ? JSON.parse(r.stdout) : r.stdout) as T;
}

export function openssl(args: string[], input?: string): Promise<RunResult> {
  return run('openssl', args, input === undefined ? {} : { input });
}

export function execText(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout))),
  );
}

/** The second PEM certificate of a chain file (the intermediate), written next to it. */
export function splitChain(chainFile: string): { leaf: string; intermediate: string } {
  const blocks = fs.readFileSync(chainFile, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
  const leaf = `${chainFile}.leaf.pem`;
  const intermediate = `${chainFile}.intermediate.pem`;
  fs.writeFileSync(leaf, blocks[0] ?? '');
  fs.writeFileSync(intermediate, blocks[1] ?? '');
  return { leaf, intermediate };
}

/** A snapshot of every file under a folder (path -> content hash), to prove nothing was written. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!fs.existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = fs.readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

/** A copy of a CA folder with only the keys and config (what `ca init` made): the target of a `ca import`. */
export function bareCopy(pki: string, to: string): string {
  fs.mkdirSync(path.join(to, 'private'), { recursive: true, mode: 0o700 });
  for (const f of ['config.yaml', 'root.crt', 'intermediate.crt', 'private/root.key', 'private/intermediate.key']) fs.copyFileSync(path.join(pki, f), path.join(to, f));
  return to;
}
