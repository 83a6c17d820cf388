/**
 * The comparison of the conformance run (test/conformance/run.ts, `npm run test:conformance`) on
 * made-up suite results: what counts as lost, leaked, or not compared. The run itself needs the
 * suite from the registry and 1.5 minutes, so it is beside `npm test` (.ci/conformance).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addPerCallerChecks, compare, lostChecks, type Leg } from './compare.js';
import type { Check, ScenarioResult } from './suite.js';

const result = (scenario: string, ...checks: Partial<Check>[]): ScenarioResult => {
  const full = checks.map((c) => ({ id: scenario, status: 'SUCCESS', ...c }) as Check);
  return { scenario, checks: full, passed: !full.some((c) => c.status === 'FAILURE') };
};
const leg = (target: Leg['target'], caller: Leg['caller'], ...results: ScenarioResult[]): Leg => ({ revision: '2026-07-28', sdk: '2.x', target, caller, results: new Map(results.map((r) => [r.scenario, r])) });

test('a check that succeeds directly and fails, warns or is missing through mcp-mtls is lost', () => {
  const direct = result('s', { id: 'a' }, { id: 'b' }, { id: 'c', status: 'WARNING' });
  assert.deepEqual(lostChecks(direct, result('s', { id: 'a' }, { id: 'b' }, { id: 'c', status: 'WARNING' })), []);
  assert.deepEqual(lostChecks(direct, result('s', { id: 'a', status: 'FAILURE', errorMessage: 'got 200' }, { id: 'b' })), ['a: FAILURE - got 200']);
  assert.deepEqual(lostChecks(direct, result('s', { id: 'a', status: 'WARNING', errorMessage: 'SHOULD' }, { id: 'b' }, { id: 'c', status: 'WARNING' })), ['a: WARNING - SHOULD']);
  assert.deepEqual(lostChecks(direct, result('s', { id: 'a' }, { id: 'c', status: 'WARNING' })), ['b: not reached (succeeded directly)']);
  assert.deepEqual(lostChecks(direct, result('s', { id: 'a' }, { id: 'b' }, { id: 'new', status: 'FAILURE', errorMessage: 'x' })), ['new: FAILURE - x']);
  assert.deepEqual(lostChecks(direct, undefined), ['no result: the scenario did not run to the end through mcp-mtls']);
  // a warning that was already there directly is not a loss (the target's, not mcp-mtls's)
  assert.deepEqual(lostChecks(result('s', { id: 'w', status: 'WARNING' }), result('s', { id: 'w', status: 'WARNING' })), []);
});

test('scenarios failing directly are not compared; bob: hidden-tool scenarios must not be answered as directly', () => {
  const hidden = { '2026-07-28': { test_audio_content: ['tools-call-audio'] } };
  const direct = leg('direct', 'direct', result('ok'), result('broken', { status: 'FAILURE' }), result('tools-call-audio', { details: { audio: 1 } }));
  const report = compare(
    [
      direct,
      leg('gateway', 'alice', result('ok', { status: 'FAILURE', errorMessage: 'lost it' }), result('broken', { status: 'FAILURE' }), result('tools-call-audio', { details: { audio: 1 } })),
      leg('gateway', 'bob', result('ok'), result('broken', { status: 'FAILURE' }), result('tools-call-audio', { details: { audio: 1 } })),
      leg('adapter-sdk2', 'bob', result('ok'), result('tools-call-audio', { status: 'FAILURE', details: { audio: 0 } })),
    ],
    hidden,
  );
  assert.deepEqual(report.lost.map((l) => `${l.target}/${l.caller}/${l.scenario}: ${l.reasons.join('; ')}`), ['gateway/alice/ok: ok: FAILURE - lost it']);
  assert.deepEqual(report.leaked.map((l) => `${l.target}/${l.caller}/${l.scenario}`), ['gateway/bob/tools-call-audio']);
  assert.deepEqual(report.directFailures.map((l) => l.scenario), ['broken']);
  const bob = report.legs.find((l) => l.target === 'adapter-sdk2')!;
  assert.deepEqual([bob.compared, bob.comparedPassed], [1, 1]);
  // a hidden tool answered otherwise (here: as an unknown tool, which SDK 1.x makes an isError result) is no leak even when the suite passes it
  const weak = compare([leg('direct', 'direct', result('tools-call-audio', { details: { text: 'real' } })), leg('gateway', 'bob', result('tools-call-audio', { details: { text: 'Tool not found' } }))], hidden);
  assert.deepEqual(weak.leaked, []);
});

test("bob's filtered tools/list marked public is a loss the suite alone cannot see (finding 3)", () => {
  const caching = (scope: string) => result('caching', { id: 'sep-2549-tools-list-caching-hints', details: { ttlMs: 60000, cacheScope: scope } });
  const direct = leg('direct', 'direct', caching('public'));
  const publicForBob = leg('gateway', 'bob', caching('public'));
  addPerCallerChecks(publicForBob.results);
  const privateForBob = leg('adapter-sdk2', 'bob', caching('private'));
  addPerCallerChecks(privateForBob.results);
  const report = compare([direct, publicForBob, privateForBob], {});
  assert.equal(report.lost.length, 1);
  assert.equal(report.lost[0]!.target, 'gateway');
  assert.match(report.lost[0]!.reasons[0]!, /^mcp-mtls-filtered-list-not-public: FAILURE - bob's filtered tools\/list carries cacheScope "public"/);
});
