/**
 * The store lock's take-over of a stale lock (src/util/lock.ts), with the interleavings that
 * broke its earlier designs forced by hooking the fs calls the lock makes: a lock judged stale
 * (a dead pid's) that a live process holds by the time the contender acts stays that process's;
 * its release in the middle of a take-over is final (no lock frozen for good); a lock made by
 * someone else meanwhile is never replaced (never two holders).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { acquireLock } from '../../src/util/lock.js';

const DEAD_PID = 2 ** 22 - 7; // above pid_max's default: no such process
const dead = (token = 'dead') => JSON.stringify({ pid: DEAD_PID, host: os.hostname(), token, since: new Date(0).toISOString() });

function tmpLock(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-steal-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'store.lock');
}

/**
 * Hooks the contender's first read of the lock (it sees the dead owner that was there a moment
 * before) and its rename of the lock aside (`moved` runs right after it, with the aside name).
 */
function staleJudgementThen(t: { after: (fn: () => void) => void }, lockPath: string, moved: (aside: string) => void): { judged: () => boolean } {
  const realRead = fs.readFileSync;
  const realRename = fs.renameSync;
  let judged = false;
  let renamed = false;
  t.after(() => {
    fs.readFileSync = realRead;
    fs.renameSync = realRename;
  });
  fs.readFileSync = ((p: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    if (!judged && String(p) === lockPath) {
      judged = true;
      return dead();
    }
    return (realRead as (...a: unknown[]) => unknown)(p, ...rest);
  }) as typeof fs.readFileSync;
  fs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
    realRename(from, to);
    if (String(from) === lockPath && !renamed) {
      renamed = true;
      moved(String(to));
    }
  }) as typeof fs.renameSync;
  return { judged: () => judged };
}

test('a lock judged stale but held by a live process by then is put back: the contender waits, the owner still holds it and releases it for good', async (t) => {
  const lockPath = tmpLock(t);
  const live = await acquireLock(lockPath, { waitMs: 500 });
  const hook = staleJudgementThen(t, lockPath, () => undefined);
  await assert.rejects(acquireLock(lockPath, { waitMs: 300 }), { code: 'STORE_LOCKED' }, 'the contender waits for the live owner');
  assert.ok(hook.judged(), 'the contender did judge the lock stale (the hook ran)');
  assert.doesNotThrow(() => live.assertHeld(), 'the live owner still holds its lock');
  live.release();
  assert.equal(fs.existsSync(lockPath), false, 'released: the lock is gone');
  (await acquireLock(lockPath, { waitMs: 300 })).release();
});

test('an owner that releases while a contender has its lock aside: the release is final, the contender takes the lock, nothing is frozen', async (t) => {
  const lockPath = tmpLock(t);
  const live = await acquireLock(lockPath, { waitMs: 500 });
  staleJudgementThen(t, lockPath, () => live.release());
  const contender = await acquireLock(lockPath, { waitMs: 1000 });
  contender.assertHeld();
  contender.release();
  assert.deepEqual(fs.readdirSync(path.dirname(lockPath)), [], 'nothing left beside the lock');
  (await acquireLock(lockPath, { waitMs: 300 })).release();
});

test('a lock made by another process while a live one is aside is not replaced: one holder, the other finds its lock lost', async (t) => {
  const lockPath = tmpLock(t);
  const live = await acquireLock(lockPath, { waitMs: 500 });
  const newcomer = JSON.stringify({ pid: process.pid, host: os.hostname(), token: 'newcomer', since: new Date().toISOString() });
  staleJudgementThen(t, lockPath, () => {
    const made = `${lockPath}.newcomer`;
    fs.writeFileSync(made, newcomer);
    fs.linkSync(made, lockPath);
    fs.rmSync(made);
  });
  await assert.rejects(acquireLock(lockPath, { waitMs: 300 }), { code: 'STORE_LOCKED' });
  assert.equal(fs.readFileSync(lockPath, 'utf8'), newcomer, "the newcomer's lock stands");
  assert.throws(() => live.assertHeld(), { code: 'STORE_LOCKED' }, 'the owner whose lock was moved finds it lost before it commits');
  live.release();
  assert.equal(fs.readFileSync(lockPath, 'utf8'), newcomer, "its release leaves the newcomer's lock alone");
});

test("a dead pid's lock, a released one and an earlier version's directory lock of a dead pid are taken at once; a live directory lock is waited for", async (t) => {
  const lockPath = tmpLock(t);
  const takes = async (what: string) => {
    const t0 = Date.now();
    const l = await acquireLock(lockPath, { waitMs: 2000 });
    assert.ok(Date.now() - t0 < 1000, `${what}: at once`);
    l.assertHeld();
    l.release();
  };
  fs.writeFileSync(lockPath, dead());
  await takes("a dead pid's lock");
  fs.writeFileSync(lockPath, 'released');
  await takes('a released lock');
  fs.mkdirSync(lockPath);
  fs.writeFileSync(path.join(lockPath, 'owner.json'), dead());
  await takes("a directory lock of a dead pid");
  assert.deepEqual(fs.readdirSync(path.dirname(lockPath)), [], 'nothing left beside the lock');
  fs.mkdirSync(lockPath);
  fs.writeFileSync(path.join(lockPath, 'owner.json'), JSON.stringify({ pid: process.pid, host: os.hostname(), token: 'old-live', since: new Date().toISOString() }));
  await assert.rejects(acquireLock(lockPath, { waitMs: 300 }), { code: 'STORE_LOCKED' });
  assert.ok(fs.statSync(lockPath).isDirectory(), 'the live directory lock stands');
});

test('who owns a lock is judged by boot, pid namespace and process start, not the pid alone', async (t) => {
  const lockPath = tmpLock(t);
  const me = JSON.parse(await (async () => {
    const l = await acquireLock(lockPath, { waitMs: 300 });
    const text = fs.readFileSync(lockPath, 'utf8');
    l.release();
    return text;
  })()) as { pid: number; host: string; boot?: string; pidns?: string; start?: string };
  assert.ok(me.boot && me.pidns && me.start, `a lock names the boot, the pid namespace and the start time here: ${JSON.stringify(me)}`);
  const lockOf = (o: object) => fs.writeFileSync(lockPath, JSON.stringify({ ...me, token: 'other', since: new Date().toISOString(), ...o }));
  const takenAtOnce = async (what: string) => {
    const t0 = Date.now();
    const l = await acquireLock(lockPath, { waitMs: 2000 });
    assert.ok(Date.now() - t0 < 1000, `${what}: taken at once`);
    l.release();
  };
  // this process's own pid, started at another time: the pid was reused, the owner is dead
  lockOf({ start: '1' });
  await takenAtOnce('a reused pid');
  lockOf({ boot: '00000000-0000-0000-0000-000000000000' });
  await takenAtOnce('a lock from before the last boot');
  // the same hostname and pid in another pid namespace (a container): alive for all we know
  lockOf({ pidns: 'pid:[1]', pid: DEAD_PID });
  await assert.rejects(acquireLock(lockPath, { waitMs: 300 }), { code: 'STORE_LOCKED' }, "another container's lock is not taken for its pid");
  lockOf({});
  await assert.rejects(acquireLock(lockPath, { waitMs: 300 }), { code: 'STORE_LOCKED' }, 'a live owner is waited for');
  fs.rmSync(lockPath);
});
