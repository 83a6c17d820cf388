/**
 * `mcp-mtls/server/sdk1`: the adapter for `@modelcontextprotocol/sdk` 1.x (McpServer +
 * StreamableHTTPServerTransport). Needs that package installed (an optional peer dependency).
 *
 * @packageDocumentation
 */
export { createMcpSdk1Handler, type McpSdk1Options } from '../mcp/sdk1.js';
export type { EventStoreLimits } from '../mcp/event-store.js';
