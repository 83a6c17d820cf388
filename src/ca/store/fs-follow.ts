/**
 * The folder store's append-only JSON-lines files (index.jsonl, retired.jsonl) kept in memory:
 * read whole once per process, then, at each use, only the bytes appended since. Nothing is
 * written for it, so it adds nothing to what a crash can leave behind: the file stays the only
 * truth, and what is in memory is always a prefix of it made of complete lines.
 *
 * Another process may append (under the CA folder's lock) or replace the file (tidy and import
 * rewrite it with an atomic rename) at any time. Each use opens the file and checks, on the open
 * descriptor, that it is still the file read before: the same inode, not shorter than what was
 * read, and the last line read still at the same place, byte for byte (a rewrite that removed
 * any line before it moves it; serials are unique, so the same line cannot come back elsewhere).
 * Anything else reads the file again from the start. A line without its newline (an append in
 * progress, or torn by a crash: appendLines cuts it off before the next append) is left for later.
 *
 * Costs per use: open, fstat, one read of the last line's length, close; plus the new lines.
 */
import fs from 'node:fs';
import { MtlsError } from '../../errors.js';

const CHUNK = 8 * 1024 * 1024;

/** What a follower does with the file's lines: start over (the file was replaced), and take one line. */
export interface FollowSink<T> {
  reset(): void;
  add(record: T, lineNumber: number): void;
}

/** Reads a JSON-lines file incrementally into a sink; see the module comment. */
export class JsonLinesFollower<T> {
  readonly #file: string;
  readonly #sink: FollowSink<T>;
  /** false before the first read and after a failed one: the next refresh starts over */
  #valid = false;
  #ino: number | undefined;
  #offset = 0;
  #lines = 0;
  /** the last complete line read, with its newline */
  #last: Buffer | undefined;
  /** bytes of the file read so far, and how many times it was read from the start (for tests) @internal */
  readonly stats = { bytesRead: 0, fullReads: 0 };

  constructor(file: string, sink: FollowSink<T>) {
    this.#file = file;
    this.#sink = sink;
  }

  /** Brings the sink up to the file's complete lines. */
  refresh(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.#file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new MtlsError('IO_ERROR', `cannot read ${this.#file}: ${(e as Error).message}`, { cause: e });
      if (!this.#valid || this.#ino !== undefined) this.#startOver(undefined); // none yet, or removed since
      this.#valid = true;
      return;
    }
    try {
      const st = fs.fstatSync(fd);
      if (!this.#valid || this.#ino !== st.ino || st.size < this.#offset || !this.#lastLineStillThere(fd)) this.#startOver(st.ino);
      this.#readFrom(fd, st.size);
      this.#valid = true;
    } catch (e) {
      this.#valid = false; // whatever was half read: from the start next time
      throw e;
    } finally {
      fs.closeSync(fd);
    }
  }

  #startOver(ino: number | undefined): void {
    this.#ino = ino;
    this.#offset = 0;
    this.#lines = 0;
    this.#last = undefined;
    this.stats.fullReads++;
    this.#sink.reset();
  }

  #lastLineStillThere(fd: number): boolean {
    const last = this.#last;
    if (!last) return this.#offset === 0;
    const here = Buffer.allocUnsafe(last.length);
    const n = fs.readSync(fd, here, 0, last.length, this.#offset - last.length);
    this.stats.bytesRead += n;
    return n === last.length && here.equals(last);
  }

  #readFrom(fd: number, size: number): void {
    let pos = this.#offset;
    let carry = Buffer.alloc(0);
    while (pos < size) {
      const want = Math.min(CHUNK, size - pos);
      const buf = Buffer.allocUnsafe(want);
      const got = fs.readSync(fd, buf, 0, want, pos);
      if (got === 0) break;
      this.stats.bytesRead += got;
      pos += got;
      const data = carry.length ? Buffer.concat([carry, buf.subarray(0, got)]) : buf.subarray(0, got);
      let start = 0;
      let lastStart = -1;
      for (let nl = data.indexOf(0x0a, start); nl >= 0; nl = data.indexOf(0x0a, start)) {
        const text = data.toString('utf8', start, nl);
        let record: T;
        try {
          record = JSON.parse(text) as T;
        } catch {
          throw new MtlsError('STORE_CORRUPT', `${this.#file}:${this.#lines + 1}: not a JSON line`, { hint: 'restore the file from backup; the issued/ folder holds every certificate' });
        }
        this.#lines++;
        this.#sink.add(record, this.#lines);
        lastStart = start;
        start = nl + 1;
      }
      if (lastStart >= 0) {
        this.#last = Buffer.from(data.subarray(lastStart, start));
        this.#offset = pos - (data.length - start);
      }
      carry = Buffer.from(data.subarray(start));
    }
  }
}
