/**
 * `mcp-mtls`: what every part of the toolkit shares: the error type and the identity a
 * verified client certificate turns into. The parts live in subpaths (`mcp-mtls/ca`,
 * `mcp-mtls/identity`, `mcp-mtls/policy`, `mcp-mtls/server`, `mcp-mtls/client`,
 * `mcp-mtls/gateway`, and `.../sdk1`, `.../sdk2` for the MCP SDK adapters), so that an
 * import pulls in only the code (and the SDK) it needs.
 *
 * This folder (src/api/) is the whole public API: each file is one package subpath, and
 * nothing outside it is reachable by users (package.json `exports`).
 *
 * @packageDocumentation
 */
export { MtlsError, isMtlsError, ERROR_CODES, type ErrorCode, type ErrorKind } from '../errors.js';
export type { Identity, ClientClaims } from '../identity/identity.js';
export { VERSION } from '../version.js';
