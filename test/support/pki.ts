/** A CA folder with a few certificates, made through the real CLI, for tests that need one. */
import path from 'node:path';
import { cliOk, tmpDir } from './cli.js';

export interface IssuedFiles {
  serial: string;
  principal?: string;
  fingerprint: string;
  notAfter: string;
  files: { cert: string; key?: string; ca: string };
}

export interface TestPki {
  base: string;
  pki: string;
  out: string;
  issue(args: string[]): Promise<IssuedFiles>;
}

export async function makePki(initArgs: string[] = []): Promise<TestPki> {
  const base = tmpDir();
  const pki = path.join(base, 'pki');
  const out = path.join(base, 'out');
  await cliOk(['ca', 'init', '--dir', pki, '--trust-domain', 'acme.test', ...initArgs]);
  return {
    base,
    pki,
    out,
    issue: (args) => cliOk<IssuedFiles>([...args.slice(0, 2), '--dir', pki, ...args.slice(2), ...(args.includes('--out') ? [] : ['--out', out]), '--json']),
  };
}
