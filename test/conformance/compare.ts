/**
 * The comparison of issue 19: each scenario's checks through mcp-mtls against the same
 * scenario's checks on the bare server.
 *
 * A scenario *passes* as the suite counts it: no FAILURE check. A check is *lost* when its id
 * succeeded on every occurrence directly and does not through mcp-mtls (a failure, a warning, or
 * never reached), or when a check id fails through mcp-mtls that never failed directly; so a
 * scenario that passes with a new warning is a loss too (the suite's SHOULDs count: a
 * transparent layer keeps them). Scenarios that fail directly are not compared (the target, or
 * the SDK under it, cannot do them; the table shows them).
 *
 * The second caller (bob) may not see some tools: scenarios that need one of them are not
 * compared; they leak when bob is answered exactly as the bare server answers (same checks, same
 * details). The suite's verdict alone cannot tell: tools-call-error passes on any `isError`
 * result, and a hidden tool is answered as unknown, which SDK 1.x makes an `isError` result.
 * All other scenarios are compared for bob as for alice.
 */
import type { Check, Revision, ScenarioResult, Suite } from './suite.js';

export type Target = 'direct' | 'gateway' | 'adapter-sdk1' | 'adapter-sdk2';
export type Caller = 'direct' | 'alice' | 'bob';
/** the SDK the target server (and the adapter mounting it) is built on: one table row per revision and SDK */
export type Sdk = '1.x' | '2.x';

export interface Leg {
  revision: Revision;
  sdk: Sdk;
  target: Target;
  caller: Caller;
  results: Map<string, ScenarioResult>;
  /** lost scenarios run again alone, through the same target: whether each rerun passed */
  reruns?: Map<string, boolean[]>;
}

export interface Loss {
  revision: Revision;
  sdk: Sdk;
  target: Target;
  caller: Caller;
  scenario: string;
  reasons: string[];
  /** the scenario run again alone through the same target: whether each rerun passed (an intermittent loss passes some) */
  reruns?: boolean[];
}

export interface LegSummary {
  revision: Revision;
  sdk: Sdk;
  target: Target;
  caller: Caller;
  scenarios: number;
  passed: number;
  /** scenarios compared for this leg (passing directly; for bob without a hidden tool) */
  compared: number;
  comparedPassed: number;
}

export interface Report {
  legs: LegSummary[];
  lost: Loss[];
  leaked: Loss[];
  /** scenarios that fail directly, with the reason: not compared */
  directFailures: Loss[];
  /** distinct lines the gateway logged during the run */
  gatewayLog?: string[];
}

const judged = (c: Check) => c.status !== 'INFO';
const reasonOf = (c: Check) => `${c.id}: ${c.status}${c.errorMessage ? ` - ${c.errorMessage}` : c.description ? ` (${c.description})` : ''}`;

/** per check id, the worst status seen (FAILURE > WARNING > SKIPPED > SUCCESS) and the check that had it */
function worstById(checks: Check[]): Map<string, Check> {
  const rank = { FAILURE: 3, WARNING: 2, SKIPPED: 1, SUCCESS: 0, INFO: -1 } as const;
  const m = new Map<string, Check>();
  for (const c of checks.filter(judged)) {
    const prev = m.get(c.id);
    if (!prev || rank[c.status] > rank[prev.status]) m.set(c.id, c);
  }
  return m;
}

/** what was lost from `direct` to `through`: empty when every check that succeeded still does */
export function lostChecks(direct: ScenarioResult, through: ScenarioResult | undefined): string[] {
  if (!through) return ['no result: the scenario did not run to the end through mcp-mtls'];
  const d = worstById(direct.checks);
  const t = worstById(through.checks);
  const reasons: string[] = [];
  for (const [id, c] of d) {
    if (c.status !== 'SUCCESS') continue;
    const tc = t.get(id);
    if (!tc) reasons.push(`${id}: not reached (succeeded directly)`);
    else if (tc.status !== 'SUCCESS') reasons.push(reasonOf(tc));
  }
  for (const [id, tc] of t) if (tc.status === 'FAILURE' && !d.has(id)) reasons.push(reasonOf(tc));
  return reasons;
}

/**
 * What a single-caller suite cannot see (issue 19, finding 3): bob's tools/list is filtered by
 * policy, so its caching hint must not let a shared cache hand it to others. Appended to bob's
 * `caching` result as a check of its own; it fails when the hint says `public` (a check id the
 * bare server's run never has, so a failure is a loss).
 */
export function addPerCallerChecks(results: Map<string, ScenarioResult>): void {
  const caching = results.get('caching');
  const hint = caching?.checks.find((c) => c.id === 'sep-2549-tools-list-caching-hints');
  if (!caching || !hint) return;
  const scope = (hint.details as { cacheScope?: unknown } | undefined)?.cacheScope;
  const ok = scope !== 'public';
  caching.checks.push({
    id: 'mcp-mtls-filtered-list-not-public',
    description: "a tools/list the policy filtered for this caller is not marked cacheable for others (cacheScope not 'public')",
    status: ok ? 'SUCCESS' : 'FAILURE',
    ...(ok ? {} : { errorMessage: `bob's filtered tools/list carries cacheScope "public" (ttlMs ${String((hint.details as { ttlMs?: unknown }).ttlMs)}): a shared cache would serve it to callers with other rights` }),
    details: { cacheScope: scope },
  });
  if (!ok) caching.passed = false;
}

/** the judged checks of both runs say the same (status and details): bob was answered as the bare server answers */
function sameAnswers(a: ScenarioResult, b: ScenarioResult): boolean {
  const view = (s: ScenarioResult) => JSON.stringify(s.checks.filter(judged).map((c) => [c.id, c.status, c.details]));
  return view(a) === view(b);
}

/** `hiddenFromBob`: per revision, each tool hidden from bob and the scenarios that need it */
export function compare(legs: Leg[], hiddenFromBob: Partial<Record<Revision, Record<string, string[]>>>): Report {
  const needsHidden = (rev: Revision) => new Set(Object.values(hiddenFromBob[rev] ?? {}).flat());
  const report: Report = { legs: [], lost: [], leaked: [], directFailures: [] };
  for (const leg of legs) {
    const base = legs.find((l) => l.revision === leg.revision && l.sdk === leg.sdk && l.target === 'direct');
    const all = [...leg.results.values()];
    const summary: LegSummary = { revision: leg.revision, sdk: leg.sdk, target: leg.target, caller: leg.caller, scenarios: all.length, passed: all.filter((s) => s.passed).length, compared: 0, comparedPassed: 0 };
    report.legs.push(summary);
    if (!base) continue;
    if (leg === base) {
      for (const s of all) if (!s.passed) report.directFailures.push({ revision: leg.revision, sdk: leg.sdk, target: leg.target, caller: leg.caller, scenario: s.scenario, reasons: s.checks.filter((c) => c.status === 'FAILURE').map(reasonOf) });
      continue;
    }
    for (const d of base.results.values()) {
      if (!d.passed) continue;
      const through = leg.results.get(d.scenario);
      if (leg.caller === 'bob' && needsHidden(leg.revision).has(d.scenario)) {
        if (through?.passed && sameAnswers(d, through)) report.leaked.push({ revision: leg.revision, sdk: leg.sdk, target: leg.target, caller: leg.caller, scenario: d.scenario, reasons: ['answered exactly as on the bare server although the policy hides its tool from bob'] });
        continue;
      }
      summary.compared++;
      if (through?.passed) summary.comparedPassed++;
      const reasons = lostChecks(d, through);
      const reruns = leg.reruns?.get(d.scenario);
      if (reasons.length) report.lost.push({ revision: leg.revision, sdk: leg.sdk, target: leg.target, caller: leg.caller, scenario: d.scenario, reasons, ...(reruns ? { reruns } : {}) });
    }
  }
  return report;
}

function table(report: Report, suite: Suite): string[] {
  const rows: string[] = ['| revision (suite) | scenarios | direct | gateway (alice) | adapter (alice) | gateway (bob) | adapter (bob) |', '|---|---|---|---|---|---|---|'];
  const seen = new Set<string>();
  for (const { revision: rev, sdk } of report.legs) {
    if (seen.has(`${rev} ${sdk}`)) continue;
    seen.add(`${rev} ${sdk}`);
    const legs = report.legs.filter((l) => l.revision === rev && l.sdk === sdk);
    const direct = legs.find((l) => l.target === 'direct');
    if (!direct) continue;
    const cell = (target: 'gateway' | 'adapter', caller: Caller) => {
      const l = legs.find((x) => x.caller === caller && (target === 'gateway' ? x.target === 'gateway' : x.target.startsWith('adapter')));
      if (!l) return '-';
      return caller === 'bob' ? `${l.comparedPassed}/${l.compared} (${l.passed} in all)` : `${l.passed}`;
    };
    const what = sdk === '1.x' ? 'SDK 1.x server (stateful), 1.x adapter (stateful)' : rev === '2025-11-25' ? 'SDK 2.x server (sessions for 2025 clients), 2.x adapter (stateful)' : 'SDK 2.x per-request server, 2.x adapter';
    rows.push(`| ${rev} (${suite.version[rev]}), ${what} | ${direct.scenarios} | ${direct.passed} | ${cell('gateway', 'alice')} | ${cell('adapter', 'alice')} | ${cell('gateway', 'bob')} | ${cell('adapter', 'bob')} |`);
  }
  return rows;
}

const rerunNote = (l: Loss) => (l.reruns ? ` (run again alone: passed ${l.reruns.filter(Boolean).length} of ${l.reruns.length}${l.reruns.some(Boolean) ? ', intermittent' : ''})` : '');
const lossLines = (losses: Loss[]) => losses.flatMap((l) => [`- ${l.revision} SDK ${l.sdk} ${l.target} (${l.caller}) \`${l.scenario}\`${rerunNote(l)}`, ...l.reasons.map((r) => `    - ${r}`)]);

export function renderText(report: Report, suite: Suite): string {
  const lines = ['', ...table(report, suite), '', 'bob: compared scenarios passing / compared (those that need no tool hidden from him), then all that pass', ''];
  lines.push(report.lost.length ? `LOST through mcp-mtls (${report.lost.length}):` : 'nothing lost through mcp-mtls');
  lines.push(...lossLines(report.lost));
  if (report.leaked.length) lines.push('', `LEAKED (a hidden tool's scenario passed, ${report.leaked.length}):`, ...lossLines(report.leaked));
  if (report.directFailures.length) lines.push('', `failing directly (not compared, ${report.directFailures.length}):`, ...lossLines(report.directFailures));
  if (report.lost.length && report.gatewayLog?.length) lines.push('', 'the gateway logged:', ...report.gatewayLog.map((l) => `  ${l}`));
  return `${lines.join('\n')}\n`;
}

export function renderMarkdown(report: Report, suite: Suite, at: Date, hiddenFromBob: Partial<Record<Revision, Record<string, string[]>>>): string {
  return [
    '# Conformance status (issue 19)',
    '',
    `Written by \`npm run test:conformance\` (test/conformance/run.ts) at ${at.toISOString()}. Callers through mcp-mtls: alice (allow-all policy), bob (the same policy plus a deny rule hiding the tools below; the scenarios that need them are not compared for him, and must not be answered as on the bare server).`,
    '',
    ...Object.entries(hiddenFromBob).flatMap(([rev, tools]) => Object.entries(tools ?? {}).map(([tool, scenarios]) => `- ${rev}: hidden from bob: \`${tool}\` (${scenarios.join(', ')})`)),
    '',
    ...table(report, suite),
    '',
    'bob: compared scenarios passing / compared (those needing no tool hidden from him), then all that pass.',
    '',
    `## Lost through mcp-mtls (${report.lost.length})`,
    '',
    'A check that succeeds against the bare server and does not through the gateway or adapter (reason as the suite gives it).',
    '',
    ...(report.lost.length ? lossLines(report.lost) : ['none']),
    '',
    `## Leaked (${report.leaked.length})`,
    '',
    ...(report.leaked.length ? lossLines(report.leaked) : ['none: every scenario needing a tool hidden from bob was answered otherwise than on the bare server']),
    '',
    `## Failing directly, not compared (${report.directFailures.length})`,
    '',
    ...(report.directFailures.length ? lossLines(report.directFailures) : ['none']),
    '',
    `## What the gateway logged (distinct lines, callers and ports masked)`,
    '',
    ...(report.gatewayLog?.length ? report.gatewayLog.map((l) => `- \`${l}\``) : ['nothing']),
    '',
  ].join('\n');
}
