/**
 * `mcp-mtls/gateway`: the mTLS gateway for MCP servers you do not own, as a library: start it
 * from a config, or mount its handler in your own mTLS server; and, for the upstream side,
 * the middleware that trusts the identity the gateway forwards.
 *
 * @packageDocumentation
 */
export { startGateway, type RunningGateway, type GatewayStartOptions } from '../gateway/run.js';
export { loadGatewayConfig, GatewayConfigSchema, type GatewayConfig } from '../gateway/config.js';
export { createGatewayHandler, IDENTITY_META_KEY, type GatewayOptions, type GatewayRoute } from '../gateway/proxy.js';
export { trustForwardedIdentity, type TrustForwardedOptions } from '../mtls/trust-forwarded.js';
export { XFCC, formatXfcc, certFromXfcc } from '../mtls/xfcc.js';
