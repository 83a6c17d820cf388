/**
 * Signing in at the company's identity provider for `mcp-mtls login`: what the CA says about
 * its providers (`GET <ca>/login`), then an ID token through one of two flows (openid-client
 * does discovery, PKCE, state and nonce checks, and the token exchange):
 *
 * - the device authorization grant (RFC 8628) where no browser can be opened: the URL and the
 *   user code go to `prompt`, the person signs in elsewhere, this process polls;
 * - the authorization code flow with PKCE (S256) on a loopback redirect (RFC 8252): a listener
 *   on 127.0.0.1, random port, path /callback, for one answer; state and nonce are random per
 *   attempt and checked; the browser is opened when it can be, and the URL is always printed.
 *
 * The ID token is handed to the CA, which checks it (signature, iss, aud, exp, nonce, one use);
 * it is never written anywhere. The issuer must be https:, except on a loopback address (a
 * provider on this machine, for development and tests).
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { Agent } from 'undici';
import { z } from 'zod';
import { MtlsError } from '../errors.js';
import { caEndpoint, caErrorOf, caRequest } from './ca-pin.js';
import { isLoopbackHost } from './server-url.js';

export const LoginConfigSchema = z.object({
  version: z.literal(1),
  trustDomain: z.string(),
  providers: z.array(z.object({ name: z.string(), issuer: z.string(), clientId: z.string(), scopes: z.array(z.string()).or(z.string()) })).min(1),
  sign: z.string(),
  renew: z.string(),
});
export type LoginConfig = z.infer<typeof LoginConfigSchema>;
export type LoginProvider = LoginConfig['providers'][number];

/** `GET <ca>/login`: which providers the CA accepts ID tokens of, and where to send them. */
export async function fetchLoginConfig(agent: Agent, base: URL): Promise<LoginConfig> {
  const url = caEndpoint(base, '/login');
  const a = await caRequest(agent, url, { headers: { accept: 'application/json' } });
  if (a.status === 404) throw new MtlsError('NOT_FOUND', `the CA at ${base.origin} has no sign-in (GET /login answered 404)`, { hint: 'the CA operator adds an identity provider to config.yaml (docs/login.md); workloads enroll with a token instead (mcp-mtls enroll)' });
  if (a.status !== 200) {
    const e = caErrorOf(a);
    throw new MtlsError('SERVER_UNREACHABLE', `GET ${url.href} answered ${a.status}: ${e.message}`, { ...(e.hint ? { hint: e.hint } : {}) });
  }
  let json: unknown;
  try {
    json = JSON.parse(a.body.toString('utf8'));
  } catch {
    json = undefined;
  }
  const parsed = LoginConfigSchema.safeParse(json);
  if (!parsed.success) throw new MtlsError('SERVER_UNREACHABLE', `GET ${url.href} did not answer a sign-in configuration (version 1)`, { hint: 'check --ca; a newer CA may need a newer mcp-mtls' });
  return parsed.data;
}

export function chooseProvider(config: LoginConfig, name: string | undefined): LoginProvider {
  const names = config.providers.map((p) => p.name);
  if (name === undefined) {
    if (config.providers.length > 1) throw new MtlsError('USAGE', `the CA accepts ${config.providers.length} identity providers: choose one with --provider (${names.join(', ')})`);
    return config.providers[0]!;
  }
  const p = config.providers.find((x) => x.name === name);
  if (!p) throw new MtlsError('USAGE', `the CA has no identity provider "${name}"`, { hint: `use one of: ${names.join(', ')}` });
  return p;
}

/** The issuer's configuration (discovery). https: only, http: to a loopback address allowed. */
export async function discover(provider: LoginProvider): Promise<oidc.Configuration> {
  let issuer: URL;
  try {
    issuer = new URL(provider.issuer);
  } catch {
    throw new MtlsError('BAD_ARGUMENT', `the CA names an issuer that is not a URL: ${provider.issuer}`);
  }
  const loopbackHttp = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname);
  if (issuer.protocol !== 'https:' && !loopbackHttp) throw new MtlsError('INSECURE_URL', `the identity provider ${issuer.href} is not https:`, { hint: 'the CA operator must configure an https: issuer' });
  try {
    return await oidc.discovery(issuer, provider.clientId, undefined, oidc.None(), { timeout: 15, ...(loopbackHttp ? { execute: [oidc.allowInsecureRequests] } : {}) });
  } catch (cause) {
    throw new MtlsError('SERVER_UNREACHABLE', `cannot read the identity provider's configuration at ${issuer.href}: ${reason(cause)}`, { cause, hint: 'check that the provider is up; its discovery document is <issuer>/.well-known/openid-configuration' });
  }
}

const reason = (e: unknown): string => {
  const err = e as { message?: string; cause?: { code?: string; message?: string }; error?: string; error_description?: string };
  if (err.error) return `${err.error}${err.error_description ? `: ${err.error_description}` : ''}`;
  // openid-client wraps the precise check that failed ('unexpected "state" response parameter value') in its cause
  const inner = err.cause?.message && err.cause.message !== err.message ? `: ${err.cause.message}` : '';
  return `${err.message ?? String(e)}${inner}${err.cause?.code ? ` (${err.cause.code})` : ''}`;
};

const scopeOf = (p: LoginProvider) => (Array.isArray(p.scopes) ? p.scopes.join(' ') : p.scopes);

/** An ID token, and the nonce the flow put in it (the CA checks it); the device flow has none. */
export interface SignedIn {
  readonly idToken: string;
  readonly nonce?: string;
}

export interface DevicePrompt {
  readonly verificationUri: string;
  readonly verificationUriComplete?: string;
  readonly userCode: string;
  readonly expiresInSeconds: number;
}

/** The device flow: `prompt` shows the URL and code; resolves when the person has signed in. */
export async function signInWithDevice(config: oidc.Configuration, provider: LoginProvider, prompt: (p: DevicePrompt) => void, signal?: AbortSignal): Promise<SignedIn> {
  let start: oidc.DeviceAuthorizationResponse;
  try {
    start = await oidc.initiateDeviceAuthorization(config, { scope: scopeOf(provider) });
  } catch (cause) {
    throw new MtlsError('TOKEN_REFUSED', `the identity provider refused the device sign-in: ${reason(cause)}`, { cause, hint: 'the provider must allow the device flow for this client id (docs/login.md)' });
  }
  // what is printed came from the provider: URLs as https: (http: on loopback) in their WHATWG
  // form (controls percent-encoded), the code as printable ASCII; anything else is refused
  const verificationUri = promptUrl(start.verification_uri, 'verification_uri');
  const complete = start.verification_uri_complete === undefined ? undefined : promptUrl(start.verification_uri_complete, 'verification_uri_complete');
  if (typeof start.user_code !== 'string' || !/^[\x20-\x7e]{1,64}$/.test(start.user_code)) {
    throw new MtlsError('TOKEN_REFUSED', 'the identity provider sent a user_code that is not 1-64 printable ASCII characters: not shown', { hint: 'tell the CA operator: the provider\'s device flow answers something unexpected' });
  }
  prompt({ verificationUri, ...(complete ? { verificationUriComplete: complete } : {}), userCode: start.user_code, expiresInSeconds: start.expires_in });
  try {
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, start, undefined, signal ? { signal } : {});
    if (!tokens.id_token) throw new MtlsError('TOKEN_REFUSED', 'the identity provider sent no ID token', { hint: 'the scopes must include openid' });
    return { idToken: tokens.id_token };
  } catch (cause) {
    if (cause instanceof MtlsError) throw cause;
    throw new MtlsError('TOKEN_REFUSED', `the device sign-in did not complete: ${reason(cause)}`, { cause, hint: 'run mcp-mtls login again and finish signing in before the code expires' });
  }
}

/** A URL the provider asks the person to open: https: (http: on a loopback address), as its WHATWG href. */
export function promptUrl(value: unknown, what: string): string {
  let u: URL | undefined;
  try {
    u = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    u = undefined;
  }
  if (!u || !(u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname)))) {
    throw new MtlsError('TOKEN_REFUSED', `the identity provider sent a ${what} that is not an https: URL: not shown`, { hint: 'tell the CA operator: the provider\'s device flow answers something unexpected' });
  }
  return u.href;
}

const PAGE = (title: string, text: string) => `<!doctype html><meta charset="utf-8"><title>${title}</title><h1>${title}</h1><p>${text}</p>`;

/**
 * Code + PKCE on a loopback redirect. `show(url)` prints the authorization URL (and opens the
 * browser when it can); resolves with the ID token once the browser came back with a code
 * that the token endpoint exchanged and whose state and nonce match.
 */
export async function signInWithBrowser(config: oidc.Configuration, provider: LoginProvider, show: (url: URL) => void, timeoutMs = 300_000): Promise<SignedIn> {
  const verifier = oidc.randomPKCECodeVerifier();
  const challenge = await oidc.calculatePKCECodeChallenge(verifier);
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  let settle!: { resolve: (v: SignedIn) => void; reject: (e: unknown) => void };
  const done = new Promise<SignedIn>((resolve, reject) => (settle = { resolve, reject }));
  let redirectUri = '';
  let handled = false;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', redirectUri);
    // only the answer to this attempt (its state) ends it: any local process, or a web page that
    // guesses the port, could otherwise end the sign-in with one request to /callback
    const theirs = Buffer.from(url.searchParams.get('state') ?? '');
    const ours = Buffer.from(state);
    if (req.method !== 'GET' || url.pathname !== '/callback' || handled || theirs.length !== ours.length || !crypto.timingSafeEqual(theirs, ours)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    handled = true;
    (async () => {
      try {
        const tokens = await oidc.authorizationCodeGrant(config, url, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(PAGE('Signed in', 'mcp-mtls is getting your certificate; you can close this window.'));
        settle.resolve({ idToken: tokens.id_token!, nonce });
      } catch (cause) {
        res.writeHead(400, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(PAGE('Sign-in failed', 'Go back to the terminal for the reason.'));
        settle.reject(new MtlsError('TOKEN_REFUSED', `the sign-in did not complete: ${reason(cause)}`, { cause, hint: 'run mcp-mtls login again (or --device)' }));
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  const timer = setTimeout(() => settle.reject(new MtlsError('TOKEN_REFUSED', `no sign-in within ${Math.round(timeoutMs / 1000)} s`, { hint: 'run mcp-mtls login again, or --device to sign in on another device' })), timeoutMs);
  try {
    show(oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: scopeOf(provider), code_challenge: challenge, code_challenge_method: 'S256', state, nonce }));
    return await done;
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  }
}
