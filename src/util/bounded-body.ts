/**
 * Reading a request body with an upper bound, shared by the MCP server (JSON-RPC bodies) and the
 * online CA (CSRs). Plain 'data' events: an async iterator costs a promise per chunk, and this
 * runs on every request. A body declared (Content-Length) or found larger than `max` is refused
 * as soon as that is known, without buffering the rest.
 */
import type { IncomingMessage } from 'node:http';

/** The body, or why there is none: too large, or the stream failed. */
export type BoundedBody = { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly tooLarge: boolean; readonly error?: Error };

export function readBoundedBody(req: IncomingMessage, max: number): Promise<BoundedBody> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    req.resume();
    return Promise.resolve({ ok: false, tooLarge: true });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        done = true;
        resolve({ ok: false, tooLarge: true });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve({ ok: true, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) });
    });
    req.on('error', (error) => {
      if (done) return;
      done = true;
      resolve({ ok: false, tooLarge: false, error });
    });
  });
}
