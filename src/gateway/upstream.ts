/**
 * The call to the upstream: its connection pools, the timeout, and how a failed call is
 * answered (502 unreachable, 504 slow: the gateway stays up).
 */
import type { ServerResponse } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { sendJson } from '../mcp/http-body.js';
import type { GatewayRoute } from './route.js';

/** Response headers never forwarded: hop-by-hop, and the length the gateway's rewriting changes. */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'trailer']);

/** The upstream's response headers as the client gets them. */
export function clientResponseHeaders(upstream: Dispatcher.ResponseData['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(upstream)) if (v !== undefined && !DROP_RESPONSE.has(k)) out[k] = v as string | string[];
  return out;
}

/**
 * The gateway's own connection pools, for routes without a dispatcher: requests and
 * long-lived streams (GET, 2026-07-28 listen) in separate pools, so streams can never starve calls.
 */
export class UpstreamPools {
  readonly #calls = new Agent({ keepAliveTimeout: 30_000 });
  readonly #streams = new Agent({ keepAliveTimeout: 30_000 });

  for(route: GatewayRoute, isStream: boolean): Dispatcher {
    return route.dispatcher ?? (isStream ? this.#streams : this.#calls);
  }

  /** Closes the gateway's pools (not the routes' dispatchers). */
  async close(): Promise<void> {
    await this.#calls.close().catch(() => undefined);
    await this.#streams.close().catch(() => undefined);
  }
}

export interface UpstreamCall {
  readonly url: URL;
  readonly method: string | undefined;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly dispatcher: Dispatcher;
  /** how long to wait for the response headers, in milliseconds */
  readonly timeoutMs: number;
}

/** A failed upstream call as the client gets it: a JSON-RPC error, or a cut connection once headers went out. */
function rpcFailure(res: ServerResponse, status: number, message: string): void {
  if (!res.headersSent) sendJson(res, status, { jsonrpc: '2.0', id: null, error: { code: -32603, message } });
  else res.destroy();
}

/** The origin and path of an upstream URL, worked out once per URL object (a route's own URL is the same object on every call). */
const targets = new WeakMap<URL, { origin: string; path: string }>();
function targetOf(url: URL): { origin: string; path: string } {
  let t = targets.get(url);
  if (!t) targets.set(url, (t = { origin: url.origin, path: `${url.pathname}${url.search}` }));
  return t;
}

/** Calls the upstream; on failure answers the client (and logs why) and returns undefined. */
export async function callUpstream(call: UpstreamCall, res: ServerResponse, route: GatewayRoute, log: (line: string) => void): Promise<Dispatcher.ResponseData | undefined> {
  try {
    // the dispatcher's own request(): undici's top-level request() parses the URL again on every call
    const { origin, path } = targetOf(call.url);
    return await call.dispatcher.request({
      origin,
      path,
      method: (call.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: call.headers,
      ...(call.body !== undefined ? { body: call.body } : {}),
      headersTimeout: call.timeoutMs,
      bodyTimeout: 0, // SSE streams stay open as long as they have to
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const slow = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
    log(`upstream ${route.upstream.href}: ${code ?? ''} ${(e as Error).message}`);
    rpcFailure(res, slow ? 504 : 502, slow ? `the upstream MCP server did not answer within ${call.timeoutMs} ms` : 'the upstream MCP server is unavailable');
    return undefined;
  }
}
