/** Reading a JSON request body with a size bound, and writing JSON answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

export type BodyResult = { ok: true; value: unknown } | { ok: false; status: number; body: unknown };

export function readJsonBody(req: IncomingMessage, max = DEFAULT_MAX_BODY): Promise<BodyResult> {
  // plain 'data' events: an async iterator costs a promise per chunk on every request
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        done = true;
        resolve({ ok: false, status: 413, body: { jsonrpc: '2.0', id: null, error: { code: -32600, message: `request body larger than ${max} bytes` } } });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      try {
        resolve({ ok: true, value: JSON.parse((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8')) });
      } catch {
        resolve({ ok: false, status: 400, body: { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: the body is not JSON' } } });
      }
    });
    req.on('error', () => {
      if (!done) resolve({ ok: false, status: 400, body: { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'the request body could not be read' } } });
      done = true;
    });
  });
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
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, status: number, ...rest: unknown[]) {
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
    return (writeHead as (...a: unknown[]) => ServerResponse).call(this, status, ...rest);
  } as ServerResponse['writeHead'];
}
