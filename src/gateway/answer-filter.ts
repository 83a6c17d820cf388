/**
 * List and completion answers filtered for the caller, as the SDK adapters filter theirs
 * (mcp/results.ts): a POST remembers what each of its list requests asked, by id, and the
 * upstream's answer to that id is filtered with it.
 */
import type { Policy, PolicySubject } from '../policy/compile.js';
import { FILTERED_METHODS, filterResult } from '../mcp/results.js';
import type { RpcMessage } from './identity-meta.js';

/** What a request asked, by id, for the answers to filter (lists and completions). */
export type AskedLists = Map<unknown, { readonly method: string; readonly params: unknown }>;

/** The list and completion requests among the messages a POST forwards. */
export function askedLists(messages: readonly RpcMessage[]): AskedLists {
  const asked: AskedLists = new Map();
  for (const m of messages) {
    if (typeof m?.method === 'string' && FILTERED_METHODS.has(m.method) && m.id !== undefined) asked.set(m.id, { method: m.method, params: m.params });
  }
  return asked;
}

/** The result for request `id`, filtered when that request was a list or completion; else the same object. */
export function filterAnswer(asked: AskedLists, id: unknown, result: Record<string, unknown>, policy: Policy, who: PolicySubject): Record<string, unknown> {
  const request = id !== undefined ? asked.get(id) : undefined;
  if (!request || !result) return result;
  return (filterResult(request.method, request.params, result, policy, who) as Record<string, unknown> | undefined) ?? result;
}
