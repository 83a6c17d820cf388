/**
 * The store lock's take-over of a stale lock (src/util/lock.ts steal()), with the interleavings
 * that broke it forced by hooking the fs calls the lock makes: a lock judged stale (a dead pid's)
 * that a live process holds by the time the contender acts must stay that process's, and be
 * released by it for good.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { acquireLock } from '../../src/util/lock.js';

const DEAD_PID = 2 ** 22 - 7; // above pid_max's default: no such process

function tmpLock(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-steal-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'store.lock');
}

function deadOwnerLock(lockDir: string): void {
  fs.mkdirSync(lockDir);
  fs.writeFileSync(path.join(lockDir, 'owner.json'), JSON.stringify({ pid: DEAD_PID, host: os.hostname(), token: 'dead', since: new Date(0).toISOString() }));
}

test('a lock judged stale but taken by a live process since is not taken from it, and its release is final', async (t) => {
  const lockDir = tmpLock(t);
  const owner = path.join(lockDir, 'owner.json');
  const live = await acquireLock(lockDir, { waitMs: 500 });
  // the contender's first read of the owner file sees the dead owner that was there a moment
  // before; the live process releases its lock if the contender moves it aside (the window in
  // which 45f6feb put back a lock whose owner had released it)
  const realRead = fs.readFileSync;
  const realRename = fs.renameSync;
  let stale = true;
  let released = false;
  t.after(() => {
    fs.readFileSync = realRead;
    fs.renameSync = realRename;
  });
  fs.readFileSync = ((p: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    if (stale && String(p) === owner) {
      stale = false;
      return JSON.stringify({ pid: DEAD_PID, host: os.hostname(), token: 'dead', since: new Date(0).toISOString() });
    }
    return (realRead as (...a: unknown[]) => unknown)(p, ...rest);
  }) as typeof fs.readFileSync;
  fs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
    if (String(from) === lockDir && !released) {
      released = true;
      live.release();
    }
    return realRename(from, to);
  }) as typeof fs.renameSync;
  await assert.rejects(acquireLock(lockDir, { waitMs: 300 }), { code: 'STORE_LOCKED' }, 'the contender waits for the live owner');
  assert.equal(stale, false, 'the contender did judge the lock stale (the hook ran)');
  assert.doesNotThrow(() => live.assertHeld(), 'the live owner still holds its lock');
  live.release();
  assert.equal(fs.existsSync(lockDir), false, 'released: the lock is gone');
  const next = await acquireLock(lockDir, { waitMs: 300 });
  next.release();
});

test("a dead pid's lock is taken at once; a steal lock left by a dead stealer is taken after 5 s", async (t) => {
  const lockDir = tmpLock(t);
  deadOwnerLock(lockDir);
  const t0 = Date.now();
  const a = await acquireLock(lockDir, { waitMs: 2000 });
  assert.ok(Date.now() - t0 < 1000, 'at once');
  a.assertHeld();
  a.release();
  deadOwnerLock(lockDir);
  fs.mkdirSync(`${lockDir}.steal`);
  const old = new Date(Date.now() - 6000);
  fs.utimesSync(`${lockDir}.steal`, old, old);
  const b = await acquireLock(lockDir, { waitMs: 2000 });
  b.assertHeld();
  b.release();
  assert.deepEqual(fs.readdirSync(path.dirname(lockDir)), [], 'nothing left beside the lock');
  deadOwnerLock(lockDir);
  fs.mkdirSync(`${lockDir}.steal`); // a stealer at work: the dead lock waits for it
  await assert.rejects(acquireLock(lockDir, { waitMs: 300 }), { code: 'STORE_LOCKED' });
});
