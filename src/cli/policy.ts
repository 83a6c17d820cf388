/** `mcp-mtls policy check | explain | test`: tools for policy authors. */
import fs from 'node:fs';
import type { Command } from 'commander';
import YAML from 'yaml';
import { z } from 'zod';
import { MtlsError } from '../errors.js';
import { decodeIdentity } from '../identity/decode.js';
import { checkToolGlobs } from '../delegation/grant.js';
import { assertPrincipalId, assertTeamOrRole, assertTrustDomain, type PrincipalKind } from '../identity/names.js';
import { principalUri } from '../identity/principal.js';
import { parsePolicyText } from '../policy/parse.js';
import { compilePolicy, type Policy, type PolicySubject, type PolicyTarget } from '../policy/compile.js';
import { lintPolicy } from '../policy/lint.js';
import { toolNamesOf, unmatchedToolPatterns } from '../policy/unknown-tools.js';
import { loadPolicy } from '../policy-file/load.js';
import { readCertificates } from '../x509/pem.js';
import { collect, emit, once } from './io.js';
import { table } from './list.js';

function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MtlsError('FILE_NOT_FOUND', `cannot read ${what} ${file}`, { cause, hint: 'check the path' });
  }
}

function subjectFrom(kind: PrincipalKind, id: string, teams: string[], roles: string[], trustDomain: string): PolicySubject {
  assertTrustDomain(trustDomain);
  assertPrincipalId(id, kind);
  teams.forEach((t) => assertTeamOrRole(t, 'team'));
  roles.forEach((r) => assertTeamOrRole(r, 'role'));
  return { principal: principalUri(trustDomain, kind, id), trustDomain, kind, id, teams: [...teams].sort(), roles: [...roles].sort() };
}

/** A delegated call (docs/delegation.md): `via` (`service/chat-platform`) acting for `delegator`, as a delegated certificate reads. */
function delegatedSubject(delegator: PolicySubject, via: string | undefined, tools: readonly string[] = []): PolicySubject {
  if (via === undefined) {
    if (tools.length > 0) throw new MtlsError('USAGE', 'a delegation\'s tool globs (--grant-tool, viaTools) need an actor: --via service/ID (or via: in a test case)');
    return delegator;
  }
  const globs = tools.length > 0 ? checkToolGlobs(tools, (m) => new MtlsError('USAGE', `--grant-tool: ${m}`)) : undefined;
  const m = /^(user|service)\/(.+)$/.exec(via);
  if (!m) throw new MtlsError('USAGE', `--via ${via}: name the actor as user/ID or service/ID, e.g. service/chat-platform`);
  const kind = m[1] as PrincipalKind;
  const id = assertPrincipalId(m[2] as string, kind);
  return { principal: principalUri(delegator.trustDomain, kind, id), trustDomain: delegator.trustDomain, kind, id, teams: [], roles: [], actingFor: { principal: delegator.principal, trustDomain: delegator.trustDomain, kind: delegator.kind, id: delegator.id, teams: delegator.teams, roles: delegator.roles, ...(globs ? { tools: globs } : {}) } };
}

function parseArgs(json: string | undefined): unknown {
  if (json === undefined) return {};
  try {
    return JSON.parse(json);
  } catch (e) {
    throw new MtlsError('USAGE', `--args is not JSON: ${(e as Error).message}`, { hint: `e.g. --args '{"env":"staging"}'` });
  }
}

function targetFrom(o: { tool?: string; resource?: string; prompt?: string; args?: string }): PolicyTarget {
  const given = [o.tool, o.resource, o.prompt].filter((v) => v !== undefined).length;
  if (given !== 1) throw new MtlsError('USAGE', 'give exactly one of --tool NAME, --resource URI or --prompt NAME');
  if (o.tool !== undefined) return { kind: 'tool', name: o.tool, args: parseArgs(o.args) };
  if (o.prompt !== undefined) return { kind: 'prompt', name: o.prompt, args: parseArgs(o.args) };
  return { kind: 'resource', uri: o.resource as string };
}

/** The tool names of a --tools file: JSON (a tools/list result, a JSON-RPC answer with one, a list), else one name a line. */
function readToolNames(file: string): string[] {
  const text = readText(file, 'tools file');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const names = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    if (names.length > 0 && names.every((n) => /^[\x21-\x7e]+$/.test(n))) return names;
    throw new MtlsError('BAD_ARGUMENT', `${file} is neither JSON nor a list of tool names, one a line`, { hint: 'save the result of tools/list as JSON (e.g. from `mcp-mtls connect` or the MCP inspector), or write one name a line' });
  }
  const names = toolNamesOf(value);
  if (!names) throw new MtlsError('BAD_ARGUMENT', `${file} holds no tool names: expected a tools/list result ({"tools":[{"name":...}]}), a JSON-RPC answer with one, or a list of names`, { hint: 'pass the JSON of a tools/list result' });
  return names;
}

const defaultTrustDomain = (policy: Policy) => policy.source.trustDomains?.[0] ?? 'example.test';

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('check, explain and test access policies (docs/policy.md)');

  policy
    .command('check')
    .description('validate a policy and warn about rules that can never apply')
    .argument('<file>', 'the policy YAML')
    .option('--tools <file>', "the server's tools: a tools/list result (JSON), a JSON list of names, or one name a line; warns about tool names and patterns of the policy that match none")
    .option('--json', 'print the result as JSON')
    .action((file: string, o) => {
      const { doc, locate } = parsePolicyText(readText(file, 'policy'), file);
      compilePolicy(doc, {}, locate);
      const tools = o.tools === undefined ? undefined : readToolNames(o.tools);
      const warnings = [...lintPolicy(doc), ...(tools ? unmatchedToolPatterns(doc, tools) : [])];
      emit(o.json, { valid: true, rules: doc.rules.length, scopeGrants: doc.scopes?.length ?? 0, ...(tools ? { tools: tools.length } : {}), warnings }, () =>
        [`${file}: valid (${doc.rules.length} rules, ${doc.scopes?.length ?? 0} scope grants)`, ...warnings.map((w) => `warning: ${w.message}`), ''].join('\n'),
      );
    });

  policy
    .command('explain')
    .description('the decision for one caller and one target, and why every rule did or did not apply')
    .argument('<file>', 'the policy YAML')
    .option('--cert <file>', "the caller's certificate (PEM or DER)")
    .option('--user <id>', 'the caller, a user', once('--user'))
    .option('--service <id>', 'the caller, a service', once('--service'))
    .option('--team <name>', 'with --user/--service: a team (repeatable)', collect, [])
    .option('--role <name>', 'with --user/--service: a role (repeatable)', collect, [])
    .option('--trust-domain <td>', 'with --user/--service (default: the policy\'s first trust domain)')
    .option('--via <actor>', 'with --user/--service: a delegated call, made by this actor (service/ID or user/ID) for the caller (docs/delegation.md)', once('--via'))
    .option('--grant-tool <glob>', 'with --via: the delegation is limited to tools matching this glob (repeatable; as `mcp-mtls delegate --tool`, profile v1.2)', collect, [])
    .option('--tool <name>', 'a tool call')
    .option('--resource <uri>', 'a resource read')
    .option('--prompt <name>', 'a prompt')
    .option('--args <json>', 'tool or prompt arguments as JSON')
    .option('--upstream <name>', "a gateway upstream (route name): decide with the rules for it, as the gateway does with a shared policy whose rules name upstreams")
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `\nExample:\n  $ mcp-mtls policy explain policy.yaml --user bob --team dev --tool deploy_app --args '{"env":"prod"}'`)
    .action((file: string, o) => {
      const loaded = loadPolicy(file);
      const p = o.upstream === undefined ? loaded : loaded.forUpstream(o.upstream);
      let subject: PolicySubject;
      if (o.cert) {
        subject = decodeIdentity(readCertificates(fs.readFileSync(o.cert))[0] as Buffer);
      } else {
        if ((o.user === undefined) === (o.service === undefined)) throw new MtlsError('USAGE', 'give --cert FILE, or exactly one of --user ID and --service ID');
        subject = delegatedSubject(subjectFrom(o.user ? 'user' : 'service', o.user ?? o.service, o.team, o.role, o.trustDomain ?? defaultTrustDomain(p)), o.via, o.grantTool);
      }
      const result = p.explain(subject, targetFrom(o));
      const d = result.decision;
      const af = subject.actingFor;
      emit(o.json, { subject, ...result }, () =>
        [
          `${d.allowed ? 'ALLOW' : 'DENY'}${d.ruleId ? ` by rule "${d.ruleId}"` : ''}: ${d.reason}${!d.allowed && !d.visible ? ' (hidden: answered as an unknown target)' : ''}`,
          af
            ? `caller: ${af.principal} teams=[${af.teams.join(',')}] roles=[${af.roles.join(',')}] scopes=[${d.scopes.join(',')}], via the actor ${subject.principal}${af.tools ? `, the delegation limited to tools [${af.tools.join(',')}]` : ''}`
            : `caller: ${subject.principal} teams=[${subject.teams.join(',')}] roles=[${subject.roles.join(',')}] scopes=[${d.scopes.join(',')}]`,
          '',
          ...(result.delegation ? [`the delegator's side (${result.delegation.delegator}): allows and denies`] : []),
          table(['RULE', 'EFFECT', 'APPLIES', 'WHY'], result.rules.map((r) => [r.id, r.effect, r.applies ? 'yes' : 'no', r.why])),
          ...(result.delegation
            ? ['', `the actor's side (${result.delegation.actor}): its denies restrict, its allows do not count`, table(['RULE', 'EFFECT', 'APPLIES', 'WHY'], result.delegation.actorRules.map((r) => [r.id, r.effect, r.applies ? 'yes' : 'no', r.why]))]
            : []),
        ].join('\n'),
      );
    });

  policy
    .command('test')
    .description('table tests for a policy: who, what, expected decision; exits 1 on any mismatch')
    .argument('<file>', 'the policy YAML')
    .argument('<cases>', 'the test cases YAML (docs/policy.md)')
    .option('--json', 'print the result as JSON')
    .action((file: string, casesFile: string, o) => {
      const p = loadPolicy(file);
      const cases = parseCases(readText(casesFile, 'test cases'), casesFile);
      const results = cases.map((c, i) => {
        const who = c.identity;
        const subject = delegatedSubject(subjectFrom(who.user !== undefined ? 'user' : 'service', (who.user ?? who.service) as string, who.teams ?? [], who.roles ?? [], who.trustDomain ?? defaultTrustDomain(p)), who.via, who.viaTools);
        const target: PolicyTarget = c.tool !== undefined ? { kind: 'tool', name: c.tool, args: c.args ?? {} } : c.prompt !== undefined ? { kind: 'prompt', name: c.prompt, args: c.args ?? {} } : { kind: 'resource', uri: c.resource as string };
        const d = p.decide(subject, target);
        const got = d.allowed ? 'allow' : d.visible ? 'deny' : 'hidden';
        const expectOk = c.expect === got || (c.expect === 'deny' && got === 'hidden');
        const ruleOk = c.rule === undefined || c.rule === d.ruleId;
        return { name: c.name ?? `case ${i + 1}`, passed: expectOk && ruleOk, expected: c.expect, got, ruleId: d.ruleId, ...(c.rule ? { expectedRule: c.rule } : {}), reason: d.reason };
      });
      const failed = results.filter((r) => !r.passed).length;
      emit(o.json, { passed: results.length - failed, failed, results }, () =>
        [
          ...results.map((r) => (r.passed ? `ok    ${r.name}` : `FAIL  ${r.name}: expected ${r.expected}${r.expectedRule ? ` by "${r.expectedRule}"` : ''}, got ${r.got}${r.ruleId ? ` by "${r.ruleId}"` : ''} (${r.reason})`)),
          `${results.length - failed} passed, ${failed} failed`,
          '',
        ].join('\n'),
      );
      if (failed > 0) process.exitCode = 1;
    });
}

const CaseSchema = z
  .strictObject({
    name: z.string().optional(),
    identity: z
      .strictObject({ user: z.string().optional(), service: z.string().optional(), teams: z.array(z.string()).optional(), roles: z.array(z.string()).optional(), trustDomain: z.string().optional(), via: z.string().optional(), viaTools: z.array(z.string()).optional() })
      .refine((i) => (i.user === undefined) !== (i.service === undefined), 'give exactly one of user or service'),
    tool: z.string().optional(),
    resource: z.string().optional(),
    prompt: z.string().optional(),
    args: z.record(z.string(), z.unknown()).optional(),
    expect: z.enum(['allow', 'deny', 'hidden']),
    rule: z.string().optional(),
  })
  .refine((c) => [c.tool, c.resource, c.prompt].filter((v) => v !== undefined).length === 1, 'give exactly one of tool, resource or prompt');

function parseCases(text: string, file: string) {
  const parsed = z.strictObject({ cases: z.array(CaseSchema).min(1) }).safeParse(YAML.parse(text));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MtlsError('BAD_ARGUMENT', `${file}: ${issue.path.join('.') || '(top)'}: ${issue.message}`, { hint: 'see "policy test" in docs/policy.md for the cases format' });
  }
  return parsed.data.cases;
}
