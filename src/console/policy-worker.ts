/** The worker thread of the console's policy work (policy-pool.ts): one task at a time, results as JSON text. */
import os from 'node:os';
import { parentPort } from 'node:worker_threads';
import { runPolicyTask, type PolicyTask } from './policy-tasks.js';

// this thread only (Linux schedules threads, and pid 0 is the caller): on a busy host the
// CA's own thread (/renew, /sign) gets the CPU first
try {
  os.setPriority(0, 10);
} catch {
  /* not permitted here: the same priority as the CA */
}

parentPort?.on('message', (m: { id: number; task: PolicyTask }) => {
  parentPort?.postMessage({ id: m.id, result: runPolicyTask(m.task) });
});
