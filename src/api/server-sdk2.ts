/**
 * `mcp-mtls/server/sdk2`: the adapter for the MCP SDK 2.x packages (`@modelcontextprotocol/server`
 * and `@modelcontextprotocol/node`). Needs those installed (optional peer dependencies).
 *
 * @packageDocumentation
 */
export { createMcpSdk2Handler, type McpSdk2Options } from '../mcp/sdk2.js';
export type { CallerNotifier } from '../mcp/sdk2-listen.js';
export type { McpStatefulOptions } from '../mcp/sessions.js';
export type { EventStoreLimits, SseEventStore } from '../mcp/event-store.js';
