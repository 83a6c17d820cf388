/**
 * How much of the CA's event loop the console's policy endpoints may take. `ca serve` answers
 * /renew and /sign on the same thread, and the policy pages are work proportional to what a
 * viewer sends: a playground text of 64 KiB (700 rules) takes over a second to parse, then
 * principals x tools decisions. A single request is bounded (body size, MAX_MATRIX_TOOLS); this
 * bounds their sum: at most `msPerMinute` of such work per minute, all operators together
 * (a leaky bucket of milliseconds); over it, `429 CONSOLE_BUSY` with Retry-After.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { HttpError } from '../ca/serve/http.js';

/** The default share: 6 s per minute (a tenth of the loop). */
export const POLICY_WORK_MS_PER_MINUTE = 6_000;

export interface WorkBudget {
  /** runs `work` unless the budget is spent; its duration is charged to the budget, but for what it awaited {@link elsewhere} */
  run<T>(work: () => Promise<T>): Promise<T>;
  /**
   * `done`, work of another thread (the policy worker, policy-pool.ts) that a `run` awaits: the
   * time waited is not charged, since the CA's loop is free meanwhile (a 30 s task on the worker
   * spent every operator's share for minutes)
   */
  elsewhere<T>(done: Promise<T>): Promise<T>;
}

export function createWorkBudget(msPerMinute = POLICY_WORK_MS_PER_MINUTE, now: () => number = () => performance.now()): WorkBudget {
  const drain = msPerMinute / 60_000; // ms of debt forgiven per ms
  let debt = 0;
  let at = now();
  const away = new AsyncLocalStorage<{ ms: number }>();
  const settle = () => {
    const t = now();
    debt = Math.max(0, debt - (t - at) * drain);
    at = t;
  };
  return {
    async run(work) {
      settle();
      if (debt >= msPerMinute) {
        const wait = Math.max(1, Math.ceil((debt - msPerMinute) / drain / 1000) + 1);
        throw new HttpError(429, 'CONSOLE_BUSY', 'the console\'s policy pages used their share of the CA\'s time for this minute', `try again in ${wait} s`, { 'retry-after': String(wait) });
      }
      const start = now();
      const elsewhereMs = { ms: 0 };
      try {
        return await away.run(elsewhereMs, work);
      } finally {
        settle();
        debt += Math.max(0, now() - start - elsewhereMs.ms);
      }
    },
    async elsewhere(done) {
      const spent = away.getStore();
      const start = now();
      try {
        return await done;
      } finally {
        if (spent) spent.ms += now() - start;
      }
    },
  };
}
