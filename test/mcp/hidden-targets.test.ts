/** The decision table of hidden-target answers (mcp/hidden-targets.ts): who answers, and with exactly what an SDK says of an unknown target. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hiddenAnswerFor, unknownTargetAnswer, unknownTargetAnswerSdk2, type HiddenTargetListener } from '../../src/mcp/hidden-targets.js';
import type { PolicyTarget } from '../../src/policy/compile.js';

const tool: PolicyTarget = { kind: 'tool', name: 'deploy' };
const prompt: PolicyTarget = { kind: 'prompt', name: 'greet' };
const resource: PolicyTarget = { kind: 'resource', uri: 'docs://private/x' };
const targets: readonly PolicyTarget[] = [tool, prompt, resource];

test('the unknown-target answers are the SDK 1.32 ones: a tool error result for tools, JSON-RPC -32602 for resources and prompts', () => {
  assert.deepEqual(unknownTargetAnswer(7, tool), { jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'MCP error -32602: Tool deploy not found' }], isError: true } });
  assert.deepEqual(unknownTargetAnswer(7, prompt), { jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'MCP error -32602: Prompt greet not found' } });
  assert.deepEqual(unknownTargetAnswer(undefined, resource), { jsonrpc: '2.0', id: null, error: { code: -32602, message: 'MCP error -32602: Resource docs://private/x not found' } });
});

test('who answers a hidden target, per listener: the SDK where its per-caller server lacks it, here otherwise', () => {
  const answeredHere = (listener: HiddenTargetListener) => targets.map((t) => hiddenAnswerFor(listener)(1, t) !== undefined);
  assert.deepEqual(answeredHere('sdk1-stateless'), [false, false, true]);
  assert.deepEqual(answeredHere('sdk2'), [false, false, true]);
  assert.deepEqual(answeredHere('sdk1-stateful'), [true, true, true]);
  assert.deepEqual(answeredHere('sdk2-stateful'), [true, true, true]);
  assert.deepEqual(answeredHere('gateway'), [true, true, true]);
  // in the words of the SDK behind the listener; the gateway's by revision (revision-answers.test.ts compares with the SDKs)
  for (const [listener, era, expected] of [['sdk1-stateless', 'legacy', unknownTargetAnswer], ['sdk1-stateful', 'legacy', unknownTargetAnswer], ['sdk2', 'legacy', unknownTargetAnswerSdk2], ['sdk2', 'modern', unknownTargetAnswerSdk2], ['sdk2-stateful', 'legacy', unknownTargetAnswerSdk2], ['gateway', 'legacy', unknownTargetAnswer], ['gateway', 'modern', unknownTargetAnswerSdk2]] as const) {
    for (const t of targets) {
      const answer = hiddenAnswerFor(listener)(1, t, era);
      if (answer !== undefined) assert.deepEqual(answer, expected(1, t), `${listener} ${era} ${t.kind}`);
    }
  }
});
