/** Helpers for the `ca serve` tests: a CA in a temporary folder, certificates, an HTTPS client. */
import 'reflect-metadata';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { createCaServer, type CaServer, type CaServerOptions } from '../../src/ca/serve/server.js';
import { privateKeyPem } from '../../src/x509/keys.js';
import { pemEncode } from '../../src/x509/pem.js';
import { writeCrls } from '../../src/ca/revocation.js';
import { migrate, PostgresStore } from '../../src/ca/store/postgres-store.js';
import { tmpDir } from './cli.js';
import { startPostgres } from './postgres.js';

export const YEAR = 365 * 86_400_000;

export interface TestCa {
  dir: string;
  ca: Authority;
  rootPem: string;
  /** root then intermediate, PEM, in a file (for openssl -CAfile) */
  chainFile: string;
  rootFile: string;
  intermediateFile: string;
}

export function makeCa(trustDomain = 'acme.test', base = tmpDir('ca-serve-')): TestCa {
  const dir = path.join(base, trustDomain);
  initCa({ dir, trustDomain, rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
  const ca = Authority.open(dir);
  const rootFile = path.join(base, `${trustDomain}-root.pem`);
  const intermediateFile = path.join(base, `${trustDomain}-intermediate.pem`);
  const chainFile = path.join(base, `${trustDomain}-chain.pem`);
  fs.writeFileSync(rootFile, ca.rootPem);
  fs.writeFileSync(intermediateFile, pemEncode('CERTIFICATE', ca.intermediateDer));
  fs.writeFileSync(chainFile, ca.rootPem + pemEncode('CERTIFICATE', ca.intermediateDer));
  return { dir, ca, rootPem: ca.rootPem, chainFile, rootFile, intermediateFile };
}

export interface Creds {
  cert: string;
  key: string;
  serial: string;
}

export async function clientCreds(ca: Authority, who: { kind?: 'user' | 'service'; id: string; teams?: string[]; roles?: string[]; email?: string; ttlMs?: number }): Promise<Creds> {
  const issued = await ca.issueClient({ kind: who.kind ?? 'user', id: who.id, teams: who.teams ?? [], roles: who.roles ?? [], ...(who.email ? { email: who.email } : {}), ...(who.ttlMs ? { ttlMs: who.ttlMs } : {}) });
  return { cert: issued.chainPem, key: privateKeyPem(issued.key!.pkcs8), serial: issued.record.serial };
}

export async function serverCreds(ca: Authority): Promise<Creds> {
  const issued = await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] });
  return { cert: issued.chainPem, key: privateKeyPem(issued.key!.pkcs8), serial: issued.record.serial };
}

export async function startServer(t: TestCa, options: Partial<CaServerOptions> = {}): Promise<{ server: CaServer; port: number; audit: Record<string, unknown>[]; logs: string[] }> {
  const tls = await serverCreds(t.ca);
  const audit: Record<string, unknown>[] = [];
  const logs: string[] = [];
  const server = createCaServer({ authority: t.ca, cert: tls.cert, key: tls.key, audit: (e) => audit.push(e), log: (m) => logs.push(m), ...options });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, audit, logs };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): { error?: { code: string; message: string; hint?: string }; [k: string]: unknown };
  text(): string;
}

export function request(
  port: number,
  rootPem: string,
  p: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer; creds?: { cert: string; key: string } },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: p.path,
        method: p.method ?? 'GET',
        ca: rootPem,
        agent: false, // a fresh connection (and TLS session) per request: each may carry another certificate
        headers: { ...(p.body !== undefined ? { 'content-length': String(Buffer.byteLength(p.body)) } : {}), ...p.headers },
        ...(p.creds ? { cert: p.creds.cert, key: p.creds.key } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')), text: () => body.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(p.body);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The test CA `t` on the named store: its own folder, or a fresh PostgreSQL (a throwaway server,
 * migrated), with its first CRLs written. `t` with the opened Authority, the CLI's arguments for
 * the same store, and `close()` for both (the store, then the server).
 */
export async function openCaOn(store: 'folder' | 'postgres', t: TestCa): Promise<{ t: TestCa; storeArgs: string[]; close(): Promise<void> }> {
  const pg = store === 'postgres' ? await startPostgres() : undefined;
  if (pg) await migrate(pg.url);
  const ca = pg ? Authority.open(t.dir, { store: new PostgresStore(pg.url) }) : Authority.open(t.dir);
  await writeCrls(ca);
  return {
    t: { ...t, ca },
    storeArgs: pg ? ['--dir', t.dir, '--store', pg.url] : ['--dir', t.dir],
    close: async () => {
      await ca.store.close();
      await pg?.stop();
    },
  };
}
