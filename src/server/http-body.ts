/** Reading a JSON request body with a size bound, and writing JSON answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

export type BodyResult = { ok: true; value: unknown } | { ok: false; status: number; body: unknown };

export async function readJsonBody(req: IncomingMessage, max = DEFAULT_MAX_BODY): Promise<BodyResult> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) {
      req.resume();
      return { ok: false, status: 413, body: { jsonrpc: '2.0', id: null, error: { code: -32600, message: `request body larger than ${max} bytes` } } };
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch {
    return { ok: false, status: 400, body: { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: the body is not JSON' } } };
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'private, no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Answers that depend on the caller (filtered lists) must not be shared by caches: whatever
 * Cache-Control the SDK writes gets `private` in front of it.
 */
export function keepPrivate(res: ServerResponse): void {
  res.setHeader('cache-control', 'private, no-store');
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  res.writeHead = ((status: number, ...rest: unknown[]) => {
    const headers = rest.find((r) => r && typeof r === 'object' && !Array.isArray(r)) as Record<string, unknown> | undefined;
    if (headers) {
      for (const k of Object.keys(headers)) {
        if (k.toLowerCase() === 'cache-control' && !/\bprivate\b/.test(String(headers[k]))) headers[k] = `private, ${String(headers[k])}`;
      }
    }
    return writeHead(status, ...rest);
  }) as ServerResponse['writeHead'];
}
