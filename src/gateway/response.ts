/**
 * The upstream's answer, forwarded only as far as the gateway could read and decide it (fail
 * closed): a JSON body of JSON-RPC messages, or an SSE stream of them, each message decided by
 * {@link decideServerMessage}. Anything else is not forwarded:
 *
 * - a `content-encoding` other than identity (the gateway asks for identity; a gzip body it
 *   cannot read would otherwise pass unfiltered): 502;
 * - a non-empty body that is neither `application/json` nor `text/event-stream` (the legacy
 *   HTTP+SSE transport's `202 Accepted` text, HTML error pages, unknown types): 502 for a
 *   2xx/3xx answer, the upstream's status with a JSON-RPC error body otherwise;
 * - JSON that does not parse, or is not JSON-RPC: 502;
 * - SSE events whose data is not JSON-RPC, events of another type than `message` (the legacy
 *   transport's `endpoint` event ends the stream: that transport cannot be filtered), and
 *   messages the decision drops: left out, and a POST's requests left without an answer get
 *   a JSON-RPC error when the stream ends.
 *
 * Each refusal is reported once per answer through `refused` (audit line and log).
 */
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { sendJson } from '../mcp/http-body.js';
import { decideServerMessage, type ServerMessageContext } from './server-messages.js';
import { sseRewriter } from './sse.js';
import type { Redactor } from './redact.js';
import type { UpstreamAnswer } from './upstream.js';

/** A JSON answer larger than this is refused (502) rather than held in memory. */
export const MAX_JSON_ANSWER_BYTES = 64 * 1024 * 1024;

export interface ForwardContext extends ServerMessageContext {
  /** reports one refusal (the gateway audits and logs it) */
  readonly refused: (reason: string) => void;
  /** the request ids answered so far, shared by a stream and its resumptions (resume.ts); SSE and JSON */
  readonly answered?: Set<unknown>;
  /** SSE: told the id of every event written to the client, the ids it may resume from */
  readonly wroteEvent?: (id: string) => void;
  /** SSE: whether an event with this id was written to another caller's stream (an upstream replaying from an event store shared across sessions): dropped */
  readonly writtenToAnother?: (id: string) => boolean;
  /** the caller's credential secrets (upstream-credentials.ts), taken out of every message and response header the client gets */
  readonly redact?: Redactor;
  /** how long a JSON answer's body may take after its headers (the route's upstream timeout) */
  readonly bodyTimeoutMs?: number;
}

/** A decided message as the client gets it: serialized, without the caller's secrets. */
function serialize(message: unknown, redact: Redactor | undefined): string {
  const text = JSON.stringify(message);
  return redact?.inJson(text) ? JSON.stringify(redact.value(message)) : text;
}

const LEGACY_HINT = 'the gateway proxies the Streamable HTTP transport only; the legacy HTTP+SSE transport (GET /sse, POST /message) is not supported: point the route at the server\'s Streamable HTTP endpoint';

/** The media type of a Content-Type header, lowercased, without parameters. */
function mediaType(header: unknown): string {
  return String(Array.isArray(header) ? header[0] : (header ?? '')).split(';', 1)[0]!.trim().toLowerCase();
}

function unanswered(ctx: ServerMessageContext, answered: ReadonlySet<unknown>, message: string): unknown[] {
  return [...ctx.requestIds].filter((id) => !answered.has(id)).map((id) => ({ jsonrpc: '2.0', id, error: { code: -32603, message } }));
}

/**
 * Decides a parsed JSON body: the messages to send, and what was dropped; or refused whole, with why.
 * `before`: the requests answered already (a resumed stream's), told of this body's answers.
 */
function decideJson(value: unknown, ctx: ServerMessageContext, before: Set<unknown>): { out: unknown; dropped: string[] } | { refused: string } {
  const batch = Array.isArray(value);
  const list = batch ? (value as unknown[]) : [value];
  if (list.length === 0) return { refused: 'an empty JSON-RPC batch' };
  const dropped: string[] = [];
  const kept: unknown[] = [];
  const answered = new Set<unknown>(before);
  for (const m of list) {
    const d = decideServerMessage(m, ctx);
    if (!d.keep) {
      dropped.push(d.reason);
      continue;
    }
    if (d.answers !== undefined) {
      if (answered.has(d.answers)) {
        dropped.push(`a second response to id ${JSON.stringify(d.answers)}`);
        continue;
      }
      answered.add(d.answers);
    }
    kept.push(d.message);
  }
  for (const id of answered) before.add(id);
  if (kept.length === list.length) return { out: batch ? kept : kept[0], dropped };
  if (!batch && list.length === 1 && ctx.requestIds.size === 0) return { refused: dropped[0]! };
  // what was dropped leaves its request unanswered: say so, rather than leave the client waiting
  const errors = unanswered(ctx, answered, 'the gateway could not check the upstream MCP server\'s answer, so it was not forwarded');
  for (const e of errors) before.add((e as { id: unknown }).id);
  const out = [...kept, ...errors];
  if (out.length === 0) return { refused: dropped.join('; ') };
  return { out: batch || out.length > 1 ? out : out[0], dropped };
}

/** Writes the upstream's answer to `res`, or a refusal; never throws for what the upstream sent. */
export async function forwardResponse(upstream: UpstreamAnswer, res: ServerResponse, headers: Record<string, string | string[]>, ctx: ForwardContext): Promise<void> {
  const status = upstream.statusCode;
  const fail = (upstreamReason: string, keepStatus = status >= 400) => {
    const reason = ctx.redact ? ctx.redact.line(upstreamReason) : upstreamReason;
    ctx.refused(reason);
    upstream.discard();
    sendJson(res, keepStatus ? status : 502, { jsonrpc: '2.0', id: null, error: { code: -32603, message: `the gateway did not forward the upstream MCP server's answer: ${reason}` } });
  };
  const out: Record<string, string | string[]> = {};
  const redact = ctx.redact;
  for (const k of Object.keys(headers)) {
    if (k === 'content-encoding' || k === 'content-length') continue;
    const v = headers[k]!;
    out[k] = !redact ? v : Array.isArray(v) ? v.map(redact.line) : redact.line(v);
  }

  const encoding = String(upstream.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== '') return fail(`it is encoded (content-encoding: ${encoding}), which the gateway cannot check`, false);
  const type = mediaType(upstream.headers['content-type']);

  if (type === 'text/event-stream') return forwardSse(upstream, res, out, ctx);

  // a client that leaves stops the read: nobody waits for the rest (one that left while the
  // gateway waited for the upstream's headers has closed already)
  if (res.destroyed) return upstream.discard();
  const left = () => upstream.discard();
  res.once('close', left);
  let buf: Buffer | undefined;
  try {
    buf = await upstream.readAll(MAX_JSON_ANSWER_BYTES, ctx.bodyTimeoutMs);
  } catch (e) {
    if ((e as { code?: string }).code !== 'UPSTREAM_BODY_TIMEOUT') throw e;
    ctx.refused((e as Error).message);
    return sendJson(res, 504, { jsonrpc: '2.0', id: null, error: { code: -32603, message: `the upstream MCP server's answer did not end within ${ctx.bodyTimeoutMs} ms` } });
  } finally {
    res.off('close', left);
  }
  if (res.destroyed) return;
  if (buf === undefined) return fail(`it is larger than ${MAX_JSON_ANSWER_BYTES} bytes`, false);
  if (buf.length === 0) {
    // nothing to decide (202 Accepted, a DELETE's 200): status and headers only
    out['content-length'] = '0';
    res.writeHead(status, out);
    return void res.end();
  }
  if (type !== 'application/json') {
    return fail(`it is ${type || 'of no content type'}, not JSON or SSE of JSON-RPC messages${status === 202 ? ` (${LEGACY_HINT})` : ''}`, status >= 400);
  }
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch {
    return fail('its JSON does not parse', false);
  }
  const d = decideJson(value, ctx, ctx.answered ?? new Set());
  if ('refused' in d) return fail(d.refused, false);
  for (const reason of d.dropped) ctx.refused(reason);
  // always the messages as decided, re-serialized (UTF-8, no charset games, no duplicate keys):
  // the client reads exactly what was decided, whatever its JSON parser does with odd bytes
  // a string, not a Buffer: node:http then joins the head and the body into one string, which the
  // TLS socket gets with an empty chunk after it (node:http's end()): one TLS record, one write(2)
  // (strace -f -c of bench/gateway: one write per request on this leg, one writev towards the upstream)
  const body = serialize(d.out, ctx.redact);
  out['content-type'] = 'application/json';
  out['cache-control'] = 'private, no-store';
  out['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(status, out);
  res.end(body);
}

async function forwardSse(upstream: UpstreamAnswer, res: ServerResponse, out: Record<string, string | string[]>, ctx: ForwardContext): Promise<void> {
  const answered = ctx.answered ?? new Set<unknown>();
  let refusedAny = false;
  let legacy = false;
  // a stream whose events carry ids can be resumed: when it ends early, the client comes back
  // for the rest (SEP-1699 polling), so only the requests whose own answer was refused are
  // answered with an error then; the others' answers are still to come
  let resumable = false;
  const refusedAnswers = new Set<unknown>();
  const refuse = (reason: string): null => {
    refusedAny = true;
    ctx.refused(reason);
    return null;
  };
  const rewrite = sseRewriter(
    (data, event, id) => {
      if (data.trim() === '') return undefined; // a priming or keep-alive event: nothing to decide
      if (id !== undefined && ctx.writtenToAnother?.(id)) return refuse(`an event (id ${JSON.stringify(id).slice(0, 80)}) the gateway wrote to another caller's stream: the upstream's event store is shared across sessions, and replayed it here`);
      if (event === 'endpoint') {
        refuse(`an SSE endpoint event: the legacy HTTP+SSE transport (${LEGACY_HINT})`);
        legacy = true;
        // its answers would all come on this stream, untied to requests: end it here
        return { end: `: mcp-mtls gateway: ${LEGACY_HINT}\n\n` };
      }
      if (event !== undefined && event !== 'message') return refuse(`an SSE event of type ${JSON.stringify(event).slice(0, 80)}, which MCP does not send`);
      if (data.trim() === '{}') return ''; // a priming event as an SDK event store replays it: its id, no message
      let value: unknown;
      try {
        value = JSON.parse(data);
      } catch {
        return refuse('an SSE event whose data is not JSON');
      }
      const d = decideServerMessage(value, ctx);
      if (!d.keep) {
        const id = (value as { id?: unknown } | null)?.id;
        if (typeof value === 'object' && value !== null && !('method' in value) && ctx.requestIds.has(id)) refusedAnswers.add(id);
        return refuse(d.reason);
      }
      if (d.answers !== undefined) {
        if (answered.has(d.answers)) return refuse(`a second response to id ${JSON.stringify(d.answers)}`);
        answered.add(d.answers);
      }
      // always the message as decided, re-serialized: the client reads exactly what was decided
      return serialize(d.message, ctx.redact);
    },
    () => {
      if (!refusedAny || ctx.requestIds.size === 0) return undefined;
      const message = 'the gateway could not check the upstream MCP server\'s answer, so it was not forwarded';
      const errors = resumable ? [...refusedAnswers].filter((id) => !answered.has(id)).map((id) => ({ jsonrpc: '2.0', id, error: { code: -32603, message } })) : unanswered(ctx, answered, message);
      for (const e of errors) answered.add((e as { id: unknown }).id);
      return errors.map((e) => `event: message\ndata: ${JSON.stringify(e)}\n\n`).join('');
    },
    (id) => {
      resumable = true;
      ctx.wroteEvent?.(id);
    },
  );
  res.writeHead(upstream.statusCode, { ...out, 'content-type': 'text/event-stream', 'cache-control': 'private, no-cache' });
  res.flushHeaders();
  // a stream the rewriter ended (legacy transport): the upstream's side is closed too
  res.once('finish', () => {
    if (legacy) upstream.discard();
  });
  try {
    await pipeline(upstream.body, rewrite, res);
  } catch (e) {
    if (!legacy) throw e;
  }
}
