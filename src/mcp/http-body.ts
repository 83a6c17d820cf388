/** Reading a JSON request body with a size bound, and writing JSON answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBoundedBody } from '../util/bounded-body.js';
import { sendJsonResponse } from '../util/json-response.js';

export const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

export type BodyResult = { ok: true; value: unknown } | { ok: false; status: number; body: unknown };

export async function readJsonBody(req: IncomingMessage, max = DEFAULT_MAX_BODY): Promise<BodyResult> {
  const r = await readBoundedBody(req, max);
  if (!r.ok) {
    return r.tooLarge
      ? { ok: false, status: 413, body: { jsonrpc: '2.0', id: null, error: { code: -32600, message: `request body larger than ${max} bytes` } } }
      : { ok: false, status: 400, body: { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'the request body could not be read' } } };
  }
  try {
    return { ok: true, value: JSON.parse(r.body.toString('utf8')) };
  } catch {
    return { ok: false, status: 400, body: { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: the body is not JSON' } } };
  }
}

/** An answer of the MCP side (adapters, gateway): private, since what a caller is told depends on who they are. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendJsonResponse(res, status, body, { cacheControl: 'private, no-store' });
}

/**
 * Answers that depend on the caller (filtered lists) must not be shared by caches: whatever
 * Cache-Control the SDK writes gets `private` in front of it.
 */
export function keepPrivate(res: ServerResponse): void {
  // one function for every response (no closure per request): the writeHead it replaces is kept on the response
  if (res.writeHead === privateWriteHead) return;
  (res as unknown as Record<symbol, unknown>)[ORIGINAL_WRITE_HEAD] = res.writeHead;
  res.writeHead = privateWriteHead as ServerResponse['writeHead'];
}

const ORIGINAL_WRITE_HEAD = Symbol('mcp-mtls.writeHead');

function privateWriteHead(this: ServerResponse, status: number, ...rest: unknown[]): ServerResponse {
  const headers = (typeof rest[0] === 'object' && rest[0] !== null && !Array.isArray(rest[0]) ? rest[0] : rest[1]) as Record<string, unknown> | undefined;
  let seen = false;
  if (headers && typeof headers === 'object' && !Array.isArray(headers)) {
    for (const k in headers) {
      if (k.length === 13 && k.toLowerCase() === 'cache-control') {
        seen = true;
        if (!String(headers[k]).includes('private')) headers[k] = `private, ${String(headers[k])}`;
      }
    }
  }
  if (!seen && !this.hasHeader('cache-control')) this.setHeader('cache-control', 'private, no-store');
  const writeHead = (this as unknown as Record<symbol, unknown>)[ORIGINAL_WRITE_HEAD] as (...a: unknown[]) => ServerResponse;
  return writeHead.call(this, status, ...rest);
}
