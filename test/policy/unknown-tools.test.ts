/**
 * Tool names of a policy that match none of the server's tools (policy/unknown-tools.ts), and
 * `mcp-mtls policy check --tools FILE` through the real CLI.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parsePolicyText } from '../../src/policy/parse.js';
import { toolNamesOf, unmatchedToolPatterns } from '../../src/policy/unknown-tools.js';
import { cli, cliOk, tmpDir } from '../support/cli.js';

const POLICY = `
version: 1
rules:
  - id: ops
    subjects: { teams: [sre] }
    tools: [restart_servce, status]
  - id: deployers
    subjects: { roles: [deployer] }
    tools: ["deploy_*"]
  - id: everyone
    subjects: { any: true }
    tools: ["*"]
  - id: readers
    subjects: { any: true }
    tools: ["read_{file,dir}", Status]
toolScopes:
  "restart_service": [ops:write]
  "purge_cache": [ops:write]
`;
const TOOLS = ['restart_service', 'status', 'read_file', 'search'];

test('unmatchedToolPatterns: each name or pattern that matches no tool, with the nearest name for a typo; "*" is never one', () => {
  const { doc } = parsePolicyText(POLICY, 'p.yaml');
  const found = unmatchedToolPatterns(doc, TOOLS);
  assert.deepEqual(
    found.map((w) => [w.ruleId, w.pattern, w.where, w.suggestion]),
    [
      ['ops', 'restart_servce', 'rule', 'restart_service'],
      ['deployers', 'deploy_*', 'rule', undefined],
      ['readers', 'Status', 'rule', 'status'],
      [null, 'purge_cache', 'toolScopes', undefined],
    ],
  );
  assert.equal(found[0]!.message, `rule "ops" names tool "restart_servce", which matches none of the server's 4 tools (did you mean "restart_service"?)`);
  assert.equal(found[1]!.message, `rule "deployers" names tool pattern "deploy_*", which matches none of the server's 4 tools`);
  assert.deepEqual(unmatchedToolPatterns(doc, [...TOOLS, 'restart_servce', 'deploy_prod', 'Status', 'purge_cache']), [], 'all named: nothing to say');
  // far from every name: no suggestion
  assert.equal(unmatchedToolPatterns(parsePolicyText('version: 1\nrules: [{id: a, subjects: {any: true}, tools: [frobnicate]}]', 'q.yaml').doc, TOOLS)[0]!.suggestion, undefined);
});

test('toolNamesOf: a tools/list result, a JSON-RPC answer, a list of names or of {name}; anything else is undefined', () => {
  assert.deepEqual(toolNamesOf({ tools: [{ name: 'a', inputSchema: {} }, { name: 'b' }] }), ['a', 'b']);
  assert.deepEqual(toolNamesOf({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'a' }] } }), ['a']);
  assert.deepEqual(toolNamesOf(['a', 'b']), ['a', 'b']);
  assert.deepEqual(toolNamesOf([{ name: 'a' }]), ['a']);
  assert.equal(toolNamesOf({ tools: [{ title: 'x' }] }), undefined);
  assert.equal(toolNamesOf({ result: {} }), undefined);
  assert.equal(toolNamesOf('a'), undefined);
  assert.equal(toolNamesOf(null), undefined);
});

test('policy check --tools: warns about rules naming tools the server lacks (tools/list JSON or one name a line), --json; without --tools it stays silent', async () => {
  const dir = tmpDir('mcp-mtls-tools-');
  const policy = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policy, POLICY);
  const listJson = path.join(dir, 'tools.json');
  fs.writeFileSync(listJson, JSON.stringify({ tools: TOOLS.map((name) => ({ name, inputSchema: { type: 'object' } })) }));
  const lines = path.join(dir, 'tools.txt');
  fs.writeFileSync(lines, `# the server's tools\n${TOOLS.join('\n')}\n`);

  const silent = await cliOk<string>(['policy', 'check', policy]);
  assert.doesNotMatch(silent, /restart_servce/, 'without --tools nothing is known about the tools');
  for (const file of [listJson, lines]) {
    const out = await cliOk<string>(['policy', 'check', policy, '--tools', file]);
    assert.match(out, /^warning: rule "ops" names tool "restart_servce", which matches none of the server's 4 tools \(did you mean "restart_service"\?\)$/m);
    assert.match(out, /^warning: rule "deployers" names tool pattern "deploy_\*"/m);
    assert.match(out, /^warning: toolScopes names tool "purge_cache"/m);
    assert.doesNotMatch(out, /"everyone"/);
  }
  const json = await cliOk<{ valid: boolean; tools: number; warnings: { ruleId: string | null; pattern?: string; suggestion?: string }[] }>(['policy', 'check', policy, '--tools', listJson, '--json']);
  assert.equal(json.valid, true);
  assert.equal(json.tools, 4);
  assert.deepEqual(json.warnings.find((w) => w.pattern === 'restart_servce'), json.warnings.find((w) => w.ruleId === 'ops'));
  assert.equal(json.warnings.find((w) => w.ruleId === 'ops')?.suggestion, 'restart_service');

  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ tools: 'nope' }));
  const r = await cli(['policy', 'check', policy, '--tools', bad]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /holds no tool names/);
  const missing = await cli(['policy', 'check', policy, '--tools', path.join(dir, 'none.json')]);
  assert.equal(missing.code, 66);
});
