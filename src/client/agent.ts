/**
 * HTTP(S) with a client certificate, for agents written in code: one undici Agent per
 * bundle, with one prebuilt TLS secure context (passing { ca, cert, key } instead builds a
 * new context for every connection: 1.3-2 ms of CPU each, measured), keep-alive and TLS
 * session resumption. A 401 from an mcp-mtls server is turned into an error that says why.
 *
 * With credentials that renew (a BundleRenewer, see renewal.ts), the agent is a
 * RenewingAgent: undici fixes an Agent's TLS options at creation, so each renewal builds a
 * new Agent for new requests and closes the previous one gracefully (requests in flight on
 * it finish; a stream still open when its certificate expires is cut, and reconnects).
 */
import tls from 'node:tls';
import { Agent, Dispatcher, fetch as undiciFetch } from 'undici';
import { isMtlsError, MtlsError } from '../errors.js';
import type { Bundle } from '../bundle/load.js';
import { pemEncode } from '../x509/pem.js';
import { connectionError } from './connect-error.js';
import { serverUrl, serverUrlAllowed, type ServerUrlOptions } from './server-url.js';

/** Options of {@link createMtlsAgent} (and {@link RenewingAgent}): connection pooling. */
export interface MtlsAgentOptions {
  /** connections kept per origin; default undici's (no limit) */
  readonly connections?: number;
  /** How long an idle keep-alive connection is kept, in milliseconds; default 30,000. */
  readonly keepAliveTimeoutMs?: number;
}

export function secureContextFor(bundle: BundleCredentials): tls.SecureContext {
  return tls.createSecureContext({
    cert: bundle.chain.map((d) => pemEncode('CERTIFICATE', d)).join(''),
    key: bundle.key.export({ format: 'pem', type: 'pkcs8' }) as string,
    ca: bundle.ca.map((d) => pemEncode('CERTIFICATE', d)),
    minVersion: 'TLSv1.2',
  });
}

/** What a connection needs from a bundle: the chain to present, its key, and the CA to trust. */
export type BundleCredentials = Pick<Bundle, 'chain' | 'key' | 'ca'>;

/** Credentials that change over time: the current bundle, and a way to hear of the next one. */
export interface CredentialSource {
  readonly bundle: Bundle;
  /** calls `listener` with each new bundle; returns the unsubscribe function */
  subscribe(listener: (bundle: Bundle) => void): () => void;
}

/** True for credentials that renew (a BundleRenewer), false for a plain bundle. */
export const isCredentialSource = (c: unknown): c is CredentialSource =>
  typeof c === 'object' && c !== null && typeof (c as CredentialSource).subscribe === 'function' && 'bundle' in c;

function plainAgent(bundle: BundleCredentials, options: MtlsAgentOptions): Agent {
  const secureContext = secureContextFor(bundle);
  return new Agent({
    connect: { secureContext, maxCachedSessions: 100 } as Agent.Options['connect'],
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
    ...(options.connections ? { connections: options.connections } : {}),
  });
}

/** One Agent per bundle; with a CredentialSource, a RenewingAgent that follows its renewals. */
export function createMtlsAgent(bundle: BundleCredentials, options?: MtlsAgentOptions): Agent;
export function createMtlsAgent(source: CredentialSource, options?: MtlsAgentOptions): RenewingAgent;
export function createMtlsAgent(credentials: BundleCredentials | CredentialSource, options?: MtlsAgentOptions): Agent | RenewingAgent;
export function createMtlsAgent(credentials: BundleCredentials | CredentialSource, options: MtlsAgentOptions = {}): Agent | RenewingAgent {
  return isCredentialSource(credentials) ? new RenewingAgent(credentials, options) : plainAgent(credentials, options);
}

/**
 * A Dispatcher that sends each new request through the Agent of the current credentials.
 * On a renewal the previous Agent is closed gracefully: its requests in flight complete on
 * their connections; if one is still open when that certificate expires, it is destroyed.
 */
export class RenewingAgent extends Dispatcher {
  #current: Agent;
  readonly #retired = new Map<Agent, ReturnType<typeof setTimeout> | undefined>();
  readonly #unsubscribe: () => void;
  readonly #options: MtlsAgentOptions;
  #closed = false;
  /** how many times the credentials were swapped */
  swaps = 0;

  constructor(source: CredentialSource, options: MtlsAgentOptions = {}) {
    super();
    this.#options = options;
    this.#current = plainAgent(source.bundle, options);
    let notAfter = source.bundle.notAfter;
    this.#unsubscribe = source.subscribe((bundle) => {
      if (this.#closed) return;
      const previous = this.#current;
      const previousNotAfter = notAfter;
      this.#current = plainAgent(bundle, this.#options);
      notAfter = bundle.notAfter;
      this.swaps++;
      this.#retire(previous, previousNotAfter);
    });
  }

  #retire(agent: Agent, notAfter: Date | undefined): void {
    const left = notAfter ? notAfter.getTime() - Date.now() : undefined;
    const timer = left !== undefined ? setTimeout(() => void agent.destroy().catch(() => undefined), Math.max(0, Math.min(left, 2 ** 31 - 1))) : undefined;
    timer?.unref();
    this.#retired.set(agent, timer);
    void agent
      .close()
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(this.#retired.get(agent));
        this.#retired.delete(agent);
      });
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.#current.dispatch(options, handler);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = this.#shutdown((a) => a.close());
    if (!callback) return done;
    void done.then(callback, callback);
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    const done = this.#shutdown((agent) => agent.destroy(err));
    if (!callback) return done;
    void done.then(callback, callback);
  }

  async #shutdown(end: (a: Agent) => Promise<void>): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    const all = [this.#current, ...this.#retired.keys()];
    for (const t of this.#retired.values()) clearTimeout(t);
    await Promise.all(all.map((a) => end(a).catch(() => undefined)));
  }
}

/** What to do about each refusal reason an mcp-mtls server gives (`AuthFailureReason`); others get the generic hint. */
const REFUSAL_HINTS: Readonly<Record<string, string>> = {
  certificate_required: 'no client certificate reached the server: connect with your bundle (`mcp-mtls connect URL --bundle FILE`, or createMtlsAgent(await loadBundle(FILE)))',
  certificate_expired: 'renew it where the CA is: `mcp-mtls check-bundle FILE` prints the `mcp-mtls renew` command for it; then make a new bundle with `mcp-mtls bundle`',
  certificate_not_yet_valid: "the certificate's validity has not started: check the clocks of this machine, the server and the CA, or wait until its notBefore (`mcp-mtls check-bundle FILE`)",
  certificate_revoked: 'the operator revoked this certificate: ask them for a new one (`mcp-mtls issue client` on their side, then `mcp-mtls bundle`); `mcp-mtls renew` cannot renew a revoked certificate',
  unknown_ca: "the server does not trust the CA that issued the certificate: use a bundle from the CA this server trusts, or ask the server's operator to add your CA's root to its CA list",
  invalid_signature: 'the certificate was altered after it was issued: make the bundle again from the certificate the CA issued (`mcp-mtls bundle`)',
  not_a_client_certificate: 'the bundle holds a server or CA certificate: issue a client certificate (`mcp-mtls issue client --user ID`) and bundle that',
  invalid_identity: "the certificate's identity is not one this server accepts (another trust domain, or not an mcp-mtls client certificate): `mcp-mtls check-bundle FILE` shows the identity; ask the server's operator which CA and trust domain it accepts",
  revocation_unknown: 'the server cannot tell yet whether the certificate is revoked (its CRL has not been fetched or is incomplete): retry in a moment; if it persists, tell the server\'s operator',
};

/**
 * The reason an mcp-mtls server gave for refusing the certificate (its 401 JSON body). The hint
 * says what to do for that reason: renew an expired certificate, ask the operator for a new one
 * when it was revoked (renewal cannot help), use a bundle from a CA the server trusts, ...
 */
export class CertificateRefusedError extends MtlsError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('CERT_INVALID', `the server refused the client certificate: ${reason}: ${message}`, { hint: REFUSAL_HINTS[reason] ?? 'check the bundle with `mcp-mtls check-bundle`; renew or re-issue the certificate' });
    this.reason = reason;
  }
}

/**
 * The `fetch` signature {@link createMtlsFetch} returns: a URL (string or URL, not a Request)
 * and the standard RequestInit, resolving to a standard Response. It fits where MCP SDK
 * transports and other libraries accept a custom fetch.
 */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * fetch() through the agent; a 401 with an mcp-mtls reason throws CertificateRefusedError,
 * and a request that reaches no server throws MtlsError `SERVER_UNREACHABLE` (down, wrong
 * host or port) or `SERVER_CERT_INVALID` (another host name, an unknown CA, expired), never
 * a bare `TypeError: fetch failed`.
 * Only `https:` URLs are fetched (else MtlsError `INSECURE_URL`; `http:` to a loopback address
 * with `allowInsecureLoopbackHttp`), and every hop is checked: an https server cannot
 * redirect the request, with its body, to cleartext.
 */
export function createMtlsFetch(agent: Dispatcher, options: ServerUrlOptions = {}): FetchLike {
  // fetch follows redirects itself, dispatching each hop: the check sits in the dispatcher
  const guarded = agent.compose((dispatch) => (opts, handler) => {
    const refused = serverUrlAllowed(new URL(opts.path, opts.origin), options);
    if (refused) throw refused;
    return dispatch(opts, handler);
  });
  return async (input, init) => {
    serverUrl(input, options);
    const res = (await undiciFetch(input as string, { ...(init as object), dispatcher: guarded } as Parameters<typeof undiciFetch>[1]).catch((e: unknown) => {
      const cause = (e as { cause?: unknown }).cause;
      if (isMtlsError(cause, 'INSECURE_URL')) throw cause;
      // a bare `TypeError: fetch failed`: name the cause (ECONNREFUSED, a server certificate refused...)
      throw connectionError(e, input) ?? e;
    })) as unknown as Response;
    if (res.status === 401 && (res.headers.get('content-type') ?? '').includes('application/json')) {
      const body = (await res.clone().json().catch(() => ({}))) as { error?: string; message?: string };
      if (body.error) throw new CertificateRefusedError(body.error, body.message ?? '');
    }
    return res;
  };
}
