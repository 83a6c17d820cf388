/**
 * A cross-process lock on a folder, for the CA store.
 *
 * Written here instead of using proper-lockfile (tried first): that library keeps a lock
 * alive by refreshing its mtime from a timer, and decides staleness by age. A long
 * synchronous transaction (a 30,000-row batch: seconds of signing and fsync without
 * yielding) starves the timer, and a second process took the "stale" lock mid-batch in
 * review. Here the lock is a directory created atomically (mkdir), holding an owner file
 * with pid, host and a random token:
 * - on the same host, a lock whose pid is dead is stale at once (kill -9 costs nothing);
 *   a live owner is never robbed, however long it runs;
 * - from another host (a shared folder), age decides, with a generous limit;
 * - stealers take turns (a second lock) and judge again before they remove, so a lock
 *   released and taken again since it was judged stale is never removed;
 * - `assertHeld` re-reads the token before a commit, so a lock lost anyway is detected
 *   before anything is written.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MtlsError } from '../errors.js';

export interface LockOptions {
  /** how long to wait for a held lock before giving up */
  readonly waitMs?: number;
  /** when the owner is on another host: age after which the lock is stale */
  readonly foreignStaleMs?: number;
}

export interface HeldLock {
  /** throws STORE_LOCKED if the lock is no longer ours */
  assertHeld(): void;
  release(): void;
}

interface Owner {
  pid: number;
  host: string;
  token: string;
  since: string;
}

const OWNER = 'owner.json';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function readOwner(lockDir: string): Owner | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(lockDir, OWNER), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

/**
 * Whether the lock there now is stale. The judgement is of the lock read now: by the time a
 * contender acts on it, that lock may have been released and another taken (see steal).
 */
function staleLock(lockDir: string, foreignStaleMs: number): boolean {
  const owner = readOwner(lockDir);
  let age: number;
  try {
    age = Date.now() - fs.statSync(lockDir).mtimeMs;
  } catch {
    return false; // gone already: just retry
  }
  if (!owner) return age > 10_000; // a contender between mkdir and writing its owner file, or one that died there
  if (owner.host === os.hostname()) return !alive(owner.pid);
  return age > foreignStaleMs;
}

function lockIoError(dir: string, e: unknown): MtlsError {
  return new MtlsError('IO_ERROR', `cannot create the lock ${dir}: ${(e as Error).message}`, {
    cause: e,
    hint: 'check that the CA folder exists and is writable (not on a read-only mount)',
  });
}

function tryAcquire(lockDir: string, token: string): boolean {
  try {
    fs.mkdirSync(lockDir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw lockIoError(lockDir, e);
  }
  const owner: Owner = { pid: process.pid, host: os.hostname(), token, since: new Date().toISOString() };
  fs.writeFileSync(path.join(lockDir, OWNER), JSON.stringify(owner), { mode: 0o600 });
  return true;
}

/**
 * Takes a stale lock away, judging it again under a second lock (`<lock>.steal`) that every
 * stealer takes first. The judgement made outside it may be old: the stale lock may have gone
 * since and a live process taken the lock (seen as "lock was lost" in ten concurrent revokes
 * under load), and no rename compares before it moves, so removing what is there now could rob
 * that process. Under the steal lock the judgement stands until the removal: only a stealer
 * removes a dead owner's lock, and stealers take turns. (Putting back a live lock moved aside
 * by mistake, tried first, lost it for good when its owner released it in that window, and
 * could replace a newcomer's lock: review of 45f6feb.) Left by a stealer that died, the steal
 * lock is itself stale after STEAL_STALE_MS; the steal takes microseconds.
 */
function steal(lockDir: string, foreignStaleMs: number): void {
  const mutex = `${lockDir}.steal`;
  try {
    fs.mkdirSync(mutex, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw lockIoError(mutex, e);
    try {
      if (Date.now() - fs.statSync(mutex).mtimeMs > STEAL_STALE_MS) fs.rmdirSync(mutex);
    } catch {
      // gone meanwhile: the other stealer is done
    }
    return; // another contender is stealing: look again
  }
  try {
    if (!staleLock(lockDir, foreignStaleMs)) return; // released meanwhile, or taken by a live process
    const aside = `${lockDir}.stale-${crypto.randomBytes(4).toString('hex')}`;
    try {
      fs.renameSync(lockDir, aside); // atomic for those who look: the lock is there whole, or gone
    } catch {
      return;
    }
    fs.rmSync(aside, { recursive: true, force: true });
  } finally {
    fs.rmSync(mutex, { recursive: true, force: true });
  }
}

const STEAL_STALE_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function acquireLock(lockDir: string, options: LockOptions = {}): Promise<HeldLock> {
  const waitMs = options.waitMs ?? 60_000;
  const foreignStaleMs = options.foreignStaleMs ?? 10 * 60_000;
  const token = crypto.randomBytes(16).toString('hex');
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; !tryAcquire(lockDir, token); attempt++) {
    let stealing = false;
    if (staleLock(lockDir, foreignStaleMs)) {
      steal(lockDir, foreignStaleMs);
      if (tryAcquire(lockDir, token)) break;
      stealing = true;
    }
    if (Date.now() > deadline) {
      const owner = readOwner(lockDir);
      throw new MtlsError('STORE_LOCKED', `the CA store is locked by another process${owner ? ` (pid ${owner.pid} on ${owner.host} since ${owner.since})` : ''}`, {
        hint: `wait for the other mcp-mtls command to finish; if no such process exists, remove ${lockDir}`,
      });
    }
    // a contender that found another stealing gives it the moment it needs
    await sleep(stealing ? 1 : Math.min(50, 2 + attempt) * (0.5 + Math.random()));
  }
  const held = () => readOwner(lockDir)?.token === token;
  return {
    assertHeld() {
      if (!held()) {
        throw new MtlsError('STORE_LOCKED', 'the CA store lock was lost during the operation; nothing was committed', { hint: 'run the command again' });
      }
    },
    release() {
      if (held()) fs.rmSync(lockDir, { recursive: true, force: true });
    },
  };
}
