/**
 * `mcp-mtls/server/sdk2`: the adapter for the MCP SDK 2.x packages (`@modelcontextprotocol/server`
 * and `@modelcontextprotocol/node`). Needs those installed (optional peer dependencies).
 *
 * @packageDocumentation
 */
export { createMcpSdk2Handler, type McpSdk2Options } from '../mcp/sdk2.js';
