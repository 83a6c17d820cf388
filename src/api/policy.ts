/**
 * `mcp-mtls/policy`: the access policy: parse and compile a YAML policy (with file:line:column
 * errors), decide identity x target in microseconds, lint, load from a file and watch it.
 *
 * @packageDocumentation
 */
export { Policy, compilePolicy, policyFromText, type CompileOptions, type Decision, type PolicyTarget, type TargetKind, type PolicySubject } from '../policy/compile.js';
export { parsePolicyText, type ParsedPolicy, type PolicyProblem } from '../policy/parse.js';
export { lintPolicy, type PolicyWarning } from '../policy/lint.js';
export { unmatchedToolPatterns, toolNamesOf, type UnmatchedToolPattern } from '../policy/unknown-tools.js';
export type { PolicyDocument, RuleDocument, SubjectsDocument } from '../policy/schema.js';
export { authorizationFor, normalizeUri, type McpAuthorization } from '../policy/mcp.js';
export { canonicalUri, canonicalizeUri, type CanonicalUri } from '../policy/uri.js';
export { loadPolicy } from '../policy-file/load.js';
export { watchPolicy, type PolicyWatcher, type WatchOptions } from '../policy-file/watch.js';
