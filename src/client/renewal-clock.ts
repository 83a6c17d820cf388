/**
 * The renewer's timers and time, injectable for tests, and a timer for instants further away
 * than a Node timer can wait (renewals of certificates that last months).
 */

/** The longest delay a Node timer holds (2^31-1 ms, 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Timers and the time, injectable for tests. */
export interface RenewalClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock, with unref'd timers (a renewer alone does not keep the process alive). */
export const systemClock: RenewalClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Calls `fn` at `at` (ms since the epoch, on `clock`); an instant beyond what one timer holds
 * is reached in steps. Returns what cancels it (only one timer is live at any time).
 */
export function timerAt(clock: RenewalClock, at: number, fn: () => void): () => void {
  let handle: unknown;
  const arm = () => {
    const ms = at - clock.now();
    handle = ms > MAX_TIMER_MS ? clock.setTimeout(arm, MAX_TIMER_MS) : clock.setTimeout(fn, ms);
  };
  arm();
  return () => clock.clearTimeout(handle);
}
