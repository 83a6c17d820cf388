/** Test helpers for profiles (#22): a CA created days ago, and a profile whose certificate has expired since. */
import fs from 'node:fs';
import path from 'node:path';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { privateKeyPem } from '../../src/x509/keys.js';
import { pemEncode } from '../../src/x509/pem.js';
import { YEAR, type TestCa } from './ca-serve.js';
import { tmpDir } from './cli.js';

/** Replaces the profile's certificate with one of the same principal that expired an hour ago (issued by a CA clock two days back). */
export async function expireProfile(t: TestCa, bundleFile: string, id: string, kind: 'user' | 'service' = 'service'): Promise<void> {
  const past = Authority.open(t.dir, { now: () => new Date(Date.now() - 2 * 86_400_000) });
  try {
    const issued = await past.issueClient({ kind, id, teams: [], roles: [], ttlMs: 3_600_000 });
    const text = fs.readFileSync(bundleFile, 'utf8');
    const indent = (s: string) => s.trimEnd().split('\n').map((l) => `  ${l}`).join('\n');
    const next = text
      .replace(/certificate: \|-?\n((?: {2}.*\n)+)/, () => `certificate: |\n${indent(issued.chainPem)}\n`)
      .replace(/key: \|-?\n((?: {2}.*\n)+)/, () => `key: |\n${indent(privateKeyPem(issued.key!.pkcs8))}\n`);
    fs.writeFileSync(bundleFile, next, { mode: 0o600 });
  } finally {
    await past.store.close();
  }
}

/** A CA as makeCa makes it, created `days` ago: so that a certificate that has expired since can be issued under it. */
export function caMadeDaysAgo(days: number): TestCa {
  const base = tmpDir('ca-serve-');
  const dir = path.join(base, 'acme.test');
  initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR, now: new Date(Date.now() - days * 86_400_000) });
  const ca = Authority.open(dir);
  const file = (name: string, text: string) => {
    fs.writeFileSync(path.join(base, name), text);
    return path.join(base, name);
  };
  const inter = pemEncode('CERTIFICATE', ca.intermediateDer);
  return { dir, ca, rootPem: ca.rootPem, rootFile: file('root.pem', ca.rootPem), intermediateFile: file('intermediate.pem', inter), chainFile: file('chain.pem', ca.rootPem + inter) };
}
