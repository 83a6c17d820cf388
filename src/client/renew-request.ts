/**
 * One call to the CA's renewal endpoint, over mTLS with the certificate being renewed:
 *
 *   POST /renew   body: a PKCS#10 CSR (Content-Type: application/pkcs10) for a new key,
 *                 or empty to keep the public key
 *   200           Content-Type: application/pem-certificate-chain, the new leaf then the
 *                 intermediate, with the same claims
 *   4xx/5xx       {"error":{"code","message","hint"}}; 429 and 503 carry Retry-After
 *
 * The CA's HTTPS certificate is issued by the same CA, so the bundle's CA certificates
 * verify it. A one-off Agent per call: renewals are rare and must use the newest key.
 */
import { Agent, request } from 'undici';
import type { Bundle } from '../bundle/load.js';
import { MtlsError } from '../errors.js';
import { pemEncode, readCertificates } from '../x509/pem.js';
import { secureContextFor } from './agent.js';

/** The largest answer read from /renew (a chain is a few KiB). */
const MAX_BODY = 256 * 1024;

/** The CA answered with an HTTP error (or an unusable 200). */
export class RenewalHttpError extends MtlsError {
  readonly status: number;
  /** the CA's error code, e.g. certificate_revoked */
  readonly caCode: string | undefined;
  /** from Retry-After, when given */
  readonly retryAfterMs: number | undefined;
  constructor(status: number, caCode: string | undefined, message: string, hint: string | undefined, retryAfterMs: number | undefined) {
    const permanent = status >= 400 && status < 500 && status !== 429 && status !== 408;
    super(permanent ? 'RENEWAL_REFUSED' : 'RENEWAL_FAILED', `the CA answered ${status}${caCode ? ` ${caCode}` : ''}: ${message}`, { ...(hint ? { hint } : {}), details: { status, ...(caCode ? { caCode } : {}) } });
    this.status = status;
    this.caCode = caCode;
    this.retryAfterMs = retryAfterMs;
  }
  /** 4xx other than 408 and 429: asking again will not help */
  get permanent(): boolean {
    return this.code === 'RENEWAL_REFUSED';
  }
}

/** Retry-After as seconds or an HTTP date, in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** One /renew call: the CSR to send (none keeps the key), a timeout and an abort signal. */
export interface RenewRequestOptions {
  /** a DER CSR for a new key; absent to keep the current public key */
  readonly csr?: Buffer;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

/** POSTs to the renewal endpoint; returns the new chain (leaf first) as DER. */
export async function requestRenewal(url: URL, bundle: Pick<Bundle, 'chain' | 'key' | 'ca'>, options: RenewRequestOptions = {}): Promise<Buffer[]> {
  if (url.protocol !== 'https:') throw new MtlsError('BAD_ARGUMENT', `the renewal URL must be https: (${url.href})`, { hint: 'e.g. https://ca.acme.test/renew' });
  const agent = new Agent({ connect: { secureContext: secureContextFor(bundle) } as Agent.Options['connect'], pipelining: 0 });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const signals = [AbortSignal.timeout(timeoutMs), ...(options.signal ? [options.signal] : [])];
  try {
    const body = options.csr ? pemEncode('CERTIFICATE REQUEST', options.csr) : '';
    const res = await request(url, {
      method: 'POST',
      dispatcher: agent,
      headers: { ...(options.csr ? { 'content-type': 'application/pkcs10' } : {}), accept: 'application/pem-certificate-chain, application/json' },
      body,
      signal: AbortSignal.any(signals),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) {
        res.body.destroy();
        throw new RenewalHttpError(502, undefined, `the answer is larger than ${MAX_BODY} bytes`, undefined, undefined);
      }
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks);
    const type = String(res.headers['content-type'] ?? '');
    if (res.statusCode === 200) {
      if (!type.startsWith('application/pem-certificate-chain')) {
        throw new RenewalHttpError(502, undefined, `expected application/pem-certificate-chain, got "${type || 'no content type'}"`, 'check the renewal URL: it should point at the CA service\'s /renew', undefined);
      }
      try {
        return readCertificates(text);
      } catch (cause) {
        throw new RenewalHttpError(502, undefined, `the certificate chain cannot be read: ${(cause as Error).message}`, undefined, undefined);
      }
    }
    let error: { code?: string; message?: string; hint?: string } = {};
    if (type.includes('json')) {
      try {
        error = ((JSON.parse(text.toString('utf8')) as { error?: typeof error }).error ?? {}) as typeof error;
      } catch {
        error = {};
      }
    }
    const now = options.now?.() ?? Date.now();
    throw new RenewalHttpError(res.statusCode, error.code, error.message ?? (text.toString('utf8').slice(0, 200) || 'no reason given'), error.hint, parseRetryAfter(res.headers['retry-after'], now));
  } catch (e) {
    if (e instanceof MtlsError) throw e;
    const err = e as Error & { code?: string; cause?: { code?: string; message?: string } };
    const reason = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : err.cause?.message ?? err.message;
    throw new MtlsError('RENEWAL_FAILED', `cannot reach the CA at ${url.origin}: ${reason}`, { cause: e, details: { code: err.code ?? err.cause?.code ?? err.name } });
  } finally {
    await agent.close().catch(() => undefined);
  }
}
