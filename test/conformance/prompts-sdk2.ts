/**
 * The prompts the conformance suite's prompt scenarios (prompts-list, prompts-get-*, completion)
 * expect, registered on an SDK 2.x McpServer: the same on both 2.x targets (target-sdk2.ts
 * per request for 2026-07-28, target-sdk2-legacy.ts with sessions for 2025-11-25), so written
 * once. target-sdk1.ts has its own for the 1.x McpServer, whose registration types differ.
 */
import { z } from 'zod';
import { completable, type McpServer } from '@modelcontextprotocol/server';
import { PNG, TEXT } from './content.js';

// schemas made once, outside the per-request build (zod compiles a schema on its first parse)
const promptArgs = { arg1: completable(z.string(), (v: string | undefined) => ['paris', 'park', 'party'].filter((c) => c.startsWith(v ?? ''))), arg2: z.string() };
const resourceUriArg = { resourceUri: z.string() };

export function registerSuitePrompts(server: McpServer): void {
  server.registerPrompt('test_simple_prompt', { description: 'a simple prompt' }, async () => ({ messages: [{ role: 'user' as const, content: { type: 'text' as const, text: TEXT.simplePrompt } }] }));
  server.registerPrompt('test_prompt_with_arguments', { description: 'a prompt with arguments', argsSchema: promptArgs }, async ({ arg1, arg2 }) => ({
    messages: [{ role: 'user' as const, content: { type: 'text' as const, text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }],
  }));
  server.registerPrompt('test_prompt_with_embedded_resource', { description: 'a prompt embedding a resource', argsSchema: resourceUriArg }, async ({ resourceUri }) => ({
    messages: [
      { role: 'user' as const, content: { type: 'resource' as const, resource: { uri: resourceUri, mimeType: 'text/plain', text: TEXT.promptResource } } },
      { role: 'user' as const, content: { type: 'text' as const, text: 'Please process the embedded resource above.' } },
    ],
  }));
  server.registerPrompt('test_prompt_with_image', { description: 'a prompt with an image' }, async () => ({
    messages: [
      { role: 'user' as const, content: { type: 'image' as const, data: PNG, mimeType: 'image/png' } },
      { role: 'user' as const, content: { type: 'text' as const, text: 'Please analyze the image above.' } },
    ],
  }));
}
