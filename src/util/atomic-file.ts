/**
 * Crash-safe file writes: a reader sees the old file or the new one, never a torn one.
 * Modes are set with fchmod after open, so the umask can neither widen nor narrow them.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { MtlsError } from '../errors.js';

function ioError(what: string, file: string, cause: unknown): MtlsError {
  const code = (cause as NodeJS.ErrnoException)?.code;
  if (code === 'EEXIST') {
    return new MtlsError('OUTPUT_EXISTS', `${file} exists already`, { hint: 'move it away or choose another --out', cause });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new MtlsError('IO_ERROR', `cannot ${what} ${file}: permission denied`, { cause, hint: 'check the folder permissions' });
  }
  return new MtlsError('IO_ERROR', `cannot ${what} ${file}: ${(cause as Error)?.message ?? cause}`, { cause });
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface AtomicWriteOptions {
  mode: number;
  /** refuse to replace an existing file, or anything at that path (a dangling symlink too) */
  exclusive?: boolean;
}

export interface FileToWrite extends AtomicWriteOptions {
  file: string;
  data: string | Uint8Array;
}

/** Something is at this path: a file, a folder, or a symlink (even a dangling one). */
export function pathTaken(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Writes one file atomically and durably (see writeFilesAtomic). */
export function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions): void {
  writeFilesAtomic([{ file, data, ...options }]);
}

/**
 * Writes many files atomically and durably: every temporary file, then an fsync of each,
 * then the renames (links when exclusive), then one fsync per folder. Measured on ext4
 * here: 197 µs a file against 363 µs for write-fsync-rename one by one (the first fsync
 * carries most of the others' data), and closing before the fsync cost another reopen.
 */
export function writeFilesAtomic(files: readonly FileToWrite[]): void {
  stageFiles(files).commit();
}

export interface StagedFiles {
  /** moves every staged file into place; a failure names the file */
  commit(): void;
  /** removes whatever is still staged */
  abort(): void;
}

/**
 * The first half of writeFilesAtomic: temporary files written and fsynced beside their
 * targets, nothing visible yet. Lets a caller commit something else (the CA index) in
 * between, and abort without a trace.
 */
export function stageFiles(files: readonly FileToWrite[]): StagedFiles {
  const temps: string[] = [];
  const abort = () => {
    for (const t of temps) if (t) fs.rmSync(t, { force: true });
  };
  try {
    // in chunks, so that the number of open descriptors stays bounded
    for (let i = 0; i < files.length; i += 256) temps.push(...stageChunk(files.slice(i, i + 256)));
  } catch (e) {
    abort();
    throw e;
  }
  return {
    abort,
    commit() {
      files.forEach((f, i) => {
        const tmp = temps[i] as string;
        try {
          if (f.exclusive) {
            fs.linkSync(tmp, f.file); // fails if anything is at the target: never replaces
            fs.unlinkSync(tmp);
          } else {
            fs.renameSync(tmp, f.file);
          }
        } catch (cause) {
          abort();
          throw ioError('write', f.file, cause);
        }
        temps[i] = '';
      });
      for (const dir of new Set(files.map((f) => path.dirname(f.file)))) fsyncDir(dir);
    },
  };
}

function stageChunk(files: readonly FileToWrite[]): string[] {
  const staged: { tmp: string; fd: number | undefined }[] = [];
  try {
    for (const f of files) {
      if (f.exclusive && pathTaken(f.file)) throw ioError('write', f.file, Object.assign(new Error('exists'), { code: 'EEXIST' }));
      // short names: a 250-character target must still leave room for its temporary file
      const tmp = path.join(path.dirname(f.file), `.${crypto.randomBytes(8).toString('hex')}.tmp`);
      let fd: number;
      try {
        fd = fs.openSync(tmp, 'wx', f.mode);
      } catch (cause) {
        throw ioError('write', f.file, cause);
      }
      const entry = { tmp, fd: fd as number | undefined };
      staged.push(entry);
      fs.fchmodSync(fd, f.mode);
      fs.writeFileSync(fd, f.data);
    }
    for (const t of staged) {
      fs.fsyncSync(t.fd as number);
      fs.closeSync(t.fd as number);
      t.fd = undefined;
    }
  } catch (cause) {
    for (const t of staged) {
      if (t.fd !== undefined) fs.closeSync(t.fd);
      fs.rmSync(t.tmp, { force: true });
    }
    throw cause instanceof MtlsError ? cause : ioError('write', files[0]?.file ?? '', cause);
  }
  return staged.map((t) => t.tmp);
}

/**
 * Appends complete lines to a JSON-lines file in one write, then fsyncs. A torn last line
 * left by a crash (no trailing newline) is cut off first, so the file stays line-clean.
 * Callers hold the store lock.
 */
export function appendLines(file: string, lines: readonly string[], mode: number): void {
  if (lines.length === 0) return;
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, mode);
    const size = fs.fstatSync(fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      fs.readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) fs.ftruncateSync(fd, lastNewlineEnd(fd, size));
    } else {
      fs.fchmodSync(fd, mode);
    }
    fs.writeSync(fd, lines.map((l) => `${l}\n`).join(''));
    fs.fsyncSync(fd);
  } catch (cause) {
    throw ioError('append to', file, cause);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function lastNewlineEnd(fd: number, size: number): number {
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const n = fs.readSync(fd, chunk, 0, end - start, start);
    const i = chunk.subarray(0, n).lastIndexOf(0x0a);
    if (i >= 0) return start + i + 1;
    end = start;
  }
  return 0;
}

/** Reads a JSON-lines file: complete lines only (a torn last line is ignored). */
export function readJsonLines<T>(file: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError('read', file, e);
  }
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a torn line
  return lines.map((line, i) => {
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new MtlsError('STORE_CORRUPT', `${file}:${i + 1}: not a JSON line`, {
        hint: 'restore the file from backup; the issued/ folder holds every certificate',
      });
    }
  });
}
