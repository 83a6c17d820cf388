/**
 * The policy page's CPU-bound work as tasks of plain data in, a JSON body out: compile a policy
 * (the servers' file, or an operator's playground text), decide principals x tools, explain a
 * cell. policy-worker.ts runs them on a worker thread, so a large matrix or a 64 KiB playground
 * text (over a second to parse) never runs on the `ca serve` event loop that answers /renew and
 * /sign; the answer comes back as one JSON string the CA thread only writes out.
 */
import fs from 'node:fs';
import { isMtlsError } from '../errors.js';
import { loadPolicy } from '../policy-file/load.js';
import { policyFromText, type Policy } from '../policy/compile.js';
import type { PolicySubject } from '../policy/subjects.js';
import { matrixChanges, policyMatrix, policyTools } from './policy-matrix.js';

/** Columns of the policy matrix (tools a policy names, console.tools, an operator's list): its cost is principals x tools. */
export const MAX_MATRIX_TOOLS = 500;

export type PolicyTask =
  | { readonly op: 'matrix'; readonly file: string; readonly subjects: readonly PolicySubject[]; readonly tools: readonly string[] }
  | { readonly op: 'explain'; readonly file: string; readonly text?: string; readonly subject: PolicySubject; readonly tool: string; readonly args: unknown }
  | { readonly op: 'playground'; readonly file: string; readonly text: string; readonly subjects: readonly PolicySubject[]; readonly tools: readonly string[] };

/** A refusal, as data (an HttpError on the CA thread). */
export interface TaskError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
}

export type TaskResult = { readonly json: string } | { readonly error: TaskError };

class TaskRefusal extends Error {
  constructor(readonly error: TaskError) {
    super(error.message);
  }
}

function fromFile(file: string): Policy {
  try {
    return loadPolicy(file);
  } catch (e) {
    throw new TaskRefusal({ status: 409, code: 'POLICY_INVALID', message: isMtlsError(e) ? e.message : `cannot load ${file}`, hint: 'fix the policy file (mcp-mtls policy check)' });
  }
}

function fromText(text: string): Policy {
  try {
    return policyFromText(text, 'playground.yaml');
  } catch (e) {
    throw new TaskRefusal({ status: 400, code: 'POLICY_INVALID', message: isMtlsError(e) ? e.message : 'the policy does not compile', hint: 'fix the policy text' });
  }
}

function matrixOf(p: Policy, subjects: readonly PolicySubject[], extra: readonly string[]) {
  const tools = policyTools(p, extra);
  // a viewer's list (or a playground policy) of thousands of tools x every principal made a
  // CPU-bound answer of tens of MB
  if (tools.length > MAX_MATRIX_TOOLS) throw new TaskRefusal({ status: 400, code: 'TOO_MANY_TOOLS', message: `the matrix would have ${tools.length} tools; at most ${MAX_MATRIX_TOOLS}`, hint: 'name fewer tools' });
  return { principals: subjects.map((x) => ({ principal: x.principal, id: x.id, kind: x.kind, teams: x.teams, roles: x.roles })), tools, cells: policyMatrix(p, subjects, tools) };
}

/** Runs one task; never throws (a refusal or a failure is a result). */
export function runPolicyTask(task: PolicyTask): TaskResult {
  try {
    switch (task.op) {
      case 'matrix': {
        const p = fromFile(task.file);
        return { json: JSON.stringify({ file: task.file, text: fs.readFileSync(task.file, 'utf8'), ...matrixOf(p, task.subjects, task.tools) }) };
      }
      case 'explain': {
        const p = task.text !== undefined ? fromText(task.text) : fromFile(task.file);
        return { json: JSON.stringify({ subject: task.subject, ...p.explain(task.subject, { kind: 'tool', name: task.tool, args: task.args ?? {} }) }) };
      }
      case 'playground': {
        const after = fromText(task.text);
        const before = matrixOf(fromFile(task.file), task.subjects, [...task.tools, ...policyTools(after)]);
        const next = matrixOf(after, task.subjects, [...task.tools, ...before.tools]);
        return { json: JSON.stringify({ ...next, changes: matrixChanges(before.cells, next.cells) }) };
      }
    }
  } catch (e) {
    if (e instanceof TaskRefusal) return { error: e.error };
    return { error: { status: 500, code: 'INTERNAL', message: `the policy work failed: ${String((e as Error)?.message ?? e).slice(0, 200)}` } };
  }
}
