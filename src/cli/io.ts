/**
 * Everything the CLI reads from its environment or writes to the terminal: the CA folder,
 * passphrases, output in human or JSON form, and errors with sysexits codes.
 * (Only src/cli prints, reads process.env or exits.)
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { InvalidArgumentError } from 'commander';
import { MtlsError, type ErrorKind } from '../errors.js';
import { assertNoPassword } from '../ca/store/postgres-store.js';
import { terminalSafe } from '../util/terminal-text.js';

export const EXIT: Record<ErrorKind, number> = {
  usage: 64,
  data: 65,
  noinput: 66,
  unavailable: 69,
  cantcreate: 73,
  io: 74,
  permission: 77,
  config: 78,
};
export const EXIT_SOFTWARE = 70;

export function resolveDir(dir: string | undefined): string {
  return dir ?? process.env.MCP_MTLS_PKI_DIR ?? './pki';
}

export interface PassphraseOptions {
  passphraseFile?: string;
}

/**
 * A passphrase from --passphrase-file, MCP_MTLS_PASSPHRASE or a terminal prompt, in that
 * order; never from argv. `confirm` asks twice (for new keys).
 */
export async function readPassphrase(opts: PassphraseOptions, prompt: string, confirm = false, envName = 'MCP_MTLS_PASSPHRASE'): Promise<string> {
  if (opts.passphraseFile) {
    let text: string;
    try {
      text = fs.readFileSync(opts.passphraseFile, 'utf8');
    } catch (cause) {
      throw new MtlsError('FILE_NOT_FOUND', `cannot read passphrase file ${opts.passphraseFile}`, { cause, hint: 'check the path' });
    }
    const pass = text.replace(/\r?\n$/, '');
    if (!pass) throw new MtlsError('BAD_ARGUMENT', `passphrase file ${opts.passphraseFile} is empty`);
    return pass;
  }
  const env = process.env[envName];
  if (env) return env;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new MtlsError(envName === 'MCP_MTLS_PASSPHRASE' ? 'CA_KEY_LOCKED' : 'BUNDLE_PASSWORD', 'a passphrase is needed and there is no terminal to ask', {
      hint: `pass --passphrase-file FILE or set ${envName}`,
    });
  }
  const first = await promptHidden(prompt);
  if (confirm && (await promptHidden('Repeat the passphrase: ')) !== first) {
    throw new MtlsError('BAD_ARGUMENT', 'the passphrases do not match', { hint: 'run the command again' });
  }
  if (!first) throw new MtlsError('BAD_ARGUMENT', 'empty passphrase');
  return first;
}

function promptHidden(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}

/** Prints a command's result: JSON (one object) or the human text. */
export function emit(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : human());
}

/** Reports an error as `error: ...` plus a hint (or JSON on stderr) and returns the exit code. */
export function reportError(e: unknown, json: boolean): number {
  if (e instanceof MtlsError) {
    if (json) {
      process.stderr.write(`${JSON.stringify({ error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } })}\n`);
    } else {
      // a message may quote what a peer sent (an identity provider's error_description, a CA's message)
      process.stderr.write(terminalSafe(`error: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`));
    }
    return EXIT[e.kind];
  }
  const message = (e as Error)?.stack ?? String(e);
  if (json) process.stderr.write(`${JSON.stringify({ error: { code: 'INTERNAL', message: (e as Error)?.message ?? String(e) } })}\n`);
  else process.stderr.write(`error: internal error: ${message}\nhint: this is a bug in mcp-mtls; please report it with the command you ran\n`);
  return EXIT_SOFTWARE;
}

/** A progress bar on stderr, only when stderr is a terminal. */
export function progressBar(label: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (done !== total && now - last < 100) return;
    last = now;
    const width = 30;
    const filled = Math.round((done / total) * width);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${done === total ? '\n' : ''}`);
  };
}

/** The passphrase of a bundle (not of the CA): --passphrase-file, MCP_MTLS_BUNDLE_PASSPHRASE or a prompt. */
export const readBundlePassphrase = (opts: PassphraseOptions, confirm = false): Promise<string> =>
  readPassphrase(opts, 'Bundle passphrase: ', confirm, 'MCP_MTLS_BUNDLE_PASSPHRASE');

export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** For options that take one value: a second `--user bob --user carol` is a usage error, not a silent override. */
export const once =
  (flag: string) =>
  (value: string, previous: string | undefined): string => {
    if (previous !== undefined) throw new InvalidArgumentError(`${flag} was given twice ("${previous}" and "${value}")`);
    return value;
  };

export const STORE_HELP = 'where the CA state lives: postgres://USER@HOST:PORT/DB (default: $MCP_MTLS_STORE, config.yaml `store:`, else the CA folder); password from PGPASSWORD or ~/.pgpass';

/** --store, else $MCP_MTLS_STORE; undefined leaves the choice to config.yaml (default: the CA folder). */
export function storeFlag(o: { store?: string }): string | undefined {
  return o.store ?? (process.env.MCP_MTLS_STORE || undefined);
}

/** What Authority.open needs to reach the store the user chose (see storeFlag). */
export function storeOptions(o: { store?: string }): { storeUrl?: string; storePassword: () => Promise<string | undefined> } {
  const url = storeFlag(o);
  // checked here so that the message names where the URL came from; "folder" is the CA folder
  if (url !== undefined && url !== 'folder') assertNoPassword(url, o.store !== undefined ? '--store' : 'MCP_MTLS_STORE');
  return { ...(url !== undefined ? { storeUrl: url } : {}), storePassword: async () => databasePassword(url) };
}

/**
 * The database password: PGPASSWORD, else the matching line of ~/.pgpass ($PGPASSFILE),
 * read as libpq does (host:port:database:user:password, `*` matches anything, `\` escapes;
 * ignored unless the file is private, 0600). Never from argv.
 */
export function databasePassword(url: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.PGPASSWORD) return env.PGPASSWORD;
  const file = env.PGPASSFILE ?? (env.HOME ? `${env.HOME}/.pgpass` : undefined);
  if (!file) return undefined;
  let text: string;
  try {
    if ((fs.statSync(file).mode & 0o077) !== 0) return undefined;
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let u: URL | undefined;
  try {
    u = url ? new URL(url) : undefined;
  } catch {
    u = undefined;
  }
  const hostParam = u?.searchParams.get('host');
  const host = u?.hostname || env.PGHOST || (hostParam && !hostParam.startsWith('/') ? hostParam : 'localhost');
  const want = [host, u?.port || env.PGPORT || '5432', decodeURIComponent(u?.pathname.slice(1) ?? '') || env.PGDATABASE || '', decodeURIComponent(u?.username ?? '') || env.PGUSER || env.USER || ''];
  if (!want[2]) want[2] = want[3] as string;
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const fields: string[] = [];
    let cur = '';
    for (let i = 0; i < line.length; i++) {
      const ch = line[i] as string;
      if (ch === '\\' && i + 1 < line.length) cur += line[++i];
      else if (ch === ':' && fields.length < 4) {
        fields.push(cur);
        cur = '';
      } else cur += ch;
    }
    fields.push(cur);
    if (fields.length !== 5) continue;
    if (want.every((w, i) => fields[i] === '*' || fields[i] === w)) return fields[4];
  }
  return undefined;
}
