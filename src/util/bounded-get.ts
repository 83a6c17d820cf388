/**
 * One HTTP(S) GET with limits, for fetching documents from URLs that certificates or
 * configuration name (CRLs): a time limit from connection to last byte, a size limit (a
 * declared Content-Length over it is refused before reading; a body growing past it is cut
 * off), no redirects followed, no connection reuse (agent: false), and no credentials in the
 * URL (they would be sent to whoever serves it, and end up in logs).
 *
 * Only a 200's body is read; any other status is returned with an empty body (and the body
 * drained), for the caller to judge.
 */
import http from 'node:http';
import https from 'node:https';
import type tls from 'node:tls';
import { MtlsError } from '../errors.js';

/** The limits and headers of one {@link boundedGet}. */
export interface BoundedGetOptions {
  readonly headers?: Readonly<Record<string, string>>;
  /** connection to last byte */
  readonly timeoutMs: number;
  /** a larger body is refused */
  readonly maxBytes: number;
  /** the roots an https: server is verified against */
  readonly secureContext?: tls.SecureContext;
  /** aborting it destroys the request, which then rejects */
  readonly signal?: AbortSignal;
}

/** The status and headers of the answer, and the body of a 200 (empty otherwise). */
export interface BoundedGetResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * GETs `url` within the limits. Rejects with MtlsError `BAD_ARGUMENT` for a URL that is not
 * http(s) or holds credentials, `IO_ERROR` when the time or size limit is passed, and with the
 * network's error (or an abort) otherwise.
 */
export function boundedGet(url: URL, options: BoundedGetOptions): Promise<BoundedGetResponse> {
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) {
    return Promise.reject(new MtlsError('BAD_ARGUMENT', `only an http(s) URL without credentials is fetched (got ${url.protocol})`));
  }
  const { timeoutMs, maxBytes, signal } = options;
  if (signal?.aborted) return Promise.reject(new Error('the request was aborted'));
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const req = (secure ? https : http).request(url, { method: 'GET', headers: { ...options.headers }, agent: false, ...(secure && options.secureContext ? { secureContext: options.secureContext } : {}) });
    let settled = false;
    const finish = (err: Error | undefined, value?: BoundedGetResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value!);
    };
    const onAbort = () => finish(new Error('the request was aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => finish(new MtlsError('IO_ERROR', `no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => finish(e));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.on('error', (e) => finish(e));
      if (status !== 200) {
        res.resume();
        finish(undefined, { status, headers: res.headers, body: Buffer.alloc(0) });
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (declared > maxBytes) return finish(new MtlsError('IO_ERROR', `the body is ${declared} bytes, more than the ${maxBytes} allowed`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) finish(new MtlsError('IO_ERROR', `the body is larger than the ${maxBytes} bytes allowed`));
        else chunks.push(c);
      });
      res.on('end', () => finish(undefined, { status, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.end();
  });
}
