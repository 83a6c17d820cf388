/**
 * The SDK adapters' warning about policy tool names that match none of the server's tools
 * (policy/unknown-tools.ts decides which): once per policy, when a build under it has registered
 * the tools, through the adapter's `log`.
 */
import type { Policy } from '../policy/compile.js';
import { unmatchedToolPatterns } from '../policy/unknown-tools.js';
import { stderrLog } from '../util/log.js';
import type { McpAdapterOptions } from './adapter-options.js';
import type { CallerSurface } from './surface.js';
import { whoamiToolName } from './whoami.js';

/**
 * A check to call after each build (`buildForCaller`): the first time it sees a policy, it logs
 * one line per tool name or pattern of that policy matching none of the registered tools. A
 * build that registers no tool at all (one that registers per caller and gave this one nothing)
 * is not judged.
 */
export function unknownToolsWarning(options: Pick<McpAdapterOptions, 'log' | 'whoami'>): (policy: Policy, surface: CallerSurface) => void {
  const log = options.log ?? stderrLog('mcp-mtls');
  const whoami = whoamiToolName(options.whoami); // registered by the adapter after build
  const checked = new WeakSet<Policy>();
  return (policy, surface) => {
    if (checked.has(policy) || surface.registeredTools.length === 0) return;
    checked.add(policy);
    for (const w of unmatchedToolPatterns(policy.source, whoami ? [...surface.registeredTools, whoami] : surface.registeredTools)) log(`policy: ${w.message}`);
  };
}
