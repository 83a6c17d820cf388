/**
 * Live policy reload: watches the policy file's folder (editors and `mv` replace files, so
 * the file itself is not watched), reloads after changes settle, swaps the compiled policy
 * atomically, and keeps the last good one when the new file is invalid.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CompileOptions, Policy } from '../policy/compile.js';
import { loadPolicy } from './load.js';

export interface PolicyWatcher {
  /** the policy in force: read it per request, never keep it */
  current(): Policy;
  /** reloads now (also what the watcher does on change); resolves with the policy in force */
  reload(): Policy;
  close(): void;
}

export interface WatchOptions extends CompileOptions {
  /** a new policy is in force */
  onReload?: (policy: Policy) => void;
  /** the file changed but is invalid: `kept` stays in force */
  onError?: (error: Error, kept: Policy) => void;
  /** quiet period before reloading, ms */
  debounceMs?: number;
}

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
