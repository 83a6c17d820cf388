/**
 * Issue 19's conformance test: the official MCP conformance suite, scenario by scenario, against
 * our own target servers directly, behind the gateway, and mounted with the SDK adapters, in three
 * rows: 2025-11-25 (suite 0.1.16) on an SDK 1.x target and on an SDK 2.x target with sessions
 * (the 2.x adapter in stateful mode), and 2026-07-28 (suite 0.2.0-alpha.12) on an SDK 2.x
 * per-request target. Two callers through mcp-mtls: alice (allow-all) and bob (a deny rule hides
 * a few tools from him).
 *
 * Fails (exit 1) when a check that succeeds against the bare server does not succeed through
 * mcp-mtls ("lost"), for alice on every scenario, for bob on every scenario that does not need a
 * tool hidden from him; and when a scenario that needs a tool hidden from bob passes for him
 * (answered exactly as on the bare server: the tool leaked). Prints the table and each lost
 * check with the suite's reason.
 *
 *   npm run test:conformance                      (or: node --import tsx test/conformance/run.ts)
 *   MCP_MTLS_CONFORMANCE_STATUS=FILE              also writes the table and losses as Markdown
 *   MCP_MTLS_CONFORMANCE_ONLY=2025-11-25          one revision only
 *   MCP_MTLS_CONFORMANCE_OUT=DIR                  keeps the suite's results there (default: a temp
 *                                                 dir, removed after a run that lost nothing)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { startGateway, type RunningGateway } from '../../src/gateway/run.js';
import { GatewayConfigSchema } from '../../src/gateway/config.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMcpSdk2Handler } from '../../src/mcp/sdk2.js';
import { createMtlsServer, tlsFromPki, type MtlsServer } from '../../src/mtls/mtls-server.js';
import { policyFromText } from '../../src/policy/compile.js';
import { makePki } from '../support/pki.js';
import { addPerCallerChecks, compare, lostChecks, renderMarkdown, renderText, type Leg, type Sdk, type Target } from './compare.js';
import { ensureSuite, RAW_HTTP_SCENARIOS, runSuite, startTlsTunnel, type Revision, type SuiteRun } from './suite.js';
import { buildSdk1, SDK1_RETRY_MS, SDK1_SERVER_OPTIONS, startDirectSdk1 } from './target-sdk1.js';
import { buildSdk2, SDK2_SERVER_OPTIONS, startDirectSdk2, type ListNotifier } from './target-sdk2.js';
import { buildSdk2Legacy, SDK2_LEGACY_SERVER_OPTIONS, startDirectSdk2Legacy } from './target-sdk2-legacy.js';

/** Per revision, the tools the second caller may not see, and the scenarios that need each (not compared for him; they must not be answered as directly). */
export const HIDDEN_FROM_BOB: Record<Revision, Record<string, string[]>> = {
  '2025-11-25': {
    test_audio_content: ['tools-call-audio'],
    test_error_handling: ['tools-call-error'],
    test_sampling: ['tools-call-sampling'],
    test_elicitation: ['tools-call-elicitation'],
  },
  '2026-07-28': {
    test_audio_content: ['tools-call-audio'],
    test_error_handling: ['tools-call-error'],
    // the suite's other SEP-2322 scenarios reuse this tool
    test_input_required_result_elicitation: ['input-required-result-basic-elicitation', 'input-required-result-result-type', 'input-required-result-missing-input-response', 'input-required-result-ignore-extra-params', 'input-required-result-validate-input'],
  },
};

/** One policy for both callers: everything for everyone, and a deny rule hiding a few tools from bob. */
export const policyText = (rev: Revision) => `version: 1
rules:
  - id: everything
    subjects: { any: true }
    tools: ["*"]
    resources: ["**"]
    prompts: ["*"]
  - id: fewer-tools-for-bob
    effect: deny
    subjects: { users: [bob] }
    tools: [${Object.keys(HIDDEN_FROM_BOB[rev]).join(', ')}]
`;

const log = (line: string) => process.stderr.write(`conformance: ${line}\n`);

async function listen(server: MtlsServer): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `https://localhost:${(server.address() as AddressInfo).port}/mcp`;
}

async function main(): Promise<number> {
  const started = Date.now();
  const suite = ensureSuite(log);
  log(`suite ${suite.version['2025-11-25']} (2025-11-25) and ${suite.version['2026-07-28']} (2026-07-28) on ${suite.node}`);
  const out = process.env.MCP_MTLS_CONFORMANCE_OUT ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-mtls-conformance-out-'));
  const only = process.env.MCP_MTLS_CONFORMANCE_ONLY as Revision | undefined;

  const pki = await makePki();
  const srv = await pki.issue(['issue', 'server', '--dns', 'localhost', '--ip', '127.0.0.1']);
  const issue = async (user: string) => {
    const r = await pki.issue(['issue', 'client', '--user', user]);
    return { cert: r.files.cert, key: r.files.key as string, ca: path.join(pki.pki, 'root.crt') };
  };
  const callers = { alice: await issue('alice'), bob: await issue('bob') };
  const policyFile = (rev: Revision) => {
    const f = path.join(pki.base, `policy-${rev}.yaml`);
    fs.writeFileSync(f, policyText(rev));
    return f;
  };
  const tls = tlsFromPki(pki.pki, srv.files.cert, srv.files.key as string);
  const closers: (() => Promise<void>)[] = [];
  /** what the gateway logged (distinct lines): the reason behind a loss is often there */
  const gatewayLog = new Set<string>();

  const gatewayIn = async (rev: Revision, upstream: string): Promise<string> => {
    const config = GatewayConfigSchema.parse({ listen: '127.0.0.1:0', tls: { cert: srv.files.cert, key: srv.files.key, pki: pki.pki }, routes: [{ path: '/mcp', upstream, policy: policyFile(rev) }] });
    const gw: RunningGateway = await startGateway(config, (line) => {
      if (gatewayLog.size < 40) gatewayLog.add(line.replace(/spiffe:\/\/\S+/g, 'CALLER').replace(/:\d{4,5}\b/g, ':PORT'));
    });
    closers.push(() => gw.stop());
    return `https://localhost:${gw.address.port}/mcp`;
  };

  const legs: Leg[] = [];
  const run = async (rev: Revision, sdk: Sdk, target: Target, caller: 'direct' | 'alice' | 'bob', url: string): Promise<void> => {
    const t0 = Date.now();
    const dir = path.join(out, `${rev}-sdk${sdk[0]}-${target}-${caller}`);
    const r: SuiteRun = await runSuite(suite, rev, url, dir, caller === 'direct' ? undefined : callers[caller]);
    if (caller !== 'direct') {
      // the raw-header scenarios again, through a plain-http tunnel that carries their bytes over mTLS
      for (const scenario of RAW_HTTP_SCENARIOS[rev]) {
        const tunnel = await startTlsTunnel(url, callers[caller]);
        try {
          const raw = await runSuite(suite, rev, tunnel.url, path.join(dir, `raw-${scenario}`), undefined, scenario);
          const res = raw.results.get(scenario);
          if (res) r.results.set(scenario, res);
        } finally {
          await tunnel.close();
        }
      }
    }
    const passed = [...r.results.values()].filter((s) => s.passed).length;
    log(`${rev} SDK ${sdk} ${target} ${caller}: ${passed}/${r.results.size} scenarios pass (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    if (r.results.size === 0) log(`the suite wrote no results; its output:\n${r.stdout}`);
    if (caller === 'bob') addPerCallerChecks(r.results);
    const leg: Leg = { revision: rev, sdk, target, caller, results: r.results };
    // each scenario lost here is run again alone, twice, to tell a steady loss from an intermittent one
    const base = legs.find((l) => l.revision === rev && l.sdk === sdk && l.target === 'direct');
    if (base && caller !== 'direct') {
      const hidden = new Set(Object.values(HIDDEN_FROM_BOB[rev]).flat());
      const lost = [...base.results.values()].filter((d) => d.passed && !(caller === 'bob' && hidden.has(d.scenario)) && !RAW_HTTP_SCENARIOS[rev].includes(d.scenario) && lostChecks(d, r.results.get(d.scenario)).length);
      for (const d of lost.slice(0, 5)) {
        const again: boolean[] = [];
        for (let i = 0; i < 2; i++) {
          const rr = await runSuite(suite, rev, url, path.join(dir, `again-${d.scenario}-${i}`), callers[caller], d.scenario);
          const res = rr.results.get(d.scenario);
          if (res && caller === 'bob') addPerCallerChecks(rr.results);
          again.push(res !== undefined && lostChecks(d, res).length === 0);
        }
        (leg.reruns ??= new Map()).set(d.scenario, again);
        log(`  ${d.scenario} lost; run again alone: ${again.map((p) => (p ? 'passed' : 'lost')).join(', ')}`);
      }
    }
    legs.push(leg);
  };

  try {
    if (!only || only === '2025-11-25') {
      const direct = await startDirectSdk1();
      closers.push(() => direct.close());
      const gw = await gatewayIn('2025-11-25', direct.url);
      const handler = createMcpSdk1Handler({ serverInfo: { name: 'mcp-mtls-conformance-sdk1', version: '1.0.0' }, serverOptions: SDK1_SERVER_OPTIONS, build: buildSdk1, policy: policyFromText(policyText('2025-11-25')), stateful: true, retryInterval: SDK1_RETRY_MS });
      const adapter = createMtlsServer({ ...tls, log: () => undefined }, handler);
      const adapterUrl = await listen(adapter);
      closers.push(async () => {
        await handler.close();
        adapter.closeAllConnections();
        await new Promise((r) => adapter.close(r));
      });
      await run('2025-11-25', '1.x', 'direct', 'direct', direct.url);
      for (const caller of ['alice', 'bob'] as const) {
        await run('2025-11-25', '1.x', 'gateway', caller, gw);
        await run('2025-11-25', '1.x', 'adapter-sdk1', caller, adapterUrl);
      }
    }
    if (!only || only === '2025-11-25') {
      // SDK 2.x for 2025-era clients: sessions, as the SDK documents a sessionful legacy wiring
      const direct = await startDirectSdk2Legacy();
      closers.push(() => direct.close());
      const gw = await gatewayIn('2025-11-25', direct.url);
      const handler = createMcpSdk2Handler({ serverInfo: { name: 'mcp-mtls-conformance-sdk2-legacy', version: '1.0.0' }, serverOptions: SDK2_LEGACY_SERVER_OPTIONS, build: buildSdk2Legacy, policy: policyFromText(policyText('2025-11-25')), stateful: true, retryInterval: SDK1_RETRY_MS });
      const adapter = createMtlsServer({ ...tls, log: () => undefined }, handler);
      const adapterUrl = await listen(adapter);
      closers.push(async () => {
        await handler.close();
        adapter.closeAllConnections();
        await new Promise((r) => adapter.close(r));
      });
      await run('2025-11-25', '2.x', 'direct', 'direct', direct.url);
      for (const caller of ['alice', 'bob'] as const) {
        await run('2025-11-25', '2.x', 'gateway', caller, gw);
        await run('2025-11-25', '2.x', 'adapter-sdk2', caller, adapterUrl);
      }
    }
    if (!only || only === '2026-07-28') {
      const direct = await startDirectSdk2();
      closers.push(() => direct.close());
      const gw = await gatewayIn('2026-07-28', direct.url);
      // the adapter's list-changed publisher, once it has one (issue 19, finding 6)
      const notifier = () => (handler as { notify?: ListNotifier }).notify;
      const handler = createMcpSdk2Handler({ serverInfo: { name: 'mcp-mtls-conformance-sdk2', version: '1.0.0' }, serverOptions: SDK2_SERVER_OPTIONS, build: (server) => buildSdk2(server, notifier), policy: policyFromText(policyText('2026-07-28')) });
      const adapter = createMtlsServer({ ...tls, log: () => undefined }, handler);
      const adapterUrl = await listen(adapter);
      closers.push(async () => {
        await handler.close();
        adapter.closeAllConnections();
        await new Promise((r) => adapter.close(r));
      });
      await run('2026-07-28', '2.x', 'direct', 'direct', direct.url);
      for (const caller of ['alice', 'bob'] as const) {
        await run('2026-07-28', '2.x', 'gateway', caller, gw);
        await run('2026-07-28', '2.x', 'adapter-sdk2', caller, adapterUrl);
      }
    }
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  }

  const report = compare(legs, HIDDEN_FROM_BOB);
  report.gatewayLog = [...gatewayLog];
  const text = renderText(report, suite);
  process.stdout.write(text);
  const status = process.env.MCP_MTLS_CONFORMANCE_STATUS;
  if (status) fs.writeFileSync(status, renderMarkdown(report, suite, new Date(), HIDDEN_FROM_BOB));
  fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(report, null, 2));
  const ok = report.lost.length + report.leaked.length === 0;
  // the suite's results are kept when asked for, or when something was lost
  if (ok && !process.env.MCP_MTLS_CONFORMANCE_OUT) fs.rmSync(out, { recursive: true, force: true });
  else log(`results in ${out}`);
  fs.rmSync(pki.base, { recursive: true, force: true });
  log(`${((Date.now() - started) / 1000).toFixed(0)} s in all`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`conformance: ${e.stack ?? e.message}\n`);
    process.exit(2);
  },
);
