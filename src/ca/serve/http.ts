/**
 * The HTTP wire of `ca serve`: bounded body reading, CSR bodies (PEM or DER), and the one
 * error shape every route answers with: `{"error":{"code","message","hint"}}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBoundedBody } from '../../util/bounded-body.js';
import { sendJsonResponse } from '../../util/json-response.js';

/** A CSR is a few hundred bytes (a few KiB for RSA-4096): anything past this is refused with 413. */
export const MAX_BODY = 64 * 1024;

/** Content types accepted for a CSR body (the first is the one clients should send). */
export const CSR_CONTENT_TYPES = ['application/pkcs10', 'application/x-pem-file', 'text/plain', 'application/octet-stream'];

export const PEM_CHAIN_TYPE = 'application/pem-certificate-chain';

/** An answer that is not a success: status, stable code, what happened, what to do next. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly headers: Readonly<Record<string, string>> = {},
    /** what the audit line should add (the refused certificate's serial, ...); never a secret */
    readonly audit: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

export function sendError(res: ServerResponse, e: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, e.status, { error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } }, { ...e.headers });
}

/** An answer of `ca serve`: never stored (certificates, tokens, status change from one request to the next). */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  sendJsonResponse(res, status, value, { cacheControl: 'no-store', headers });
}

/**
 * The request body, at most `max` bytes. A larger one is refused with 413 as soon as it is
 * known (Content-Length or the bytes read so far), without buffering the rest.
 */
export async function readBody(req: IncomingMessage, max = MAX_BODY): Promise<Buffer> {
  const r = await readBoundedBody(req, max);
  if (r.ok) return r.body;
  if (r.tooLarge) throw new HttpError(413, 'BODY_TOO_LARGE', `the request body is larger than ${max} bytes`, 'send one PKCS#10 CSR (PEM or DER)', { connection: 'close' });
  throw new HttpError(400, 'BODY_UNREADABLE', `the request body could not be read: ${r.error?.message}`);
}

/**
 * The CSR of a /sign or /renew request: undefined for an empty body, else the bytes as sent
 * (PEM text or DER; verifyCsr tells them apart by `-----BEGIN`). The content type must be one
 * of CSR_CONTENT_TYPES (or absent).
 */
export async function readCsrBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const body = await readBody(req);
  if (body.length === 0) return undefined;
  if (type !== '' && !CSR_CONTENT_TYPES.includes(type)) {
    throw new HttpError(400, 'BAD_CONTENT_TYPE', `Content-Type ${type} is not a certificate signing request`, `send the CSR as Content-Type: application/pkcs10 (PEM or DER)`);
  }
  return body;
}
