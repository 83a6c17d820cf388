/**
 * Sign-in at `ca serve` (#22, docs/login.md): `GET /login` tells a client which identity
 * providers to use, `POST /login/sign` trades an ID token and a CSR for a certificate, and
 * `GET /ca/root.crt`, `/ca/chain.pem` hand out the CA certificates a client pins (by the
 * SHA-256 of the root's DER) before it trusts anything else from this server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pemEncode } from '../../x509/pem.js';
import { verifyCsr } from '../../x509/csr.js';
import type { Authority, IssuedCertificate } from '../authority.js';
import { maxTtl } from '../limits.js';
import { mapClaims } from '../oidc/claims-mapping.js';
import type { ProviderKeysOptions } from '../oidc/provider-keys.js';
import { loginProviders, type LoginProviders } from '../oidc/providers.js';
import { OidcRefused } from '../oidc/refused.js';
import { MAX_TOKEN_BYTES, verifyIdToken } from '../oidc/verify-id-token.js';
import { HttpError, readCsrBody, sendJson } from './http.js';
import { refuseRevokedPrincipal } from './principal-revoked.js';

/** Options of the sign-in routes (tests shorten the key refetch cooldown). */
export type LoginServeOptions = ProviderKeysOptions;

export interface LoginRoutes {
  readonly providers: LoginProviders | undefined;
  /** GET /login */
  discovery(res: ServerResponse): void;
  /** POST /login/sign: the issued certificate; `note` gets the audit fields */
  sign(req: IncomingMessage, note: Record<string, unknown>): Promise<IssuedCertificate>;
  /** GET /ca/root.crt, /ca/chain.pem */
  caPem(res: ServerResponse, which: 'root' | 'chain', head: boolean): void;
}

/** A lifetime margin: the issuance reads the clock again, a moment later. */
const INTERMEDIATE_MARGIN_MS = 60_000;

/**
 * The routes for `ca` (its config.yaml's `login:`). Builds the providers at once, so that a
 * bad `login:` config stops `ca serve` at start.
 *
 * @throws MtlsError `CA_CONFIG_INVALID` (providers.ts)
 */
export function createLoginRoutes(ca: Authority, options: LoginServeOptions = {}): LoginRoutes {
  const providers = loginProviders(ca.config, ca.layout.dir, options);
  const notConfigured = () => new HttpError(404, 'LOGIN_NOT_CONFIGURED', 'this CA has no identity providers for sign-in', 'the operator adds login.providers to config.yaml (docs/login.md); workloads enroll with a token: mcp-mtls enroll --token');
  const chainPem = () => ca.rootPem + pemEncode('CERTIFICATE', ca.intermediateDer);

  return {
    providers,
    discovery(res) {
      if (!providers) throw notConfigured();
      sendJson(res, 200, {
        version: 1,
        trustDomain: ca.config.trustDomain,
        providers: providers.list.map((p) => ({ name: p.name, issuer: p.issuer, clientId: p.clientId, scopes: p.scopes })),
        sign: '/login/sign',
        renew: '/renew',
      });
    },
    caPem(res, which, head) {
      const body = which === 'root' ? ca.rootPem : chainPem();
      res.writeHead(200, { 'content-type': which === 'root' ? 'application/x-pem-file' : 'application/pem-certificate-chain', 'cache-control': 'public, max-age=300', 'content-length': Buffer.byteLength(body) });
      res.end(head ? undefined : body);
    },
    async sign(req, note) {
      if (!providers) {
        req.resume();
        throw notConfigured();
      }
      const m = /^Bearer[ ]+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!m) {
        req.resume();
        throw new OidcRefused('OIDC_TOKEN_REQUIRED', 'POST /login/sign needs an ID token: Authorization: Bearer <id_token>', 'sign in with mcp-mtls login');
      }
      const nonce = req.headers['mcp-mtls-nonce'];
      if (Array.isArray(nonce) || (nonce !== undefined && nonce.length > 512)) {
        req.resume();
        throw new OidcRefused('OIDC_NONCE', 'send one Mcp-Mtls-Nonce header of at most 512 characters', 'send the nonce of the sign-in');
      }
      // the CSR is read and its signature checked first: no key fetch, no replay record for a request that cannot succeed
      const csr = await readCsrBody(req);
      if (!csr) throw new HttpError(400, 'CSR_REQUIRED', 'POST /login/sign needs a CSR in the body', 'create one with `mcp-mtls csr` or openssl req -new, and send it as application/pkcs10');
      const { spki } = verifyCsr(csr); // proof of possession; its names and extensions are ignored
      const token = m[1] as string;
      if (token.length > MAX_TOKEN_BYTES) throw new OidcRefused('OIDC_TOKEN_INVALID', 'the bearer token is too large for an ID token', 'send the id_token of the sign-in');
      const verified = await verifyIdToken(providers, token, { ...(nonce !== undefined ? { nonce } : {}), now: ca.now() });
      const provider = verified.provider;
      Object.assign(note, { provider: provider.name, idpSubject: verified.subject });
      const identity = mapClaims(provider, verified.claims);
      Object.assign(note, { principal: `spiffe://${ca.config.trustDomain}/user/${identity.id}`, teams: identity.teams, roles: identity.roles, groups: identity.mappedGroups });
      const principal = note.principal as string;
      const who = { provider: provider.name, idpSubject: verified.subject };
      const iat = verified.claims.iat as number; // required by verifyIdToken
      await refuseRevokedPrincipal(ca.store, principal, iat, who); // early: no signing for a revoked person's old token
      const now = ca.now().getTime();
      const ttlMs = Math.min(provider.certTtl.ms, maxTtl(ca.config, 'client').ms, ca.intermediate.notAfter.getTime() - now - INTERMEDIATE_MARGIN_MS);
      const issued = await ca.issueClient(
        { kind: 'user', id: identity.id, teams: identity.teams, roles: identity.roles, ...(identity.email ? { email: identity.email } : {}), spki, ttlMs: Math.max(ttlMs, 1000) },
        {
          // the use is recorded in the issuing transaction: a request refused before (a claim the
          // profile refuses) leaves the token usable; two replicas racing on one token: one wins
          beforeCommit: async (tx) => {
            // again in the issuing transaction: a `revoke --principal` committed meanwhile wins
            await refuseRevokedPrincipal(tx, principal, iat, who);
            if (!(await tx.useOnce(verified.replayKey, verified.expiresAt, ca.now()))) {
              throw new OidcRefused('OIDC_REPLAY', 'this ID token was used already (an ID token is traded once)', 'sign in again for a new ID token', { provider: provider.name, idpSubject: verified.subject });
            }
          },
        },
      );
      Object.assign(note, { newSerial: issued.record.serial, notAfter: issued.record.notAfter });
      return issued;
    },
  };
}

/** An {@link OidcRefused} as the answer a client gets (503 with Retry-After when the provider is unreachable). */
export function oidcHttpError(e: OidcRefused, retryAfter: number): HttpError {
  return new HttpError(e.status, e.refusal, e.message, e.hint, e.status === 503 ? { 'retry-after': String(retryAfter) } : {}, { ...e.who, reason: e.refusal });
}
