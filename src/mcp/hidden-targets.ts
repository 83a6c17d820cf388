/**
 * How a request for a target the caller may not see is answered: one decision table for every
 * listener, so tools/list and tools/call agree. A hidden target must get exactly what an
 * unknown one gets (SDK 1.32 answers `tools/call` of an unknown tool with a tool result
 * `{ isError: true, content: [{ type: 'text', text: 'MCP error -32602: Tool X not found' }] }`,
 * not a JSON-RPC error; resources and prompts get a JSON-RPC error -32602).
 *
 * Who answers (the gate, mcp/gate.ts, calls the listener's answer for each hidden target):
 *
 * | listener          | tool, prompt       | resource           | why                                                                                                  |
 * | ----------------- | ------------------ | ------------------ | ---------------------------------------------------------------------------------------------------- |
 * | `sdk1-stateless`  | the SDK            | here               | a per-request server without the hidden tool or prompt answers them as unknown itself; a hidden resource can still match a visible template |
 * | `sdk1-stateful`   | here               | here               | a session keeps what was visible when it opened: after a policy reload a now hidden target is still registered |
 * | `sdk2`            | the SDK            | here               | per-request servers, as `sdk1-stateless`                                                             |
 * | `gateway`         | here               | here               | it cannot remove anything from an upstream server                                                    |
 *
 * The per-caller server itself (mcp/surface.ts) answers with the same words for handlers it
 * cannot remove (installed by `build` on the low-level server): {@link unknownToolResult} and
 * {@link unknownTargetMessage}.
 */
import type { PolicyTarget } from '../policy/compile.js';

/** The listeners of the decision table. */
export type HiddenTargetListener = 'sdk1-stateless' | 'sdk1-stateful' | 'sdk2' | 'gateway';

/** The text an MCP SDK server gives for a tool, resource or prompt it does not have. */
export function unknownTargetMessage(t: PolicyTarget): string {
  if (t.kind === 'tool') return `MCP error -32602: Tool ${t.name} not found`;
  return t.kind === 'resource' ? `MCP error -32602: Resource ${t.uri} not found` : `MCP error -32602: Prompt ${t.name} not found`;
}

/** The tool result an SDK server gives for `tools/call` of a tool it does not have (SDK 1.32: a result, not an error). */
export function unknownToolResult(name: string) {
  return { content: [{ type: 'text' as const, text: unknownTargetMessage({ kind: 'tool', name }) }], isError: true };
}

/** What an MCP SDK server answers for a tool, resource or prompt it does not have: the whole JSON-RPC response. */
export function unknownTargetAnswer(id: unknown, t: PolicyTarget): unknown {
  if (t.kind === 'tool') return { jsonrpc: '2.0', id, result: unknownToolResult(t.name) };
  return { jsonrpc: '2.0', id: id ?? null, error: { code: -32602, message: unknownTargetMessage(t) } };
}

/** The table's answer for the gate's `hiddenAnswer`: the unknown-target answer where we answer, undefined where the SDK does. */
export function hiddenAnswerFor(listener: HiddenTargetListener): (id: unknown, t: PolicyTarget) => unknown | undefined {
  switch (listener) {
    case 'sdk1-stateful':
    case 'gateway':
      return unknownTargetAnswer;
    case 'sdk1-stateless':
    case 'sdk2':
      return (id, t) => (t.kind === 'resource' ? unknownTargetAnswer(id, t) : undefined);
  }
}
