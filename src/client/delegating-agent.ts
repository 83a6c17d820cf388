/**
 * createDelegatingAgent (docs/delegation.md): a platform acting for many people keeps, per
 * person, one short-lived delegated certificate (exchanged at the CA's POST /delegate with the
 * platform's own certificate and the person's proof), renews it before it expires, and one
 * connection pool (an undici Agent that follows the renewals), so it pays one exchange per person
 * per certificate lifetime, not one per request.
 *
 *   const platform = createDelegatingAgent({ bundle: await loadBundle('platform.yaml'), caUrl: 'https://ca.acme.test:8443' });
 *   platform.setProof('spiffe://acme.test/user/bob', { grant });      // or () => ({ idToken: fresh() })
 *   const client = new Client({ name: 'chat', version: '1' });
 *   const fetch = await platform.fetchFor('spiffe://acme.test/user/bob');
 *   await client.connect(new StreamableHTTPClientTransport(new URL('https://mcp.acme.test/mcp'), { fetch }));
 *
 * (No SDK import here: `fetchFor` fits the transports of both SDK generations.)
 */
import { Agent, request } from 'undici';
import type { Bundle } from '../bundle/load.js';
import { isMtlsError, MtlsError } from '../errors.js';
import { decodeIdentity } from '../identity/decode.js';
import { parseCertificate } from '../x509/certificate.js';
import { readCertificates } from '../x509/pem.js';
import { createMtlsFetch, RenewingAgent, secureContextFor, type BundleCredentials, type CredentialSource, type MtlsAgentOptions } from './agent.js';

/** The person's proof for POST /delegate: a grant (reusable until it expires) or an ID token (used once). */
export type DelegationProof = { readonly grant: string } | { readonly idToken: string };

/** Options of {@link createDelegatingAgent}. */
export interface DelegatingAgentOptions {
  /** the platform's own credentials (its key is the one the delegated certificates certify) */
  readonly bundle: BundleCredentials;
  /** the CA's base URL (`ca serve`), e.g. https://ca.acme.test:8443 */
  readonly caUrl: string | URL;
  /** renew when this share of the certificate's lifetime is left (default 0.2) */
  readonly renewAtFraction?: number;
  /** the lifetime asked for (default: the CA's, 1h) */
  readonly ttl?: string;
  /** options of each person's connection pool */
  readonly agent?: MtlsAgentOptions;
  /** ms, per exchange (default 30 000) */
  readonly timeoutMs?: number;
}

interface Person {
  proof: () => DelegationProof | Promise<DelegationProof>;
  bundle?: Bundle;
  pending?: Promise<Bundle>;
  listeners: Set<(b: Bundle) => void>;
  timer?: ReturnType<typeof setTimeout>;
  agent?: RenewingAgent;
  /** the CA refused this person's proof for good (a revoked delegator, an expired grant): every use throws it until setProof */
  failed?: MtlsError;
  /** the last failed renewal, named when the certificate runs out before one succeeds */
  lastError?: unknown;
  /** the CA's Retry-After (429, 503): no exchange for this person before then (ms since the epoch) */
  retryAt?: number;
  /** fetchFor's fetch over the current pool */
  fetch?: { agent: RenewingAgent; fetch: typeof fetch };
}

/**
 * A refusal that retrying with the same proof cannot change: a 4xx from the CA (DELEGATOR_REVOKED,
 * GRANT_INVALID, DELEGATOR_NOT_ALLOWED, OIDC_*, ...) other than 408 and 429 (RATE_LIMITED).
 */
function permanent(e: unknown): e is MtlsError {
  if (!isMtlsError(e, 'DELEGATION_REFUSED')) return false;
  const status = (e.details as { status?: number } | undefined)?.status;
  return status === undefined || (status >= 400 && status < 500 && status !== 408 && status !== 429);
}

/** What {@link createDelegatingAgent} returns: per person, a delegated certificate kept fresh and a connection pool. */
export interface DelegatingAgent {
  /** sets (or replaces) how to prove `principal`'s consent: a proof, or a function giving a fresh one per exchange */
  setProof(principal: string, proof: DelegationProof | (() => DelegationProof | Promise<DelegationProof>)): void;
  /** the connection pool for `principal` (exchanging the first certificate if needed): a Dispatcher for undici / fetch */
  dispatcherFor(principal: string): Promise<RenewingAgent>;
  /** a fetch for `principal`, for an SDK transport (`new StreamableHTTPClientTransport(url, { fetch })`, 1.x or 2.x) */
  fetchFor(principal: string): Promise<typeof fetch>;
  /** exchanges counted so far (first certificates and renewals) */
  readonly exchanges: number;
  /** forgets `principal`: stops renewing, closes its pool */
  drop(principal: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A platform's agent for the people it acts for (docs/delegation.md): per person, one delegated
 * certificate exchanged at the CA's POST /delegate (with the platform's own certificate and the
 * person's proof), renewed when a fifth of its lifetime is left, and one connection pool.
 *
 * @throws MtlsError `BAD_ARGUMENT` for a CA URL that is not https:; its methods throw
 *   `DELEGATION_REFUSED` with the CA's code when an exchange is refused
 */
export function createDelegatingAgent(options: DelegatingAgentOptions): DelegatingAgent {
  const endpoint = new URL('/delegate', options.caUrl);
  if (endpoint.protocol !== 'https:') throw new MtlsError('BAD_ARGUMENT', `the CA URL must be https: (${endpoint.href})`, { hint: 'e.g. https://ca.acme.test:8443' });
  // one pool to the CA for every exchange, with the platform's own certificate
  const caAgent = new Agent({ connect: { secureContext: secureContextFor(options.bundle) } as Agent.Options['connect'] });
  const people = new Map<string, Person>();
  const fraction = options.renewAtFraction ?? 0.2;
  let exchanges = 0;
  let closed = false;

  async function exchange(principal: string, proofOf: Person['proof']): Promise<Bundle> {
    const proof = await proofOf();
    const res = await request(endpoint, {
      method: 'POST',
      dispatcher: caAgent,
      headers: { 'content-type': 'application/json', accept: 'application/pem-certificate-chain, application/json' },
      body: JSON.stringify({ ...proof, ...(options.ttl ? { ttl: options.ttl } : {}) }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    });
    const text = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200) {
      let error: { code?: string; message?: string; hint?: string } = {};
      try {
        error = (JSON.parse(text.toString('utf8')) as { error?: typeof error }).error ?? {};
      } catch {
        /* not JSON */
      }
      const retryAfter = Number(res.headers['retry-after']);
      throw new MtlsError('DELEGATION_REFUSED', `the CA refused to delegate ${principal}: ${res.statusCode} ${error.code ?? ''} ${error.message ?? ''}`.trim(), { ...(error.hint ? { hint: error.hint } : {}), details: { status: res.statusCode, code: error.code, ...(retryAfter > 0 ? { retryAfterMs: Math.min(retryAfter, 3600) * 1000 } : {}) } });
    }
    exchanges++;
    const chain = readCertificates(text);
    const identity = decodeIdentity(chain[0] as Buffer);
    if (identity.actingFor?.principal !== principal) throw new MtlsError('DELEGATION_REFUSED', `the CA answered with a certificate for ${identity.actingFor?.principal ?? identity.principal}, not ${principal}`);
    const leaf = parseCertificate(chain[0] as Buffer);
    return { chain, key: options.bundle.key, ca: options.bundle.ca, identity, notAfter: leaf.notAfter, warnings: [], source: { file: endpoint.href, format: 'pem' } };
  }

  /** one exchange at a time per person (the renewal timer and a request finding the certificate expired share it) */
  function renew(principal: string, p: Person): Promise<Bundle> {
    // the proof this exchange uses: a refusal of it ends the person only while it is still the one in force
    const used = p.proof;
    p.pending ??= exchange(principal, used)
      .then(
        (b) => {
          if (people.get(principal) === p && !closed) {
            if (p.timer) clearTimeout(p.timer);
            p.bundle = b;
            p.lastError = undefined;
            p.retryAt = undefined;
            for (const l of p.listeners) l(b);
            schedule(principal, p, b);
          }
          return b;
        },
        (e: unknown) => {
          p.lastError = e;
          const retryAfterMs = isMtlsError(e) ? (e.details as { retryAfterMs?: number } | undefined)?.retryAfterMs : undefined;
          if (retryAfterMs) p.retryAt = Date.now() + retryAfterMs;
          if (permanent(e) && p.proof === used) fail(p, e);
          throw e;
        },
      )
      .finally(() => (p.pending = undefined));
    return p.pending;
  }

  /** the CA refused the proof for good: no more renewals, and the pool with the stale certificate is closed */
  function fail(p: Person, e: MtlsError): void {
    p.failed = e;
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    p.bundle = undefined;
    const agent = p.agent;
    p.agent = undefined;
    p.fetch = undefined;
    void agent?.close().catch(() => undefined);
  }

  /**
   * renews when `fraction` of the lifetime (counted from when it arrived, not the backdated
   * notBefore) is left; after a failed renewal, again after 1, 2, 4 ... 30 s (or the CA's
   * Retry-After), sooner when the certificate is about to run out, and not at all once the next
   * try would come after it ran out (the next request exchanges anew): never a retry loop
   */
  function schedule(principal: string, p: Person, b: Bundle, attempt = 0, receivedAt = Date.now()): void {
    const left = b.notAfter.getTime() - Date.now();
    const lifetime = b.notAfter.getTime() - receivedAt;
    const backoff = Math.max(Math.min(1000 * 2 ** (attempt - 1), 30_000), (p.retryAt ?? 0) - Date.now());
    const delay = attempt > 0 ? Math.max(backoff, Math.min(30_000 * attempt, left - 5_000)) : Math.max(0, left - lifetime * fraction);
    if (attempt > 0 && delay >= left) return;
    p.timer = setTimeout(() => {
      if (closed || people.get(principal) !== p) return;
      renew(principal, p).catch((e: unknown) => {
        // a refusal for good ends it (fail); anything else keeps the current certificate and tries again
        if (!permanent(e) && people.get(principal) === p && p.bundle === b) schedule(principal, p, b, attempt + 1, receivedAt);
      });
    }, Math.min(delay, 2 ** 31 - 1));
    p.timer.unref();
  }

  async function current(principal: string): Promise<Person> {
    if (closed) throw new MtlsError('BAD_ARGUMENT', 'the delegating agent is closed');
    const p = people.get(principal);
    if (!p) throw new MtlsError('BAD_ARGUMENT', `no proof for ${principal}: call setProof first`, { hint: 'the person signs a grant (mcp-mtls delegate) or signs in at the identity provider' });
    if (p.failed) throw p.failed;
    // none yet, or it ran out before a renewal succeeded: exchange now (a clear error if that fails, never the expired one)
    if (!p.bundle || p.bundle.notAfter.getTime() <= Date.now() + 1000) {
      try {
        // the CA asked to wait (429, 503 with Retry-After): its last answer, without asking again
        if (p.retryAt !== undefined && Date.now() < p.retryAt && p.lastError !== undefined) throw p.lastError;
        await renew(principal, p);
      } catch (e) {
        if (p.failed || !p.bundle) throw e;
        const why = p.lastError instanceof Error ? p.lastError.message : String(p.lastError);
        throw new MtlsError('CERT_EXPIRED', `the delegated certificate for ${principal} ran out at ${p.bundle.notAfter.toISOString()} and the CA did not renew it: ${why}`, { cause: e, hint: 'check that the CA is reachable (ca serve) and the person\'s proof is still good' });
      }
    }
    return p;
  }

  return {
    setProof(principal, proof) {
      const existing = people.get(principal);
      const fn = typeof proof === 'function' ? proof : () => proof;
      if (existing) {
        existing.proof = fn;
        existing.failed = undefined; // a new proof: the next use exchanges it
      } else people.set(principal, { proof: fn, listeners: new Set() });
    },
    async dispatcherFor(principal) {
      const p = await current(principal);
      if (!p.agent) {
        const source: CredentialSource = {
          bundle: p.bundle as Bundle,
          subscribe: (l) => {
            p.listeners.add(l);
            return () => p.listeners.delete(l);
          },
        };
        p.agent = new RenewingAgent(source, options.agent ?? {});
      }
      return p.agent;
    },
    async fetchFor(principal) {
      await this.dispatcherFor(principal);
      // each request checks the person first: a refusal for good or an unrenewed, expired
      // certificate is a clear error here, never a request made with the stale certificate
      const self = this;
      return (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
        const agent = await self.dispatcherFor(principal);
        const p = people.get(principal) as Person;
        if (p.fetch?.agent !== agent) p.fetch = { agent, fetch: createMtlsFetch(agent) as typeof fetch };
        return p.fetch.fetch(input, init);
      }) as typeof fetch;
    },
    get exchanges() {
      return exchanges;
    },
    async drop(principal) {
      const p = people.get(principal);
      people.delete(principal);
      if (p?.timer) clearTimeout(p.timer);
      await p?.agent?.close();
    },
    async close() {
      closed = true;
      const all = [...people.keys()];
      await Promise.all(all.map((k) => this.drop(k)));
      await caAgent.close();
    },
  };
}
