/**
 * The call to the upstream: its connection pools, the timeout, and how a failed call is
 * answered (502 unreachable, 504 slow: the gateway stays up).
 */
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Agent, util as undiciUtil, type Dispatcher } from 'undici';
import { sendJson } from '../mcp/http-body.js';
import type { GatewayRoute } from './route.js';

/** Response headers never forwarded: hop-by-hop, and the length the gateway's rewriting changes. */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'trailer']);

/** The upstream's response headers as the client gets them. */
export function clientResponseHeaders(upstream: UpstreamAnswer['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of Object.keys(upstream)) {
    const v = upstream[k];
    if (v !== undefined && !DROP_RESPONSE.has(k)) out[k] = v;
  }
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

/**
 * The upstream's answer: status and headers, and its body either whole ({@link readAll}: a POST's
 * JSON answer, the common case, collected straight from undici's handler with no stream in
 * between) or as a stream ({@link body}: SSE, made on first use, with undici's backpressure).
 * One of the two is used per answer.
 */
export interface UpstreamAnswer {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** the body as a stream; from then on readAll may not be used */
  readonly body: Readable;
  /**
   * the whole body; undefined (and the rest not read: the request is aborted) when larger than
   * `max` bytes. Rejects with undici's error when the upstream cuts the answer short, and with
   * code UPSTREAM_BODY_TIMEOUT (the request aborted) when it has not ended `timeoutMs` after
   * this call: headers alone are bounded by undici's headersTimeout, and a JSON answer that
   * trickles would otherwise hold the request (and its client) without end.
   */
  readAll(max: number, timeoutMs?: number): Promise<Buffer | undefined>;
  /** stops reading the body (aborts the request when it is still coming); its error has nobody to go to */
  discard(): void;
}

const noop = () => undefined;
/** setTimeout's largest delay: a longer one (an upstreamTimeout of 25 days or more) fires at once */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * undici's handler (its own dispatch API) for one upstream call. undici's request() puts an
 * AsyncResource, a promise callback and a body stream (BodyReadable) around this for every call;
 * a JSON answer needs none of the stream: chunks are kept until the reader asks for them whole.
 */
class AnswerHandler implements UpstreamAnswer {
  statusCode = 0;
  headers: Record<string, string | string[] | undefined> = {};
  #resolve: (a: UpstreamAnswer) => void;
  #reject: (e: Error) => void;
  #abort: ((e?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #started = false;
  #chunks: Buffer[] = [];
  #size = 0;
  #max = Infinity;
  #ended = false;
  #error: Error | undefined;
  #whole: { resolve: (b: Buffer | undefined) => void; reject: (e: Error) => void } | undefined;
  #stream: Readable | undefined;
  #done = false; // the reader has its answer (or gave up): nothing more goes to it

  constructor(resolve: (a: UpstreamAnswer) => void, reject: (e: Error) => void) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  onConnect(abort: (e?: Error) => void): void {
    this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: not the answer
    this.statusCode = statusCode;
    this.headers = undiciUtil.parseHeaders(rawHeaders) as Record<string, string | string[] | undefined>;
    this.#resume = resume;
    this.#started = true;
    this.#resolve(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#stream) return this.#stream.push(chunk);
    if (this.#done) return true;
    this.#size += chunk.length;
    if (this.#size > this.#max) {
      this.#done = true;
      this.#chunks = [];
      this.#whole?.resolve(undefined);
      this.#abort?.();
      return true;
    }
    this.#chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    this.#ended = true;
    if (this.#stream) return void this.#stream.push(null);
    if (this.#whole && !this.#done) this.#settleWhole();
  }

  onError(e: Error): void {
    if (!this.#started) {
      this.#started = true;
      return this.#reject(e);
    }
    if (this.#ended) return;
    this.#error = e;
    // as undici's own body stream: destroyed after the handlers already queued have run
    const stream = this.#stream;
    if (stream) return queueMicrotask(() => stream.destroy(e));
    if (this.#whole && !this.#done) {
      this.#done = true;
      this.#whole.reject(e);
    }
  }

  #settleWhole(): void {
    this.#done = true;
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#whole!.resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size));
  }

  readAll(max: number, timeoutMs?: number): Promise<Buffer | undefined> {
    if (this.#stream || this.#whole) throw new Error('the upstream answer is read once');
    return new Promise<Buffer | undefined>((resolveWhole, rejectWhole) => {
      let timer: NodeJS.Timeout | undefined;
      const resolve = (b: Buffer | undefined) => {
        if (timer) clearTimeout(timer);
        resolveWhole(b);
      };
      const reject = (e: Error) => {
        if (timer) clearTimeout(timer);
        rejectWhole(e);
      };
      this.#whole = { resolve, reject };
      if (this.#done) return resolve(undefined); // discarded
      this.#max = max;
      if (this.#size > max) {
        this.#done = true;
        this.#chunks = [];
        resolve(undefined);
        return this.#abort?.();
      }
      if (this.#ended) return this.#settleWhole();
      if (this.#error) {
        this.#done = true;
        return reject(this.#error);
      }
      if (timeoutMs === undefined) return;
      timer = setTimeout(() => {
        if (this.#done) return;
        this.#done = true;
        this.#chunks = [];
        reject(Object.assign(new Error(`the upstream's answer did not end within ${timeoutMs} ms`), { code: 'UPSTREAM_BODY_TIMEOUT' }));
        this.#abort?.();
      }, Math.min(timeoutMs, MAX_TIMER_MS));
    });
  }

  get body(): Readable {
    if (this.#stream) return this.#stream;
    if (this.#whole) throw new Error('the upstream answer is read once');
    const resume = () => this.#resume?.();
    const abort = (e: Error) => this.#abort?.(e);
    const handler = this;
    const stream = new Readable({
      read() {
        resume();
      },
      destroy(e, cb) {
        // the reader stopped early: the rest of the answer is not read
        if (!handler.#ended && !handler.#error) abort(e ?? new Error('the upstream answer was not read to its end'));
        cb(e);
      },
    });
    this.#stream = stream;
    for (const c of this.#chunks) stream.push(c);
    this.#chunks = [];
    if (this.#done) stream.destroy(); // discarded before
    else if (this.#ended) stream.push(null);
    else if (this.#error) {
      const e = this.#error;
      queueMicrotask(() => stream.destroy(e));
    }
    return stream;
  }

  discard(): void {
    if (this.#stream) {
      this.#stream.on('error', noop);
      return void this.#stream.destroy();
    }
    if (this.#done) return;
    this.#done = true;
    this.#chunks = [];
    this.#whole?.resolve(undefined);
    if (!this.#ended && !this.#error) this.#abort?.();
  }
}

/** Calls the upstream; on failure answers the client (and logs why) and returns undefined. */
export async function callUpstream(call: UpstreamCall, res: ServerResponse, route: GatewayRoute, log: (line: string) => void): Promise<UpstreamAnswer | undefined> {
  try {
    // the dispatcher's own dispatch(): undici's top-level request() parses the URL again on every
    // call, and its dispatcher.request() makes a body stream a JSON answer does not need
    const { origin, path } = targetOf(call.url);
    return await new Promise<UpstreamAnswer>((resolve, reject) => {
      call.dispatcher.dispatch(
        {
          origin,
          path,
          method: (call.method ?? 'GET') as Dispatcher.HttpMethod,
          headers: call.headers,
          body: call.body ?? null,
          headersTimeout: call.timeoutMs,
          bodyTimeout: 0, // SSE streams stay open as long as they have to
        },
        new AnswerHandler(resolve, reject) as unknown as Dispatcher.DispatchHandler,
      );
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const slow = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
    log(`upstream ${route.upstream.href}: ${code ?? ''} ${(e as Error).message}`);
    rpcFailure(res, slow ? 504 : 502, slow ? `the upstream MCP server did not answer within ${call.timeoutMs} ms` : 'the upstream MCP server is unavailable');
    return undefined;
  }
}
