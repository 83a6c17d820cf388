/**
 * Runs the console's policy tasks (policy-tasks.ts) off the `ca serve` event loop: on one worker
 * thread (node:worker_threads), started on first use, one task at a time, at most
 * {@link MAX_WAITING} waiting (more: 429 CONSOLE_BUSY), each bounded by `timeoutMs` (the worker
 * is then terminated and started afresh: 503 CONSOLE_POLICY_TIMEOUT). /renew and /sign keep
 * their thread while a matrix of 500 tools x thousands of principals is decided. `inline: true`
 * runs them on the calling thread (for the comparison in the tests).
 */
import { Worker } from 'node:worker_threads';
import { HttpError } from '../ca/serve/http.js';
import { runPolicyTask, type PolicyTask, type TaskResult } from './policy-tasks.js';

/** Tasks that may wait for the worker; more are refused at once. */
export const MAX_WAITING = 8;

export interface PolicyRunner {
  /** the task's JSON answer body, or an HttpError */
  run(task: PolicyTask): Promise<string>;
  /** ends the worker */
  close(): Promise<void>;
}

const asResult = (r: TaskResult): string => {
  if ('json' in r) return r.json;
  throw new HttpError(r.error.status, r.error.code, r.error.message, r.error.hint);
};

// the worker is this module's sibling: policy-worker.js in dist; under tsx (the tests run the
// sources) policy-worker.ts, loaded after registering tsx in the worker (module hooks of the
// main thread do not reach a worker on Node 20)
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(`./policy-worker${FROM_SOURCES ? '.ts' : '.js'}`, import.meta.url);
const newWorker = (): Worker =>
  FROM_SOURCES ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`, { eval: true }) : new Worker(WORKER_URL);

export function createPolicyRunner(options: { inline?: boolean; timeoutMs?: number } = {}): PolicyRunner {
  if (options.inline) return { run: async (task) => asResult(runPolicyTask(task)), close: async () => undefined };
  const timeoutMs = options.timeoutMs ?? 30_000;
  let worker: Worker | undefined;
  let nextId = 1;
  let busy = false;
  const waiting: (() => void)[] = [];
  const start = (): Worker => {
    const w = newWorker();
    w.unref(); // never what keeps `ca serve` running
    w.on('error', () => undefined); // answered per task below
    return w;
  };
  const once = (task: PolicyTask): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      const w = (worker ??= start());
      const id = nextId++;
      const done = () => {
        clearTimeout(timer);
        w.off('message', onMessage);
        w.off('error', onError);
        w.off('exit', onExit);
      };
      const onMessage = (m: { id: number; result: TaskResult }) => {
        if (m.id !== id) return;
        done();
        try {
          resolve(asResult(m.result));
        } catch (e) {
          reject(e);
        }
      };
      const fail = (e: HttpError) => {
        done();
        if (worker === w) worker = undefined;
        void w.terminate();
        reject(e);
      };
      const onError = (e: Error) => fail(new HttpError(500, 'INTERNAL', `the policy worker failed: ${String(e?.message ?? e).slice(0, 200)}`));
      const onExit = () => fail(new HttpError(500, 'INTERNAL', 'the policy worker exited'));
      const timer = setTimeout(() => fail(new HttpError(503, 'CONSOLE_POLICY_TIMEOUT', `the policy work took longer than ${timeoutMs} ms and was stopped`, 'name fewer tools, or try a smaller policy', { 'retry-after': '10' })), timeoutMs);
      timer.unref();
      w.on('message', onMessage);
      w.on('error', onError);
      w.on('exit', onExit);
      w.postMessage({ id, task });
    });
  return {
    async run(task) {
      if (busy) {
        if (waiting.length >= MAX_WAITING) throw new HttpError(429, 'CONSOLE_BUSY', 'the console\'s policy worker has too much waiting', 'try again in a few seconds', { 'retry-after': '5' });
        await new Promise<void>((r) => waiting.push(r));
      }
      busy = true;
      try {
        return await once(task);
      } finally {
        const next = waiting.shift();
        if (next) next();
        else busy = false;
      }
    },
    async close() {
      const w = worker;
      worker = undefined;
      await w?.terminate();
    },
  };
}
