/**
 * Watching the CRL files a server was started with (`crlFiles`, recorded by tlsFromPki): when
 * one changes, all are read again and handed to `apply` (the listener's reloadCrls path).
 *
 * - fs.watch on each file's folder (a file replaced by rename, as the CLI writes CRLs, is a
 *   new inode: watching the file itself would miss it), plus a poll of the files' size, mtime
 *   and inode every `pollMs` for file systems where fs.watch says nothing (network mounts);
 * - debounced (`debounceMs`), so a burst of writes is read once;
 * - a file that cannot be read or does not verify (`apply` throws: a partial write, another
 *   CA's CRL) is logged and changes nothing: the last good CRLs stay in effect;
 * - `stop()` closes the watchers and the poll; neither keeps the process alive.
 */
import fs from 'node:fs';
import path from 'node:path';

/** How often the CRL files are polled when fs.watch says nothing: a new CRL applies within about this long. */
export const CRL_FILES_POLL_MS = 2000;
/** A changed CRL file is applied within this many seconds (the poll, the debounce, rounded up): what the CLI tells operators. */
export const CRL_FILES_APPLY_WITHIN_S = 3;

export interface CrlFilesWatcher {
  stop(): void;
}

export function watchCrlFiles(
  files: readonly string[],
  apply: (crls: Buffer[]) => void,
  log: (message: string) => void,
  { pollMs = CRL_FILES_POLL_MS, debounceMs = 100 }: { pollMs?: number; debounceMs?: number } = {},
): CrlFilesWatcher {
  const stamp = () =>
    files
      .map((f) => {
        try {
          const s = fs.statSync(f);
          return `${s.ino}:${s.size}:${s.mtimeMs}`;
        } catch {
          return '-';
        }
      })
      .join('|');
  let last = stamp();
  let timer: NodeJS.Timeout | undefined;
  const reload = () => {
    timer = undefined;
    const now = stamp();
    if (now === last) return;
    last = now;
    let crls: Buffer[];
    try {
      crls = files.map((f) => fs.readFileSync(f));
    } catch (e) {
      log(`CRL files changed but cannot be read, keeping the last good CRLs: ${(e as Error).message}`);
      return;
    }
    try {
      apply(crls);
    } catch (e) {
      log(`CRL files changed but are refused, keeping the last good CRLs: ${(e as Error).message}`);
    }
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
    timer.unref();
  };
  const names = new Set(files.map((f) => path.resolve(f)));
  const watchers = [...new Set([...names].map((f) => path.dirname(f)))].flatMap((dir) => {
    try {
      const w = fs.watch(dir, (_event, name) => {
        if (!name || names.has(path.join(dir, name.toString()))) soon();
      });
      w.on('error', () => undefined); // the folder went away: the poll still sees the files
      w.unref();
      return [w];
    } catch {
      return []; // cannot watch the folder: the poll alone
    }
  });
  const poll = setInterval(() => {
    if (stamp() !== last) soon();
  }, pollMs);
  poll.unref();
  return {
    stop() {
      clearTimeout(timer);
      clearInterval(poll);
      for (const w of watchers) w.close();
    },
  };
}
