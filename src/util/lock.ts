/**
 * A cross-process lock on a path, for the CA store and the client's profile files.
 *
 * Written here instead of using proper-lockfile (tried first): that library keeps a lock
 * alive by refreshing its mtime from a timer, and decides staleness by age. A long
 * synchronous transaction (a 30,000-row batch: seconds of signing and fsync without
 * yielding) starves the timer, and a second process took the "stale" lock mid-batch in
 * review. Node has no flock(), so the lock is a file, and what makes it safe is how it is
 * made, held and taken away:
 *
 * - **made whole, never replacing**: the owner (pid, host, random token) is written to a file
 *   of its own, which is then hard-linked to the lock's name; link() fails if the name exists,
 *   so there is no moment where the lock exists without its owner, and no way to overwrite one;
 * - **held by inode**: the owner keeps the file open; it holds the lock while the lock's name
 *   is that same file (`assertHeld`, before every commit). Its release writes `released` into
 *   the file (through its descriptor: whatever name the file has then, it says so) and removes
 *   the name if it is still its file;
 * - **stale**: released; or, on the same host, its pid is dead (kill -9 costs nothing, a live
 *   owner is never robbed however long it runs), or is another process's now (its start time
 *   differs: the pid reused), or the lock is from before the last boot; from another host (a
 *   shared folder), from another pid namespace on the same host (a container with the host's
 *   name, where kill(pid, 0) cannot see the owner), or unreadable (another user's), older than
 *   a generous limit;
 * - **taken away**: a contender renames the stale lock aside (atomic: one contender wins),
 *   judges the file it moved again, and removes it only if it is still stale. The judgement
 *   made before may be old: that lock may have been released and another taken since (seen as
 *   "lock was lost" in ten concurrent revokes under load). A live lock moved by mistake is put
 *   back with link(), which never replaces a lock someone made meanwhile (its owner then finds
 *   its lock lost before it commits anything), and, being the same file, is still held by its
 *   owner; if the owner released it meanwhile, it says `released` and the next contender clears
 *   it. (Two designs before this one, a directory lock put back with rename(), could freeze a
 *   lock for good or leave two holders: review of 45f6feb and bc890b4.)
 *
 * A lock made by an earlier version of this module is a directory with `owner.json`; it is
 * judged the same way and taken away when stale. The earlier version cannot read this one's
 * file and takes it after 10 s, so every process on a store is upgraded together
 * (docs/operations.md). The window that is left: a contender acting on an old judgement moves a
 * live lock aside, and a third process makes the lock in the microseconds before it is put
 * back; its owner finds the lock lost at its next assertHeld (the store checks before it
 * recovers, before its commit point and before an import's index), not before writes already
 * under way. Closing it needs a kernel lock (flock), which Node does not have.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
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
  /** Linux: the kernel's boot id, the pid namespace and the process's start time (clock ticks since boot) */
  boot?: string;
  pidns?: string;
  start?: string;
}

const RELEASED = 'released';
/** a lock file this process cannot read (another user's, say): held by someone, judged by age */
const UNREADABLE = 'unreadable';

function readOr(file: string, how: (f: string) => string): string | undefined {
  try {
    return how(file).trim();
  } catch {
    return undefined;
  }
}

/** The process's start time from /proc (field 22 of stat, after the command name's closing parenthesis). */
function startOf(pid: number): string | undefined {
  const stat = readOr(`/proc/${pid}/stat`, (f) => fs.readFileSync(f, 'utf8'));
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/**
 * Where this process runs, beyond its hostname: two containers (or a container and its host)
 * can share a hostname and a folder with separate pid namespaces, where kill(pid, 0) says a live
 * owner is dead; a pid reused after a reboot or by another process says a dead owner is alive.
 */
const here = { boot: readOr('/proc/sys/kernel/random/boot_id', (f) => fs.readFileSync(f, 'utf8')), pidns: readOr('/proc/self/ns/pid', fs.readlinkSync), start: startOf(process.pid) };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** The owner a lock file (or an earlier version's lock directory) names; 'released', 'unreadable', or undefined when there is none (yet). */
function readOwner(lockPath: string): Owner | typeof RELEASED | typeof UNREADABLE | undefined {
  let text: string;
  let directory = false;
  try {
    directory = fs.statSync(lockPath).isDirectory();
    text = directory ? fs.readFileSync(`${lockPath}/owner.json`, 'utf8') : fs.readFileSync(lockPath, 'utf8');
  } catch (e) {
    return !directory && (e as NodeJS.ErrnoException).code === 'EACCES' ? UNREADABLE : undefined;
  }
  if (text === '' || text.startsWith(RELEASED)) return RELEASED; // '' only while a release writes its mark
  try {
    return JSON.parse(text) as Owner;
  } catch {
    return undefined;
  }
}

/**
 * Whether the lock at `lockPath` now is stale. The judgement is of the lock read now: by the
 * time a contender acts on it, that lock may have been released and another taken (see steal).
 */
function staleLock(lockPath: string, foreignStaleMs: number): boolean {
  let age: number;
  try {
    age = Date.now() - fs.statSync(lockPath).mtimeMs;
  } catch {
    return false; // gone already: just retry
  }
  const owner = readOwner(lockPath);
  if (owner === RELEASED) return true;
  if (owner === UNREADABLE) return age > foreignStaleMs;
  // none: an earlier version's directory between its mkdir and its owner file, or one that died there
  if (!owner) return age > 10_000;
  if (owner.host !== os.hostname()) return age > foreignStaleMs;
  if (owner.boot && here.boot && owner.boot !== here.boot) return true; // made before this machine's last boot
  if (owner.pidns && here.pidns && owner.pidns !== here.pidns) return age > foreignStaleMs; // another container
  if (!alive(owner.pid)) return true;
  // a live pid that is another process than the owner (the pid reused)
  const start = owner.start !== undefined ? startOf(owner.pid) : undefined;
  return start !== undefined && start !== owner.start;
}

/** Takes the stale lock at `lockPath` away, unless what is there by then is not stale (see the module's comment). */
function steal(lockPath: string, foreignStaleMs: number): void {
  const aside = `${lockPath}.stale-${crypto.randomBytes(6).toString('hex')}`;
  try {
    fs.renameSync(lockPath, aside);
  } catch {
    return; // another contender moved it first
  }
  const directory = fs.statSync(aside, { throwIfNoEntry: false })?.isDirectory() === true;
  if (!staleLock(aside, foreignStaleMs)) {
    try {
      // a live lock: back, as the same file, unless someone made the lock meanwhile (link never
      // replaces; an earlier version's directory goes back with rename, which does not replace
      // a lock file either)
      if (directory) fs.renameSync(aside, lockPath);
      else fs.linkSync(aside, lockPath);
    } catch {
      // its owner finds it lost at its next assertHeld, before it commits anything
    }
  }
  if (!directory) fs.rmSync(aside, { force: true });
  else if (fs.existsSync(aside)) fs.rmSync(aside, { recursive: true, force: true });
}

function lockIoError(lockPath: string, e: unknown): MtlsError {
  return new MtlsError('IO_ERROR', `cannot create the lock ${lockPath}: ${(e as Error).message}`, {
    cause: e,
    hint: 'check that the CA folder exists and is writable (not on a read-only mount)',
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits `ms` without yielding (assertHeld is synchronous: it runs right before a commit). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export async function acquireLock(lockPath: string, options: LockOptions = {}): Promise<HeldLock> {
  const waitMs = options.waitMs ?? 60_000;
  const foreignStaleMs = options.foreignStaleMs ?? 10 * 60_000;
  const token = crypto.randomBytes(16).toString('hex');
  // the owner's own file, written whole before it becomes the lock
  const mine = `${lockPath}.new-${token}`;
  let fd: number | undefined;
  try {
    // readable by all (it holds no secret): a contender running as another user must see a live owner
    fd = fs.openSync(mine, 'wx', 0o644);
    const owner: Owner = { pid: process.pid, host: os.hostname(), token, since: new Date().toISOString(), ...(here.boot ? { boot: here.boot } : {}), ...(here.pidns ? { pidns: here.pidns } : {}), ...(here.start ? { start: here.start } : {}) };
    fs.writeSync(fd, JSON.stringify(owner));
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(mine, { force: true });
    throw lockIoError(lockPath, e);
  }
  const tryLink = (): boolean => {
    try {
      fs.linkSync(mine, lockPath);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw lockIoError(lockPath, e); // closed and removed below
    }
  };
  const deadline = Date.now() + waitMs;
  try {
    for (let attempt = 0; !tryLink(); attempt++) {
      let stealing = false;
      if (staleLock(lockPath, foreignStaleMs)) {
        steal(lockPath, foreignStaleMs);
        if (tryLink()) break;
        stealing = true;
      }
      if (Date.now() > deadline) {
        const owner = readOwner(lockPath);
        const who = typeof owner === 'object' ? ` (pid ${owner.pid} on ${owner.host} since ${owner.since})` : '';
        throw new MtlsError('STORE_LOCKED', `the CA store is locked by another process${who}`, {
          hint: `wait for the other mcp-mtls command to finish; if no such process exists, remove ${lockPath}`,
        });
      }
      await sleep(stealing ? 1 : Math.min(50, 2 + attempt) * (0.5 + Math.random()));
    }
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(mine, { force: true });
    throw e;
  }
  fs.rmSync(mine, { force: true }); // the lock's name keeps the file; the descriptor keeps it ours
  const { ino, dev } = fs.fstatSync(fd);
  let released = false;
  const isOurs = () => {
    const st = fs.statSync(lockPath, { throwIfNoEntry: false });
    return st !== undefined && st.ino === ino && st.dev === dev;
  };
  // a contender that moved the lock aside by mistake puts it back within microseconds: a lock
  // missing at that instant is looked for again before it counts as lost
  const held = () => !released && (isOurs() || (!fs.existsSync(lockPath) && (pause(2), isOurs())));
  return {
    assertHeld() {
      if (!held()) {
        throw new MtlsError('STORE_LOCKED', 'the CA store lock was lost during the operation; nothing was committed', { hint: 'run the command again' });
      }
    },
    release() {
      if (released) return;
      released = true;
      // the name first, if it is still our file; then the mark, which the file carries under any
      // name a contender may have given it meanwhile (it then clears it as stale)
      if (isOurs()) {
        // moved to a name of its own first, and removed only if what moved is ours: a contender
        // may have moved ours and another made the lock since the check
        const gone = `${lockPath}.released-${token}`;
        try {
          fs.renameSync(lockPath, gone);
          const st = fs.statSync(gone);
          if (st.ino !== ino || st.dev !== dev) fs.linkSync(gone, lockPath);
        } catch {
          // gone already, or someone made the lock meanwhile: not ours to touch
        }
        fs.rmSync(gone, { force: true });
      }
      try {
        fs.ftruncateSync(fd, 0);
        fs.writeSync(fd, RELEASED, 0);
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}
