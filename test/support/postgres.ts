/**
 * PostgreSQL for tests: a private throwaway cluster (initdb into a temporary folder owned
 * by the `postgres` user, 127.0.0.1 on a free port, fsync off), one database per test
 * file, stopped at the end. With MCP_MTLS_TEST_PG=postgres://... an existing server is
 * used instead (a database is created there and dropped at the end).
 *
 * No PostgreSQL binaries: the tests FAIL with how to install them, never skip silently.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface TestPostgres {
  /** a fresh database of its own */
  readonly url: string;
  /** another fresh database on the same server */
  newDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** MCP_MTLS_TEST_PG_BIN, else the newest /usr/lib/postgresql/N/bin (Debian), else initdb on the PATH. */
function findBin(): string | undefined {
  const override = process.env.MCP_MTLS_TEST_PG_BIN;
  if (override) return fs.existsSync(path.join(override, 'initdb')) ? override : undefined;
  const base = '/usr/lib/postgresql';
  if (fs.existsSync(base)) {
    const versions = fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(base, versions[0], 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'pg_ctl'))) return dir;
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function createDatabase(adminUrl: string): Promise<string> {
  const name = `mcp_mtls_test_${crypto.randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function dropDatabases(adminUrl: string, urls: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    for (const url of urls) await c.query(`DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

export async function startPostgres(): Promise<TestPostgres> {
  const external = process.env.MCP_MTLS_TEST_PG;
  if (external) {
    const made: string[] = [];
    const newDatabase = async () => {
      const url = await createDatabase(external);
      made.push(url);
      return url;
    };
    const url = await newDatabase();
    return { url, newDatabase, stop: () => dropDatabases(external, made) };
  }
  const bin = findBin();
  if (!bin) {
    throw new Error(
      `PostgreSQL server binaries (initdb, pg_ctl) not found${process.env.MCP_MTLS_TEST_PG_BIN ? ` in MCP_MTLS_TEST_PG_BIN=${process.env.MCP_MTLS_TEST_PG_BIN}` : ' under /usr/lib/postgresql/*/bin or on the PATH'}: the PostgreSQL store tests need them.\n` +
        'Install them with `apt-get update && apt-get install -y postgresql` (Debian/Ubuntu), or set MCP_MTLS_TEST_PG=postgres://user@host:port/db to use a running server.',
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-mtls-pg-'));
  const data = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const as = (cmd: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args));
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    fs.chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  fs.chmodSync(dir, 0o700);
  await as(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const port = await freePort();
  const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB`;
  try {
    await as(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-o', opts, '-w', '-t', '60', 'start']);
  } catch (e) {
    const log = fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8') : '';
    throw new Error(`cannot start the test PostgreSQL: ${(e as Error).message}\n${log}`);
  }
  const admin = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await as(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // a watchdog stops the cluster once this process is gone, however it died (kill -9, a
  // runner's timeout): no server outlives its test
  const pgCtlStop = `${asRoot ? 'runuser -u postgres -- ' : ''}${path.join(bin, 'pg_ctl')} -D ${data} -m immediate stop`;
  spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${pgCtlStop} >/dev/null 2>&1; rm -rf ${dir}`], { detached: true, stdio: 'ignore' }).unref();
  // a test process that exits without its after() hook stops its cluster at once
  process.once('exit', () => {
    if (!stopped) {
      try {
        const pgCtl = [path.join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'];
        if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', ...pgCtl], { stdio: 'ignore' });
        else execFileSync(pgCtl[0] as string, pgCtl.slice(1), { stdio: 'ignore' });
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  });
  return { url: await createDatabase(admin), newDatabase: () => createDatabase(admin), stop };
}
