/**
 * The folder store's enrollment tokens: tokens.json lists every token made (written whole when
 * one is made or dropped), and each use is a file of its own, tokens-used/<hash>.json
 * (`{ usedAt, usedFor }`), written with the issuance's journal. Until #24's fourth session a use
 * rewrote tokens.json whole, so an enrollment cost more the more tokens were outstanding (ca
 * serve's CPU per POST /sign: 3.2 ms with 400 tokens, 6.3 ms with 4,000); a use is now one small
 * file, and finding a token one Map lookup in tokens.json as last parsed (parsed again only when
 * its inode, size or mtime changed: another process made or dropped a token).
 *
 * A token listed used in tokens.json stays used; a use file makes it used. Whenever tokens.json
 * is written anyway (a token made or dropped) the uses since are folded into it and their files
 * removed, so the files stay few and a version before use files, run on the folder, sees every
 * use but those since the last token was made (docs/operations.md: do not downgrade). A dropped
 * token gets a use file too, which a process still holding the list of before the drop reads.
 * Only the use files of the tokens tokens.json lists unused are read: anything else in
 * tokens-used/ (temporary files of a write a crash cut short, a file named for no token) is not.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MtlsError } from '../../errors.js';
import { fsyncDir, type FileToWrite } from '../../util/atomic-file.js';
import { MODES } from '../layout.js';
import type { StoredToken } from './store.js';

const USE_FILE = /^([0-9a-f]{64})\.json$/;

/** A token's use: when, and for which certificate (none for a dropped token). */
export interface TokenUse {
  readonly usedAt: string;
  readonly usedFor?: string;
}

export class FolderTokens {
  readonly #file: string;
  readonly #usedDir: string;
  /** tokens.json as last parsed, keyed by what its stat says */
  #parsed: { key: string; list: readonly StoredToken[]; byHash: Map<string, StoredToken> } | undefined;
  /** each token's bytes in tokens.json (the file is JSON.stringify(list, null, 1), built from these) */
  readonly #bytes = new WeakMap<StoredToken, Buffer>();

  constructor(dir: string) {
    this.#file = path.join(dir, 'tokens.json');
    this.#usedDir = path.join(dir, 'tokens-used');
  }

  get file(): string {
    return this.#file;
  }

  /** tokens.json as it is: every token made, uses not applied (for making and dropping tokens). */
  raw(): readonly StoredToken[] {
    return this.#read().list;
  }

  /**
   * Every token, its use applied: the use files of the tokens tokens.json lists unused, no
   * other (a file named for no token, whatever it holds, is not read: found in review, a
   * malformed one stopped `revoke --principal` and every enrollment of a token ca serve had not
   * seen). For lists, exports, drops, not per enrollment.
   */
  list(): StoredToken[] {
    const { list } = this.#read();
    const names = this.#useNames();
    if (names.size === 0) return [...list];
    return list.map((t) => {
      const use = t.usedAt === undefined && names.has(`${t.hash}.json`) ? this.#readUse(t.hash) : undefined;
      return use ? withUse(t, use) : t;
    });
  }

  /** The hashes of the tokens `list` has a use file for (to remove once tokens.json says they are used). */
  withUseFiles(list: readonly StoredToken[]): string[] {
    const names = this.#useNames();
    return list.filter((t) => names.has(`${t.hash}.json`)).map((t) => t.hash);
  }

  /** Removes these tokens' use files (their uses are in tokens.json now, or their issuance was undone), one folder fsync. */
  removeUses(hashes: readonly string[]): void {
    if (hashes.length === 0) return;
    for (const h of hashes) fs.rmSync(this.#usePath(h), { force: true });
    fsyncDir(this.#usedDir);
  }

  /** The token with this hash, its use applied: one lookup and one file read. */
  byHash(hash: string): StoredToken | undefined {
    const t = this.#read().byHash.get(hash);
    if (!t || t.usedAt !== undefined) return t;
    const use = this.#readUse(hash);
    return use ? withUse(t, use) : t;
  }

  /** The file that records a use (for writeFilesAtomic, with the journal). */
  useFile(hash: string, use: TokenUse): FileToWrite {
    // made once: its entry in the CA folder durable before any use file in it counts
    if (fs.mkdirSync(this.#usedDir, { recursive: true, mode: 0o700 }) !== undefined) fsyncDir(path.dirname(this.#usedDir));
    return { file: this.#usePath(hash), data: `${JSON.stringify(use)}\n`, mode: MODES.record };
  }

  /** Forgets every use file (an import writes tokens.json whole, with its own uses). */
  clearUses(): void {
    fs.rmSync(this.#usedDir, { recursive: true, force: true });
  }

  /** tokens.json's bytes for `list`: what JSON.stringify(list, null, 1) writes, each unchanged token's part kept from before. */
  listFile(list: readonly StoredToken[]): FileToWrite {
    let data: Buffer;
    if (list.length === 0) data = Buffer.from('[]\n');
    else {
      const parts: Buffer[] = [Buffer.from('[\n')];
      const comma = Buffer.from(',\n');
      list.forEach((t, i) => {
        let part = this.#bytes.get(t);
        if (part === undefined) {
          part = Buffer.from(` ${JSON.stringify(t, null, 1).replaceAll('\n', '\n ')}`, 'utf8');
          this.#bytes.set(t, part);
        }
        if (i > 0) parts.push(comma);
        parts.push(part);
      });
      parts.push(Buffer.from('\n]\n'));
      data = Buffer.concat(parts);
    }
    return { file: this.#file, data, mode: MODES.record };
  }

  /** After `listFile(list)` was written: it is what tokens.json now parses to (a token made does not parse the whole file again). */
  written(list: readonly StoredToken[]): void {
    const st = fs.statSync(this.#file, { bigint: true });
    this.#parsed = { key: statKey(st), list, byHash: new Map(list.map((t) => [t.hash, t])) };
  }

  #usePath(hash: string): string {
    // the hash names a file: only the 64 hex digits tokenHash makes
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new MtlsError('BAD_ARGUMENT', 'an enrollment token hash is 64 hex digits');
    return path.join(this.#usedDir, `${hash}.json`);
  }

  #read(): { list: readonly StoredToken[]; byHash: Map<string, StoredToken> } {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(this.#file, { bigint: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { list: [], byHash: new Map() };
      throw e;
    }
    // tokens.json is only ever replaced by a rename: a change is a new inode, and size and
    // mtime (nanoseconds) besides
    const key = statKey(st);
    if (this.#parsed?.key === key) return this.#parsed;
    let list: StoredToken[];
    try {
      const parsed = JSON.parse(fs.readFileSync(this.#file, 'utf8')) as unknown;
      if (!Array.isArray(parsed)) throw new Error('not a list');
      list = parsed as StoredToken[];
    } catch (cause) {
      throw new MtlsError('STORE_CORRUPT', `${this.#file} is not a JSON list of tokens`, { cause, hint: 'restore tokens.json from backup (or remove it: every unused token is then void)' });
    }
    this.#parsed = { key, list, byHash: new Map(list.map((t) => [t.hash, t])) };
    return this.#parsed;
  }

  #readUse(hash: string): TokenUse | undefined {
    let text: string;
    try {
      // not through a symlink: the file is the store's own, renamed into place
      const fd = fs.openSync(this.#usePath(hash), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        text = fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // a folder or a symlink where a use file should be: someone else put it there
      throw new MtlsError('STORE_CORRUPT', `tokens-used/${hash}.json cannot be read as a token's use (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { cause: e, hint: 'restore the CA folder from backup' });
    }
    return parseUse(text, hash);
  }

  #useNames(): Set<string> {
    try {
      return new Set(fs.readdirSync(this.#usedDir).filter((n) => USE_FILE.test(n)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw e;
    }
  }
}

const statKey = (st: fs.BigIntStats) => `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

function parseUse(text: string, hash: string): TokenUse {
  try {
    const u = JSON.parse(text) as { usedAt?: unknown; usedFor?: unknown };
    if (typeof u.usedAt !== 'string' || (u.usedFor !== undefined && typeof u.usedFor !== 'string')) throw new Error('not { usedAt, usedFor }');
    return { usedAt: u.usedAt, ...(u.usedFor !== undefined ? { usedFor: u.usedFor } : {}) };
  } catch (cause) {
    // a torn write cannot leave this (the file is renamed into place whole): someone edited it
    throw new MtlsError('STORE_CORRUPT', `tokens-used/${hash}.json is not a token's use`, { cause, hint: 'restore the CA folder from backup' });
  }
}

/** `t` used as `use` says */
export const withUse = (t: StoredToken, use: TokenUse): StoredToken => ({ ...t, usedAt: use.usedAt, ...(use.usedFor !== undefined ? { usedFor: use.usedFor } : {}) });
