/**
 * How a request for a target the caller may not see is answered: one decision table for every
 * listener, so tools/list and tools/call agree. A hidden target must get exactly what an
 * unknown one gets, from the SDK behind the listener, on the protocol revision of the request
 * (measured on this machine):
 *
 * | unknown ...   | SDK 1.32 (2025-11-25)                                                   | SDK 2.x (2025-11-25 and 2026-07-28)                          |
 * | ------------- | ----------------------------------------------------------------------- | ------------------------------------------------------------ |
 * | tool          | result `{ content: [text "MCP error -32602: Tool X not found"], isError: true }` | error -32602 `Tool X not found`                      |
 * | prompt        | error -32602 `MCP error -32602: Prompt X not found`                      | error -32602 `Prompt X not found`                            |
 * | resource      | error -32602 `MCP error -32602: Resource U not found`                    | error -32602 `Resource not found: U`, `data: { uri: U }`     |
 *
 * Who answers (the gate, mcp/gate.ts, calls the listener's answer for each hidden target):
 *
 * | listener          | tool, prompt       | resource           | why                                                                                                  |
 * | ----------------- | ------------------ | ------------------ | ---------------------------------------------------------------------------------------------------- |
 * | `sdk1-stateless`  | the SDK            | here, as 1.x       | a per-request server without the hidden tool or prompt answers them as unknown itself; a hidden resource can still match a visible template |
 * | `sdk1-stateful`   | here, as 1.x       | here, as 1.x       | a session keeps what was visible when it opened: after a policy reload a now hidden target is still registered |
 * | `sdk2`            | the SDK            | here, as 2.x       | per-request servers, as `sdk1-stateless`                                                             |
 * | `sdk2-stateful`   | here, as 2.x       | here, as 2.x       | 2025-era sessions of the 2.x adapter: a session keeps what was visible when it opened, as `sdk1-stateful` |
 * | `gateway`         | here               | here               | it cannot remove anything from an upstream server: as 2.x on 2026-07-28 (the revision makes an unknown tool a JSON-RPC error -32602), as 1.x on 2025-11-25 |
 *
 * The per-caller server itself (mcp/surface.ts) answers with the same words for handlers it
 * cannot remove (installed by `build` on the low-level server): on SDK 1.x
 * {@link unknownToolResult} and {@link unknownTargetMessage}, on SDK 2.x its JSON-RPC errors.
 */
import type { PolicyTarget } from '../policy/compile.js';
import type { ProtocolEra } from './protocol-era.js';

/** The listeners of the decision table. */
export type HiddenTargetListener = 'sdk1-stateless' | 'sdk1-stateful' | 'sdk2' | 'sdk2-stateful' | 'gateway';

/** The text an MCP SDK server gives for a tool, resource or prompt it does not have. */
export function unknownTargetMessage(t: PolicyTarget): string {
  if (t.kind === 'tool') return `MCP error -32602: Tool ${t.name} not found`;
  return t.kind === 'resource' ? `MCP error -32602: Resource ${t.uri} not found` : `MCP error -32602: Prompt ${t.name} not found`;
}

/** The tool result an SDK server gives for `tools/call` of a tool it does not have (SDK 1.32: a result, not an error). */
export function unknownToolResult(name: string) {
  return { content: [{ type: 'text' as const, text: unknownTargetMessage({ kind: 'tool', name }) }], isError: true };
}

/** What an MCP SDK 1.x server answers for a tool, resource or prompt it does not have: the whole JSON-RPC response. */
export function unknownTargetAnswer(id: unknown, t: PolicyTarget): unknown {
  if (t.kind === 'tool') return { jsonrpc: '2.0', id, result: unknownToolResult(t.name) };
  return { jsonrpc: '2.0', id: id ?? null, error: { code: -32602, message: unknownTargetMessage(t) } };
}

/** Whose words an answer uses: SDK 1.x (`MCP error -32602: ...`, a tool result for tools) or SDK 2.x (JSON-RPC errors). */
export type UnknownTargetDialect = 'sdk1' | 'sdk2';

/** What an MCP SDK 2.x server answers for a tool, resource or prompt it does not have, on either revision. */
export function unknownTargetAnswerSdk2(id: unknown, t: PolicyTarget): unknown {
  const error =
    t.kind === 'tool'
      ? { code: -32602, message: `Tool ${t.name} not found` }
      : t.kind === 'prompt'
        ? { code: -32602, message: `Prompt ${t.name} not found` }
        : { code: -32602, message: `Resource not found: ${t.uri}`, data: { uri: t.uri } };
  return { jsonrpc: '2.0', id: id ?? null, error };
}

/** The unknown-target answer in an SDK's words. */
export function unknownTargetAnswerOf(dialect: UnknownTargetDialect): (id: unknown, t: PolicyTarget) => unknown {
  return dialect === 'sdk2' ? unknownTargetAnswerSdk2 : unknownTargetAnswer;
}

/** How the gate asks a listener for its answer to a hidden target: undefined where the SDK answers. */
export type HiddenAnswer = (id: unknown, t: PolicyTarget, era?: ProtocolEra) => unknown | undefined;

/** The table's answer for the gate's `hiddenAnswer`: the unknown-target answer where we answer, undefined where the SDK does. */
export function hiddenAnswerFor(listener: HiddenTargetListener): HiddenAnswer {
  switch (listener) {
    case 'sdk1-stateful':
      return unknownTargetAnswer;
    case 'gateway':
      return (id, t, era) => (era === 'modern' ? unknownTargetAnswerSdk2 : unknownTargetAnswer)(id, t);
    case 'sdk1-stateless':
      return (id, t) => (t.kind === 'resource' ? unknownTargetAnswer(id, t) : undefined);
    case 'sdk2':
      return (id, t) => (t.kind === 'resource' ? unknownTargetAnswerSdk2(id, t) : undefined);
    case 'sdk2-stateful':
      return unknownTargetAnswerSdk2;
  }
}
