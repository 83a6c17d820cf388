/**
 * A provider's signing keys: its discovery document (`jwks_uri`) and JWKS, fetched on first
 * use and kept. Keys rotate at the provider: a token whose `kid` the kept JWKS lacks makes one
 * refetch, at most once per `cooldownMs` (anyone can send a token with a made-up kid: a flood
 * costs one fetch per cooldown, not one per request); the JWKS is also refetched after
 * `maxAgeMs`. When a refetch fails the kept keys stay in use (a provider down for a moment
 * does not stop sign-ins with known keys); with no keys at all the sign-in is refused 503.
 */
import { createLocalJWKSet, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { FetchFailed, fetchJson } from './fetch-json.js';
import { discoveryUrl, issuerProblem } from './issuer-url.js';
import { OidcRefused } from './refused.js';

export interface ProviderKeysOptions {
  /** the least time between two refetches for an unknown kid (default 30 000 ms) */
  readonly cooldownMs?: number;
  /** the JWKS and discovery document are fetched again after this (default 1 h) */
  readonly maxAgeMs?: number;
  /** per document fetch (default 5000 ms) */
  readonly timeoutMs?: number;
  readonly log?: (message: string) => void;
}

type KeySet = ReturnType<typeof createLocalJWKSet>;

export class ProviderKeys {
  readonly #issuer: string;
  readonly #name: string;
  readonly #ca: Buffer | undefined;
  readonly #cooldownMs: number;
  readonly #maxAgeMs: number;
  readonly #timeoutMs: number;
  readonly #log: (m: string) => void;
  #keys: KeySet | undefined;
  #fetchedAt = -Infinity;
  #inFlight: Promise<void> | undefined;
  /** fetches made (discovery + JWKS pairs), for tests and metrics */
  fetches = 0;

  constructor(provider: { name: string; issuer: string }, ca: Buffer | undefined, options: ProviderKeysOptions = {}) {
    this.#issuer = provider.issuer;
    this.#name = provider.name;
    this.#ca = ca;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#maxAgeMs = options.maxAgeMs ?? 3_600_000;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#log = options.log ?? (() => undefined);
  }

  /** The key for a token's header (jose's key function): refetches once for an unknown kid. */
  async key(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    if (!this.#keys || Date.now() - this.#fetchedAt > this.#maxAgeMs) await this.#refresh(!this.#keys);
    try {
      return await this.#keys!(header, token);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || Date.now() - this.#fetchedAt < this.#cooldownMs) throw e;
      await this.#refresh(false);
      return await this.#keys!(header, token);
    }
  }

  /** One fetch at a time, shared by every request waiting; `required`: no keys to fall back on. */
  async #refresh(required: boolean): Promise<void> {
    this.#inFlight ??= this.#fetch().finally(() => (this.#inFlight = undefined));
    try {
      await this.#inFlight;
    } catch (e) {
      const why = e instanceof FetchFailed || e instanceof OidcRefused ? e.message : String(e);
      if (required || !this.#keys) {
        throw new OidcRefused('OIDC_PROVIDER_UNAVAILABLE', `the identity provider ${this.#name} (${this.#issuer}) cannot be reached for its keys: ${why}`, 'try again shortly; if it lasts, tell the operator (the CA fetches <issuer>/.well-known/openid-configuration and its jwks_uri)', { provider: this.#name });
      }
      this.#log(`warning: login provider ${this.#name}: refetching its keys failed, the kept ones stay in use: ${why}`);
    }
  }

  async #fetch(): Promise<void> {
    // a failed attempt counts for the cooldown too: a provider that is down is not hammered
    this.#fetchedAt = Date.now();
    this.fetches++;
    const doc = (await fetchJson(discoveryUrl(this.#issuer), { timeoutMs: this.#timeoutMs, ...(this.#ca ? { ca: this.#ca } : {}) })) as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery 4.3: the document names the issuer it was fetched for, exactly
    if (doc?.issuer !== this.#issuer) throw new FetchFailed(`its discovery document names the issuer ${JSON.stringify(doc?.issuer)}, not ${this.#issuer}`);
    if (typeof doc.jwks_uri !== 'string' || issuerProblem(doc.jwks_uri)) throw new FetchFailed(`its discovery document has no usable jwks_uri (https, or http on loopback)`);
    // plain http on loopback is for an issuer on this host that is itself http: an https
    // issuer's document must not send the CA to a loopback port of its own host in the clear
    if (new URL(doc.jwks_uri).protocol !== 'https:' && new URL(this.#issuer).protocol === 'https:') throw new FetchFailed(`its discovery document's jwks_uri ${doc.jwks_uri} is not https, as the issuer is`);
    const jwks = (await fetchJson(doc.jwks_uri, { timeoutMs: this.#timeoutMs, ...(this.#ca ? { ca: this.#ca } : {}) })) as JSONWebKeySet;
    if (!jwks || !Array.isArray(jwks.keys)) throw new FetchFailed(`${doc.jwks_uri} is not a JWK set`);
    this.#keys = createLocalJWKSet(jwks);
    this.#fetchedAt = Date.now();
  }
}
