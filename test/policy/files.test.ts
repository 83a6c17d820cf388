/**
 * Policy files: every error named with file, line and column; hostile policies refused at
 * load; the watcher swaps atomically and keeps the last good policy; the CLI for authors.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { policyFromText } from '../../src/policy/compile.js';
import { lintPolicy } from '../../src/policy/lint.js';
import { parsePolicyText } from '../../src/policy/parse.js';
import { watchPolicy } from '../../src/policy-file/watch.js';
import { isMtlsError } from '../../src/errors.js';
import { cli, cliOk, ROOT, tmpDir } from '../support/cli.js';
import { makePki } from '../support/pki.js';

function problems(text: string): string {
  try {
    policyFromText(text, 'p.yaml');
  } catch (e) {
    assert.ok(isMtlsError(e, 'POLICY_INVALID') || isMtlsError(e, 'POLICY_TOO_LARGE'), String(e));
    return (e as Error).message;
  }
  assert.fail('the policy was accepted');
}

const rule = (extra: string) => `version: 1\nrules:\n  - id: r1\n    subjects: { teams: [sre] }\n    tools: [t]\n${extra}`;

test('errors name file, line and column for each kind of mistake', () => {
  assert.match(problems(rule('    tool: [x]\n')), /p\.yaml:6:5: rules\[0\]\.tool: unknown key "tool" \(did you mean "tools"\?\)/);
  assert.match(problems('version: 1\nrules:\n  - id: r1\n    subjects: { team: [sre] }\n    tools: [t]\n'), /p\.yaml:4:17: rules\[0\]\.subjects\.team: unknown key "team" \(did you mean "teams"\?\)/);
  assert.match(problems('version: 1\nrules:\n  - id: r1\n    subjects: { teams: sre }\n    tools: [t]\n'), /p\.yaml:4:\d+: rules\[0\]\.subjects\.teams: .*expected array/);
  assert.match(problems('version: 2\nrules: []\n'), /p\.yaml:1:10: version: .*1/);
  assert.match(problems('version: 1\nrules:\n  - subjects: { any: true }\n    tools: [t]\n'), /p\.yaml:3:5: rules\[0\]\.id: missing required key "id"/);
  assert.match(problems(`${rule('')}  - id: r1\n    subjects: { any: true }\n    tools: [u]\n`), /p\.yaml:6:9: rules\[1\]\.id: duplicate rule id "r1" \(first at rules\[0\]\)/);
  assert.match(problems(rule('    when: "identity.nope == 1"\n')), /p\.yaml:6:11: rules\[0\]\.when: CEL: No such key: nope/);
  assert.match(problems(rule('    when: "args.env ==="\n')), /p\.yaml:6:11: rules\[0\]\.when: CEL syntax:/);
  assert.match(problems(rule('    when: "1 + 2"\n')), /must be a bool/);
  assert.match(problems('version: 1\nrules:\n  - id: r1\n    subjects: { any: true }\n    tools: ["[abc"]\n'), /p\.yaml:5:13: rules\[0\]\.tools\[0\]: invalid pattern/);
  assert.match(problems('version: 1\nrules:\n  - id: r1\n    subjects: { any: true }\n'), /a rule names tools, resources or prompts/);
  assert.match(problems('version: 1\nrules:\n  - id: r1\n    subjects: { any: true, teams: [x] }\n    tools: [t]\n'), /cannot be combined/);
  assert.match(problems('version: 1\nrules: [\n'), /p\.yaml:\d+:\d+: \(yaml\)/);
  assert.match(problems('version: 1\nversion: 1\nrules: []\n'), /\(yaml\): .*[Uu]nique|duplicate/i);
});

test('hostile policies are refused at load, and evaluation stays bounded', () => {
  assert.match(problems(`version: 1\nrules: []\n#${'x'.repeat(5 * 1024 * 1024)}\n`), /at most 4194304/);
  const laughs = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`)];
  const started = Date.now();
  assert.match(problems(`${laughs.join('\n')}\nversion: 1\nrules: []\n`), /alias|(yaml)/i);
  assert.ok(Date.now() - started < 2000, 'the billion laughs are cut short');
  assert.match(problems(`version: 1\nrules: ${'['.repeat(5000)}${']'.repeat(5000)}\n`), /p\.yaml/);
  assert.match(problems(rule('    when: "args.items.all(x, args.items.exists(y, x == y))"\n')), /may not nest/);
  assert.match(problems(rule(`    when: "${'(1 == 1) && '.repeat(300)}true"\n`)), /CEL/);
  assert.match(problems(rule(`    when: "${'x'.repeat(5000)}"\n`)), /4096/);
  // a single comprehension over a maximal argument list: linear, fast
  const p = policyFromText(rule('    when: "args.items.all(x, x > 0)"\n'));
  const subject = { principal: 'spiffe://a/user/u', trustDomain: 'a', kind: 'user' as const, id: 'u', teams: ['sre'], roles: [] };
  const t0 = performance.now();
  const d = p.decide(subject, { kind: 'tool', name: 't', args: { items: Array.from({ length: 9000 }, (_, i) => i + 1) } });
  assert.equal(d.allowed, true);
  assert.ok(performance.now() - t0 < 500, 'bounded evaluation');
});

test('lint: shadowed rules, impossible subjects, scopes nobody holds', () => {
  const { doc } = parsePolicyText(`
version: 1
rules:
  - id: deny-db
    effect: deny
    subjects: { any: true }
    tools: ["db_*"]
  - id: shadowed
    subjects: { teams: [sre] }
    tools: [db_query]
  - id: not-shadowed
    subjects: { teams: [sre] }
    tools: [db_query, other]
  - id: impossible
    subjects: { users: [a], services: [b] }
    tools: [x]
  - id: bad-team
    subjects: { teams: ["has space"] }
    tools: [x]
  - id: never
    subjects: { any: true }
    tools: [x]
    when: "false"
toolScopes:
  pay: [payments:write]
`);
  const w = lintPolicy(doc).map((x) => x.message);
  assert.deepEqual(w, [
    'rule "shadowed" never allows anything: deny rule "deny-db" covers all its subjects and targets',
    'rule "impossible" can never match: its subjects require both a user and a service: no principal is both',
    'rule "bad-team" can never match: no certificate can carry any of its teams (has space): invalid names',
    'rule "never" can never match: its condition is always false',
    'tools "pay" require payments:write, which no scope grant gives: nobody can call them',
  ]);
});

test('the watcher swaps in a valid change, keeps the last good policy on an invalid one, and reports both', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'policy.yaml');
  const allowT = (tool: string) => `version: 1\nrules:\n  - id: r\n    subjects: { any: true }\n    tools: [${tool}]\n`;
  fs.writeFileSync(file, allowT('first'));
  const events: string[] = [];
  const w = watchPolicy(file, { debounceMs: 20, onReload: () => events.push('reload'), onError: (e, kept) => events.push(`error:${(e as Error).message.split('\n')[1]}:kept=${kept.source.rules[0]?.tools?.[0]}`) });
  const who = { principal: 'spiffe://a/user/u', trustDomain: 'a', kind: 'user' as const, id: 'u', teams: [], roles: [] };
  const allowed = (tool: string) => w.current().decide(who, { kind: 'tool', name: tool }).allowed;
  const waitFor = async (cond: () => boolean) => {
    for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(cond());
  };
  try {
    assert.equal(allowed('first'), true);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, allowT('second'));
    fs.renameSync(tmp, file); // as editors and deploy tools replace files
    await waitFor(() => allowed('second'));
    assert.equal(allowed('first'), false);
    fs.writeFileSync(file, 'version: 1\nrules:\n  - id: r\n    subject: {}\n');
    await waitFor(() => events.some((e) => e.startsWith('error')));
    assert.equal(allowed('second'), true, 'the last good policy stays in force');
    assert.deepEqual(events, ['reload', `error:${file}:3:5: rules[0].subjects: missing required key "subjects" (object):kept=second`]);
  } finally {
    w.close();
  }
});

const EXAMPLE = path.join(ROOT, 'examples', 'policy');

test('policy check / explain / test through the CLI', async () => {
  const ok = await cliOk<string>(['policy', 'check', path.join(EXAMPLE, 'policy.yaml')]);
  assert.match(ok, /valid \(6 rules, 1 scope grants\)/);
  const dir = tmpDir();
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'version: 1\nrules:\n  - id: a\n    subjects: { teams: [x] }\n    tools: [t]\n    when: "identity.team == 1"\n');
  const r = await cli(['policy', 'check', bad]);
  assert.equal(r.code, 78);
  assert.match(r.stderr, /bad\.yaml:6:11: rules\[0\]\.when: CEL: No such key: team/);

  const explain = await cliOk<{ decision: { allowed: boolean; ruleId: string; visible: boolean }; rules: { id: string; applies: boolean; why: string }[] }>([
    'policy', 'explain', path.join(EXAMPLE, 'policy.yaml'), '--user', 'bob', '--team', 'dev', '--tool', 'deploy_app', '--args', '{"env":"prod"}', '--json',
  ]);
  assert.deepEqual([explain.decision.allowed, explain.decision.ruleId, explain.decision.visible], [false, 'dev-deploy-staging', true]);
  assert.match(explain.rules.find((x) => x.id === 'sre-operations')!.why, /not in teams \[sre\]/);

  const t = await makePki(['--trust-domain', 'acme.test'].slice(0, 0));
  const alice = await t.issue(['issue', 'client', '--user', 'alice', '--team', 'sre', '--role', 'admin']);
  const byCert = await cliOk<string>(['policy', 'explain', path.join(EXAMPLE, 'policy.yaml'), '--cert', alice.files.cert, '--tool', 'deploy_prod']);
  assert.match(byCert, /^ALLOW by rule "sre-operations"/);
  assert.match(byCert, /scopes=\[deploy:prod\]/);

  const tests = await cli(['policy', 'test', path.join(EXAMPLE, 'policy.yaml'), path.join(EXAMPLE, 'cases.yaml')]);
  assert.equal(tests.code, 0, tests.stdout);
  assert.match(tests.stdout, /11 passed, 0 failed/);
  const wrong = path.join(dir, 'wrong-cases.yaml');
  fs.writeFileSync(wrong, 'cases:\n  - name: bob deploys to prod\n    identity: { user: bob, teams: [dev] }\n    tool: deploy_app\n    args: { env: prod }\n    expect: allow\n');
  const failing = await cli(['policy', 'test', path.join(EXAMPLE, 'policy.yaml'), wrong]);
  assert.equal(failing.code, 1);
  assert.match(failing.stdout, /FAIL  bob deploys to prod: expected allow, got deny by "dev-deploy-staging"/);
  assert.match(failing.stdout, /0 passed, 1 failed/);
});
