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
 * - stealing renames the stale directory away first, so only one contender wins;
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
 * The lock as judged stale (its owner's token; undefined for a lock without an owner file), or
 * undefined when it is not stale. The judgement is of the lock read now: by the time a contender
 * acts on it, that lock may have been released and another taken (see steal).
 */
function staleLock(lockDir: string, foreignStaleMs: number): { token: string | undefined } | undefined {
  const owner = readOwner(lockDir);
  let age: number;
  try {
    age = Date.now() - fs.statSync(lockDir).mtimeMs;
  } catch {
    return undefined; // gone already: just retry
  }
  const judged = { token: owner?.token };
  if (!owner) return age > 10_000 ? judged : undefined; // a contender between mkdir and writing its owner file, or one that died there
  if (owner.host === os.hostname()) return alive(owner.pid) ? undefined : judged;
  return age > foreignStaleMs ? judged : undefined;
}

function tryAcquire(lockDir: string, token: string): boolean {
  try {
    fs.mkdirSync(lockDir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new MtlsError('IO_ERROR', `cannot create the lock ${lockDir}: ${(e as Error).message}`, {
      cause: e,
      hint: 'check that the CA folder exists and is writable (not on a read-only mount)',
    });
  }
  const owner: Owner = { pid: process.pid, host: os.hostname(), token, since: new Date().toISOString() };
  fs.writeFileSync(path.join(lockDir, OWNER), JSON.stringify(owner), { mode: 0o600 });
  return true;
}

/**
 * Takes the stale lock `judged` away. The folder there may no longer be that lock: its owner
 * released it after staleLock read it and another process took the lock (a dead pid's lock
 * judged stale, then gone and made again by a live one: seen as "lock was lost" in ten
 * concurrent revokes under load). No rename compares before it moves, so the folder is moved
 * aside first (atomic: one contender wins) and its owner read again there: a lock other than the
 * one judged goes back at once. Should another process have made the lock in that instant, the
 * live owner's assertHeld finds its lock lost before it commits anything.
 */
function steal(lockDir: string, judged: { token: string | undefined }): void {
  const aside = `${lockDir}.stale-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(lockDir, aside);
  } catch {
    return; // another contender moved it first
  }
  if (readOwner(aside)?.token !== judged.token) {
    try {
      fs.renameSync(aside, lockDir);
      return;
    } catch {
      // the lock was made again meanwhile: the one moved aside is lost to its owner (see above)
    }
  }
  fs.rmSync(aside, { recursive: true, force: true });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function acquireLock(lockDir: string, options: LockOptions = {}): Promise<HeldLock> {
  const waitMs = options.waitMs ?? 60_000;
  const foreignStaleMs = options.foreignStaleMs ?? 10 * 60_000;
  const token = crypto.randomBytes(16).toString('hex');
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; !tryAcquire(lockDir, token); attempt++) {
    const stale = staleLock(lockDir, foreignStaleMs);
    if (stale) {
      steal(lockDir, stale);
      continue;
    }
    if (Date.now() > deadline) {
      const owner = readOwner(lockDir);
      throw new MtlsError('STORE_LOCKED', `the CA store is locked by another process${owner ? ` (pid ${owner.pid} on ${owner.host} since ${owner.since})` : ''}`, {
        hint: `wait for the other mcp-mtls command to finish; if no such process exists, remove ${lockDir}`,
      });
    }
    await sleep(Math.min(50, 2 + attempt) * (0.5 + Math.random()));
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
