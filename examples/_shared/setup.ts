/** Shared by the examples: a CA with a server certificate and client bundles, made with the CLI in a temporary folder. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'mcp-mtls.js');

export function mcpMtls(...args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
}

export interface ExamplePki {
  dir: string;
  pki: string;
  serverCert: string;
  serverKey: string;
  /** bundle profile per user */
  bundle(user: string): string;
  cleanup(): void;
}

export function setupPki(trustDomain: string, users: Record<string, string[]>, dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-mtls-example-'))): ExamplePki {
  const pki = path.join(dir, 'pki');
  const certs = path.join(dir, 'certs');
  mcpMtls('ca', 'init', '--dir', pki, '--trust-domain', trustDomain);
  mcpMtls('issue', 'server', '--dir', pki, '--dns', 'localhost', '--ip', '127.0.0.1', '--out', certs);
  for (const [user, claims] of Object.entries(users)) {
    mcpMtls('issue', 'client', '--dir', pki, '--user', user, ...claims, '--out', certs);
    mcpMtls('bundle', path.join(certs, `${user}.crt`), '--dir', pki, '--format', 'profile', '--out', path.join(certs, `${user}.yaml`));
  }
  return {
    dir,
    pki,
    serverCert: path.join(certs, 'localhost.crt'),
    serverKey: path.join(certs, 'localhost.key'),
    bundle: (u) => path.join(certs, `${u}.yaml`),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Prints a check and remembers failures; `done()` sets the exit code. */
export function checker() {
  let failed = 0;
  return {
    check(ok: boolean, what: string) {
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
      if (!ok) failed++;
    },
    done() {
      console.log(failed ? `${failed} check(s) failed` : 'all checks passed');
      process.exitCode = failed ? 1 : 0;
    },
  };
}
