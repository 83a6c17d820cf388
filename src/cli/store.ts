/** `mcp-mtls ca migrate`, `ca export` and `ca import`: moving a CA's state between the folder and PostgreSQL. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Command } from 'commander';
import { Authority } from '../ca/authority.js';
import { FsStore } from '../ca/store/fs-store.js';
import { isDatabaseUrl } from '../ca/store/open.js';
import { assertNoPassword, migrate, PostgresStore, redactUrl, SCHEMA_VERSION } from '../ca/store/postgres-store.js';
import type { StoreSnapshot } from '../ca/store/store.js';
import { parseCrl } from '../x509/crl.js';
import { MtlsError } from '../errors.js';
import { databasePassword, emit, resolveDir, storeFlag } from './io.js';

function databaseUrl(url: string | undefined, flag: string): string {
  if (!url) throw new MtlsError('USAGE', `${flag} postgres://USER@HOST:PORT/DATABASE is needed`, { hint: `pass ${flag}${flag === '--store' ? ' or set MCP_MTLS_STORE' : ''}; the password comes from PGPASSWORD or ~/.pgpass` });
  if (!isDatabaseUrl(url)) throw new MtlsError('USAGE', `${flag}: "${redactUrl(url)}" is not a postgres:// URL`, { hint: 'e.g. postgres://ca@db.internal:5432/mcp_ca' });
  assertNoPassword(url, flag);
  return url;
}

function caFingerprint(dir: string): string {
  return crypto.createHash('sha256').update(Authority.open(dir).rootDer).digest('hex');
}

function counts(s: StoreSnapshot) {
  return {
    certificates: s.index.filter((r) => r.op === 'issue').length,
    revocations: s.index.filter((r) => r.op === 'revoke').length,
    auditEvents: s.audit.length,
    crls: Object.fromEntries(Object.entries(s.crls).map(([k, der]) => [k, String(parseCrl(Buffer.from(der as Uint8Array)).number)])),
    tokens: s.tokens.length,
  };
}

export function registerStore(ca: Command): void {
  ca.command('migrate')
    .description('create or upgrade the PostgreSQL schema of a CA store')
    .option('--store <url>', 'postgres://USER@HOST:PORT/DATABASE (default: $MCP_MTLS_STORE); password from PGPASSWORD or ~/.pgpass')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ PGPASSWORD=... mcp-mtls ca migrate --store postgres://ca@db.internal/mcp_ca')
    .action(async (o) => {
      const url = databaseUrl(storeFlag(o), '--store');
      const r = await migrate(url, { password: async () => databasePassword(url) });
      emit(o.json, { store: redactUrl(url), from: r.from, version: r.to, applied: r.applied }, () =>
        r.applied.length ? `Schema of ${redactUrl(url)} migrated from version ${r.from} to ${r.to}.\n` : `Schema of ${redactUrl(url)} is at version ${r.to} (current).\n`,
      );
    });

  ca.command('export')
    .description("copy a CA folder's state (certificates, revocations, audit, CRLs, tokens) into PostgreSQL")
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .requiredOption('--to <url>', 'postgres://USER@HOST:PORT/DATABASE; password from PGPASSWORD or ~/.pgpass')
    .option('--replace', 'replace what the database holds (default: refuse a database that holds a CA state)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ mcp-mtls ca export --dir ./pki --to postgres://ca@db.internal/mcp_ca\n  then add `store: postgres://ca@db.internal/mcp_ca` to ./pki/config.yaml (or pass --store)')
    .action(async (o) => {
      const url = databaseUrl(o.to, '--to');
      const dir = resolveDir(o.dir);
      const fingerprint = caFingerprint(dir);
      const password = async () => databasePassword(url);
      const started = performance.now();
      const schema = await migrate(url, { password });
      const target = new PostgresStore(url, { password, caFingerprint: fingerprint });
      try {
        if (!o.replace && !(await target.isEmpty())) {
          throw new MtlsError('CA_EXISTS', `${redactUrl(url)} already holds a CA state`, { hint: 'export into an empty database, or pass --replace to overwrite it' });
        }
        const snapshot = await new FsStore(dir).snapshot();
        await target.importAll(snapshot, o.replace === true);
        const c = counts(snapshot);
        const seconds = (performance.now() - started) / 1000;
        emit(o.json, { from: fs.realpathSync(dir), to: redactUrl(url), schemaVersion: schema.to, ...c, seconds }, () =>
          [
            `Exported ${c.certificates} certificates, ${c.revocations} revocations, ${c.auditEvents} audit events, ${Object.keys(c.crls).length} CRLs and ${c.tokens} tokens`,
            `  from ${fs.realpathSync(dir)} to ${redactUrl(url)} (schema ${schema.to}) in ${seconds.toFixed(2)} s`,
            `To use it: add \`store: ${redactUrl(url)}\` to config.yaml, or pass --store / set MCP_MTLS_STORE.`,
            `Once the CA uses the database, the folder's crl/ and index are no longer updated: publish CRLs with \`mcp-mtls crl --out DIR\`.`,
            '',
          ].join('\n'),
        );
      } finally {
        await target.close();
      }
    });

  ca.command('import')
    .description('copy a CA state from PostgreSQL back into a CA folder (which holds the keys and config.yaml)')
    .requiredOption('--from <url>', 'postgres://USER@HOST:PORT/DATABASE; password from PGPASSWORD or ~/.pgpass')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--replace', "replace the folder's certificates and tokens (default: refuse a folder that holds any)")
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ mcp-mtls ca import --from postgres://ca@db.internal/mcp_ca --dir ./pki-copy')
    .action(async (o) => {
      const url = databaseUrl(o.from, '--from');
      const dir = resolveDir(o.dir);
      const source = new PostgresStore(url, { password: async () => databasePassword(url), caFingerprint: caFingerprint(dir) });
      try {
        const started = performance.now();
        const snapshot = await source.snapshot();
        await new FsStore(dir).restore(snapshot, o.replace === true);
        const c = counts(snapshot);
        const seconds = (performance.now() - started) / 1000;
        emit(o.json, { from: redactUrl(url), to: fs.realpathSync(dir), schemaVersion: SCHEMA_VERSION, ...c, seconds }, () =>
          [
            `Imported ${c.certificates} certificates, ${c.revocations} revocations, ${c.auditEvents} audit events, ${Object.keys(c.crls).length} CRLs and ${c.tokens} tokens`,
            `  from ${redactUrl(url)} into ${fs.realpathSync(dir)} in ${seconds.toFixed(2)} s`,
            `The folder store is used unless config.yaml names a store (or --store / MCP_MTLS_STORE is set).`,
            '',
          ].join('\n'),
        );
      } finally {
        await source.close();
      }
    });
}

/**
 * `ca init --store URL`: checks the database before the CA is created (migrated, empty), and
 * afterwards moves the folder's initial state (first CRLs, the ca.init audit line) into it,
 * removing the folder's copies so that nothing reads a CRL that no longer changes.
 */
export async function prepareInitStore(spec: string): Promise<{ url: string; moveState(dir: string): Promise<void> }> {
  const url = databaseUrl(spec, '--store');
  const password = async () => databasePassword(url);
  await migrate(url, { password });
  const probe = new PostgresStore(url, { password });
  try {
    if (!(await probe.isEmpty())) throw new MtlsError('CA_EXISTS', `${redactUrl(url)} already holds a CA state`, { hint: 'give each CA its own empty database' });
  } finally {
    await probe.close();
  }
  return {
    url: redactUrl(url),
    async moveState(dir: string) {
      const folder = new FsStore(dir);
      const target = new PostgresStore(url, { password, caFingerprint: caFingerprint(dir) });
      try {
        await target.importAll(await folder.snapshot(), false);
      } catch (e) {
        throw new MtlsError(e instanceof MtlsError ? e.code : 'STORE_UNAVAILABLE', `the CA was created in ${folder.layout.dir}, but its state could not be written to ${redactUrl(url)}: ${(e as Error).message}`, {
          cause: e,
          hint: `fix the database, then run \`mcp-mtls ca export --dir ${folder.layout.dir} --to ${redactUrl(url)} --replace\``,
        });
      } finally {
        await target.close();
      }
      fs.rmSync(folder.layout.crlDir, { recursive: true, force: true });
      fs.rmSync(folder.layout.audit, { force: true });
    },
  };
}
