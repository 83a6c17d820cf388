/** Live policy reload: see {@link watchPolicy}. */
import fs from 'node:fs';
import path from 'node:path';
import type { CompileOptions, Policy } from '../policy/compile.js';
import { loadPolicy } from './load.js';

/** A policy file being watched, as {@link watchPolicy} returns it. */
export interface PolicyWatcher {
  /** The policy in force: read it per request, never keep it. */
  current(): Policy;
  /**
   * Reloads now, synchronously (also what the watcher does on change), and returns the
   * policy in force. Does nothing when the file's text has not changed; never throws (a
   * failure goes to `onError`).
   */
  reload(): Policy;
  /** Stops watching. `current()` keeps returning the last policy. */
  close(): void;
}

/** Options of {@link watchPolicy}: the {@link CompileOptions} for every load, and callbacks. */
export interface WatchOptions extends CompileOptions {
  /** Called when a new policy is in force. */
  onReload?: (policy: Policy) => void;
  /**
   * Called when the file cannot be read (a Node.js error) or is invalid (an {@link MtlsError}
   * such as `POLICY_INVALID`): `kept` stays in force. The same invalid text is reported once.
   */
  onError?: (error: Error, kept: Policy) => void;
  /** Quiet period after the last change before reloading, in milliseconds; default 100. */
  debounceMs?: number;
}

/**
 * Loads a policy file and keeps it current: watches the file's folder (editors and `mv`
 * replace files, so the file itself is not watched), reloads after changes settle, swaps the
 * compiled policy atomically, and keeps the last good one when the new file is invalid. The
 * watcher does not keep the process alive; call `close()` to stop it.
 *
 * @throws MtlsError as {@link loadPolicy}, when the first load fails (it must succeed)
 */
export function watchPolicy(file: string, options: WatchOptions = {}): PolicyWatcher {
  let policy = loadPolicy(file, options); // the first load must succeed
  let lastText = fs.readFileSync(file, 'utf8');
  const reload = (): Policy => {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      options.onError?.(e as Error, policy);
      return policy;
    }
    if (text === lastText) return policy;
    try {
      policy = loadPolicy(file, options);
      lastText = text;
      options.onReload?.(policy);
    } catch (e) {
      lastText = text; // report an invalid version once
      options.onError?.(e as Error, policy);
    }
    return policy;
  };
  let timer: NodeJS.Timeout | undefined;
  const watcher = fs.watch(path.dirname(path.resolve(file)), (_event, name) => {
    if (name && name !== path.basename(file)) return;
    clearTimeout(timer);
    timer = setTimeout(reload, options.debounceMs ?? 100);
  });
  watcher.unref();
  return {
    current: () => policy,
    reload,
    close: () => {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
