/**
 * The one way a JSON answer is written (the MCP adapters, the gateway, `ca serve`, the mTLS
 * listener's refusals). The Cache-Control header is a required choice, not a default: MCP
 * answers differ per caller and must stay out of shared caches (`private, no-store`), `ca serve`
 * answers and refusals must not be stored at all (`no-store`); two helpers with different
 * silent defaults existed before.
 */
import type { ServerResponse } from 'node:http';

/** Options of {@link sendJsonResponse}. */
export interface JsonResponseOptions {
  /** the Cache-Control header */
  readonly cacheControl: 'no-store' | 'private, no-store';
  /** more headers, written after (so over) the ones set here */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Writes `value` as the whole JSON answer: Content-Type, Cache-Control, Content-Length, then `headers`. */
export function sendJsonResponse(res: ServerResponse, status: number, value: unknown, options: JsonResponseOptions): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': options.cacheControl, 'content-length': Buffer.byteLength(body), ...options.headers });
  res.end(body);
}
