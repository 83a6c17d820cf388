/**
 * A real OpenID provider for the sign-in tests (#22, #23): `oidc-provider` (OpenID-certified)
 * in this process on http://127.0.0.1:<port 0>, with users in groups, a public native client
 * with code + PKCE (loopback redirect, any port: RFC 8252) and the device flow (RFC 8628), a
 * second client (another audience), key rotation, and a browser-side driver that is a real
 * HTTP client: it follows the redirects and submits the provider's own login, consent and
 * device forms (devInteractions), with a cookie jar, as a browser would.
 *
 * The issuer is plain HTTP on loopback: the CA accepts `http:` issuers on loopback addresses
 * only (docs/login.md says why), so no test CA for the provider is needed.
 *
 * oidc-provider 9 prints "Unsupported runtime" on Node 20 and works; on Node 22 it is silent.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import Provider from 'oidc-provider';

export interface OidcUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  preferred_username?: string;
  name?: string;
  groups?: string[];
}

/**
 * The provider's accounts (log in with any password). alice: sre + dev; bob: dev; carol: a
 * group no test config maps (`marketing`); eve: a `preferred_username` (`eve/admin`) and
 * an `email` that break the principal id rules; frank: no groups claim at all.
 */
export const OIDC_USERS: Record<string, OidcUser> = {
  alice: { sub: 'alice', email: 'alice@example.com', email_verified: true, preferred_username: 'alice', name: 'Alice', groups: ['sre', 'dev'] },
  bob: { sub: 'bob', email: 'bob@example.com', email_verified: true, preferred_username: 'bob', name: 'Bob', groups: ['dev'] },
  carol: { sub: 'carol', email: 'carol@example.com', email_verified: true, preferred_username: 'carol', name: 'Carol', groups: ['marketing'] },
  eve: { sub: 'eve', email: 'eve@example.com', email_verified: false, preferred_username: 'eve/admin', name: 'Eve', groups: ['sre'] },
  frank: { sub: 'frank', email: 'frank@example.com', email_verified: true, preferred_username: 'frank', name: 'Frank' },
};

/** The public native client: code + PKCE on a loopback redirect (any port) and the device flow. */
export const CLI_CLIENT_ID = 'mcp-mtls-cli';
/** A second public client: ID tokens for it carry another audience. */
export const OTHER_CLIENT_ID = 'other-app';
/** The registered loopback redirect; the port is ignored for native clients (RFC 8252 7.3). */
export const LOOPBACK_REDIRECT = 'http://127.0.0.1/callback';
export const DEFAULT_SCOPES = 'openid email profile groups';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface SigningKey {
  kid: string;
  alg: 'RS256';
  privateKey: CryptoKey;
  publicJwk: JWK;
  privateJwk: JWK;
}

export interface TokenSet {
  id_token: string;
  access_token?: string;
  refresh_token?: string;
  token_type?: string;
  expires_in?: number;
  [k: string]: unknown;
}

export interface CodeSignIn {
  user: string;
  clientId?: string;
  redirectUri?: string;
  /** S256 challenge; when absent, a verifier is made and returned by {@link TestIdp.signIn} */
  codeChallenge: string;
  state?: string;
  nonce?: string;
  scope?: string;
}

export interface TestIdp {
  issuer: string;
  port: number;
  /** the signing keys in the JWKS, first = the one signing now */
  keys(): SigningKey[];
  /** A new signing key; the old one stays in the JWKS when keepOld (default: dropped). */
  rotateKeys(opts?: { keepOld?: boolean }): Promise<SigningKey>;
  /** Requests the provider has answered at a path (e.g. `/jwks`), for cache tests. */
  hits(pathname: string): number;
  /**
   * An ID token signed with the provider's current key (valid signature) and the claims
   * given over sensible defaults (iss, aud = CLI client, sub alice, iat now, exp +5 min, a
   * jti); `null` removes a default. For tests of claim checks, not of the flows.
   */
  mintIdToken(claims?: Record<string, unknown | null>, opts?: { key?: SigningKey; alg?: string; header?: Record<string, unknown> }): Promise<string>;
  /** The browser half of code + PKCE: follows redirects, signs in, consents; returns the code. */
  signInWithCode(p: CodeSignIn): Promise<{ code: string; state: string | null; redirect: string }>;
  /** Trades a code for tokens at the token endpoint (a public client with PKCE). */
  exchangeCode(p: { code: string; codeVerifier: string; clientId?: string; redirectUri?: string }): Promise<TokenSet>;
  /** code + PKCE in one: a fresh ID token for `user` (nonce passed through when given). */
  signIn(p: { user: string; clientId?: string; nonce?: string; scope?: string }): Promise<TokenSet>;
  /**
   * A browser opening `url` (an authorization URL a client printed): follows redirects, signs
   * in as `user`, consents, and finally GETs the redirect target (e.g. the client's loopback
   * listener). Returns the last URL and its status.
   */
  browse(url: string, user: string): Promise<{ url: string; status: number; body: string }>;
  /** The person's half of the device flow: enters the user code, confirms, signs in, consents. */
  approveDevice(p: { userCode: string; user: string }): Promise<void>;
  /** Closes the listener (connections refused from now on). */
  stop(): Promise<void>;
}

const b64url = (b: Buffer) => b.toString('base64url');
export const pkcePair = (): { verifier: string; challenge: string } => {
  const verifier = b64url(crypto.randomBytes(32));
  return { verifier, challenge: b64url(crypto.createHash('sha256').update(verifier).digest()) };
};

async function newSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `k-${crypto.randomBytes(6).toString('hex')}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, alg: 'RS256', privateKey, publicJwk, privateJwk };
}

/** The resource (RFC 8707) whose access tokens are JWTs when startOidcProvider's `jwtAccessTokens` is set; ask for scope {@link TEST_API_SCOPE}. */
export const TEST_API_RESOURCE = 'urn:mcp-mtls:test-api';
export const TEST_API_SCOPE = 'api';

function providerConfig(keys: SigningKey[], cookieKeys: string[], jwtAccessTokens?: { audience: string }): Record<string, unknown> {
  // RFC 9068 access tokens (typ at+jwt) for one resource, with the audience the test chooses
  // (e.g. the CLI client's id: an access token that a client could mistake for an ID token)
  const resourceIndicators = jwtAccessTokens
    ? {
        enabled: true,
        defaultResource: async () => TEST_API_RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({ scope: TEST_API_SCOPE, audience: jwtAccessTokens.audience, accessTokenFormat: 'jwt', accessTokenTTL: 300 }),
      }
    : { enabled: false };
  return {
    clients: [
      {
        client_id: CLI_CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', DEVICE_GRANT],
        response_types: ['code'],
        redirect_uris: [LOOPBACK_REDIRECT],
      },
      {
        client_id: OTHER_CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', DEVICE_GRANT],
        response_types: ['code'],
        redirect_uris: [LOOPBACK_REDIRECT],
      },
    ],
    async findAccount(_ctx: unknown, id: string) {
      const user = OIDC_USERS[id];
      if (!user) return undefined;
      // auth_id: a fresh value per ID token, as real providers' sid/jti/at_hash make two
      // sign-ins of one person within the same second differ (else the CA sees a replay)
      return { accountId: id, async claims() { return { ...user, auth_id: crypto.randomUUID() }; } };
    },
    claims: {
      openid: ['sub', 'auth_id'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username', 'name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    // scope claims in the ID token itself (as Keycloak/Okta/Entra do for groups when configured)
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators,
    },
    pkce: { required: () => true },
    jwks: { keys: keys.map((k) => k.privateJwk) },
    cookies: { keys: cookieKeys },
    ttl: { IdToken: 300, AccessToken: 300, AuthorizationCode: 60, DeviceCode: 300, Interaction: 300, Session: 3600, Grant: 3600 },
    // silence "unrecognized" warnings for the test-only helpers
    renderError(ctx: { type: string; body: string }, out: Record<string, string>) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><h1>oops</h1><pre>${Object.entries(out).map(([k, v]) => `${k}: ${v}`).join('\n')}</pre>`;
    },
  };
}

/** A cookie jar and a real HTTP client that does not follow redirects by itself. */
class Browser {
  private readonly jar = new Map<string, string>();
  constructor(private readonly origin: string) {}

  async request(method: 'GET' | 'POST', url: string, form?: Record<string, string>): Promise<{ status: number; location?: string; body: string; url: string }> {
    const u = new URL(url);
    const sameOrigin = u.origin === this.origin;
    const headers: Record<string, string> = { accept: 'text/html' };
    if (sameOrigin && this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (form) {
      body = new URLSearchParams(form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(u, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    if (sameOrigin) {
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') this.jar.delete(name);
        else this.jar.set(name, value);
      }
    }
    const location = res.headers.get('location');
    return { status: res.status, ...(location ? { location: new URL(location, u).href } : {}), body: await res.text(), url: u.href };
  }
}

interface HtmlForm {
  action: string;
  method: 'GET' | 'POST';
  fields: Record<string, string>;
}

const attr = (tag: string, name: string): string | undefined => {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag);
  return m ? decodeEntities(m[2] ?? m[3] ?? '') : undefined;
};
const decodeEntities = (s: string) =>
  s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#x2F;/g, '/');

/** The first <form> of a page: action, method, and its inputs' names and values. */
function firstForm(html: string, base: string): HtmlForm | undefined {
  const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  for (const input of m[2]!.match(/<input\b[^>]*>/gi) ?? []) {
    const name = attr(input, 'name');
    if (name) fields[name] = attr(input, 'value') ?? '';
  }
  return { action: new URL(attr(m[1]!, 'action') ?? base, base).href, method: (attr(m[1]!, 'method') ?? 'get').toUpperCase() === 'POST' ? 'POST' : 'GET', fields };
}

/**
 * Drives a page sequence until `done(url)` is true for a redirect target: follows redirects,
 * fills the login form (user, any password), confirms consent and device prompts, and
 * auto-submits form_post pages. Throws with the page when it meets something else.
 */
async function drive(browser: Browser, start: string, user: string, done: (url: string) => boolean, extra: Record<string, string> = {}, endPage: (url: string, body: string) => boolean = () => false): Promise<string> {
  let next: { method: 'GET' | 'POST'; url: string; form?: Record<string, string> } = { method: 'GET', url: start };
  for (let step = 0; step < 25; step++) {
    const res = await browser.request(next.method, next.url, next.form);
    if (process.env.OIDC_DRIVER_DEBUG) console.error("driver", next.method, next.url, JSON.stringify(next.form ?? {}), "->", res.status, res.location ?? "", res.location ? "" : res.body.slice(0, 300));
    if (res.location) {
      if (done(res.location)) return res.location;
      next = { method: 'GET', url: res.location };
      continue;
    }
    if (res.status !== 200) throw new Error(`oidc test driver: ${res.status} at ${res.url}: ${res.body.slice(0, 500)}`);
    const form = firstForm(res.body, res.url);
    if (!form) {
      if (endPage(res.url, res.body)) return res.url;
      throw new Error(`oidc test driver: no form at ${res.url}: ${res.body.slice(0, 500)}`);
    }
    const f = { ...form.fields };
    if ('login' in f || f.prompt === 'login') {
      f.login = user;
      f.password = 'any';
    } else if ('user_code' in f && !('confirm' in f) && extra.user_code) {
      f.user_code = extra.user_code;
    }
    if ('confirm' in f || /name="confirm"/.test(res.body)) f.confirm = 'yes';
    delete f.abort;
    next = { method: form.method, url: form.action, form: f };
  }
  throw new Error('oidc test driver: too many steps');
}

/**
 * Starts the provider on 127.0.0.1, port 0: http, or https with `tls` (a certificate for
 * 127.0.0.1). Over https the browser driver (Node's fetch) does not trust the test CA: use
 * mintIdToken there; the point of `tls` is the CA's caFile.
 */
export async function startOidcProvider(options: { tls?: { cert: string; key: string }; jwtAccessTokens?: { audience: string } } = {}): Promise<TestIdp> {
  let keys: SigningKey[] = [await newSigningKey()];
  const cookieKeys = [crypto.randomBytes(16).toString('hex')];
  const hits = new Map<string, number>();
  let handler: http.RequestListener = (_req, res) => res.end();
  const listener: http.RequestListener = (req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(p, (hits.get(p) ?? 0) + 1);
    handler(req, res);
  };
  const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, listener) : http.createServer(listener);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  const build = () => {
    const provider = new Provider(issuer, providerConfig(keys, cookieKeys, options.jwtAccessTokens));
    // the warnings oidc-provider prints for dev-only settings are expected here
    provider.on('server_error', (_ctx: unknown, err: Error) => console.error('oidc-provider server_error', err));
    handler = provider.callback();
  };
  build();

  const exchange = async (form: Record<string, string>): Promise<TokenSet> => {
    const res = await fetch(`${issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), signal: AbortSignal.timeout(10_000) });
    const json = (await res.json()) as TokenSet & { error?: string; error_description?: string };
    if (!res.ok) throw new Error(`token endpoint ${res.status}: ${json.error} ${json.error_description ?? ''}`);
    return json;
  };

  const idp: TestIdp = {
    issuer,
    port,
    keys: () => keys,
    hits: (p) => hits.get(p) ?? 0,
    async rotateKeys(opts = {}) {
      const k = await newSigningKey();
      keys = opts.keepOld ? [k, ...keys] : [k];
      build(); // the memory adapter's storage is module-wide: sessions and grants survive the swap
      return k;
    },
    async mintIdToken(claims = {}, opts = {}) {
      const key = opts.key ?? keys[0]!;
      const now = Math.floor(Date.now() / 1000);
      const base: Record<string, unknown> = { iss: issuer, aud: CLI_CLIENT_ID, sub: 'alice', iat: now, exp: now + 300, jti: crypto.randomUUID(), ...OIDC_USERS.alice };
      const merged: Record<string, unknown> = { ...base, ...claims };
      for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
      return new SignJWT(merged).setProtectedHeader({ alg: opts.alg ?? key.alg, kid: key.kid, typ: 'JWT', ...opts.header }).sign(key.privateKey);
    },
    async signInWithCode(p) {
      const redirectUri = p.redirectUri ?? LOOPBACK_REDIRECT;
      const q = new URLSearchParams({
        client_id: p.clientId ?? CLI_CLIENT_ID,
        response_type: 'code',
        redirect_uri: redirectUri,
        scope: p.scope ?? DEFAULT_SCOPES,
        code_challenge: p.codeChallenge,
        code_challenge_method: 'S256',
        state: p.state ?? b64url(crypto.randomBytes(12)),
        ...(p.nonce ? { nonce: p.nonce } : {}),
      });
      const browser = new Browser(issuer);
      const target = new URL(redirectUri);
      const redirect = await drive(browser, `${issuer}/auth?${q}`, p.user, (u) => {
        const x = new URL(u);
        return x.origin === target.origin && x.pathname === target.pathname;
      });
      const r = new URL(redirect);
      const code = r.searchParams.get('code');
      if (!code) throw new Error(`sign-in refused: ${r.searchParams.get('error')} ${r.searchParams.get('error_description') ?? ''}`);
      return { code, state: r.searchParams.get('state'), redirect };
    },
    exchangeCode: (p) =>
      exchange({ grant_type: 'authorization_code', code: p.code, code_verifier: p.codeVerifier, client_id: p.clientId ?? CLI_CLIENT_ID, redirect_uri: p.redirectUri ?? LOOPBACK_REDIRECT }),
    async signIn(p) {
      const { verifier, challenge } = pkcePair();
      const { code } = await idp.signInWithCode({ user: p.user, codeChallenge: challenge, ...(p.clientId ? { clientId: p.clientId } : {}), ...(p.nonce ? { nonce: p.nonce } : {}), ...(p.scope ? { scope: p.scope } : {}) });
      return idp.exchangeCode({ code, codeVerifier: verifier, ...(p.clientId ? { clientId: p.clientId } : {}) });
    },
    async browse(url, user) {
      const browser = new Browser(issuer);
      const last = await drive(browser, url, user, (u) => new URL(u).origin !== issuer);
      if (new URL(last).origin === issuer) return { url: last, status: 200, body: '' };
      const res = await browser.request('GET', last);
      return { url: last, status: res.status, body: res.body };
    },
    async approveDevice(p) {
      const browser = new Browser(issuer);
      // the page after the last consent is the device success page (no form, no redirect)
      await drive(browser, `${issuer}/device`, p.user, () => false, { user_code: p.userCode }, (u, body) => new URL(u).pathname.startsWith('/device/') && /success/i.test(body));
    },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
  return idp;
}
