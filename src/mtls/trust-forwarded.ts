/** For Node MCP servers behind the gateway: see {@link trustForwardedIdentity}. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeIdentity } from '../identity/decode.js';
import type { Identity } from '../identity/identity.js';
import { authInfoOf, type MtlsAuthInfo } from './auth-info.js';
import { xfccFirstElement, XFCC } from './xfcc.js';
import { stderrLog } from '../util/log.js';
import { sendJsonResponse } from '../util/json-response.js';
import { sha256Hex } from '../util/sha256.js';

/** Options of {@link trustForwardedIdentity}. */
export interface TrustForwardedOptions {
  /** Principal URIs of the gateways whose forwarded identity is trusted. */
  readonly gateways: readonly string[];
  /** Trust domains accepted for forwarded identities; undefined accepts any. */
  readonly trustDomains?: readonly string[];
  /** false: a forwarded delegated certificate is read as its holder (the actor) alone (docs/delegation.md); default true */
  readonly delegation?: boolean;
  /** Where ignored headers are logged; default stderr. */
  readonly log?: (line: string) => void;
}

type Req = IncomingMessage & { auth?: MtlsAuthInfo & { extra: { identity: Identity; via?: Identity } } };

/**
 * A connect-style middleware for Node MCP servers behind the gateway: takes the caller's
 * identity from the gateway's `x-forwarded-client-cert`, but only when the request itself came
 * over mTLS from one of `gateways`. From anyone else the header is removed and ignored (and
 * logged), and the request goes on as the peer's own: a client that reaches the upstream
 * directly cannot claim to be someone.
 *
 * Put it after {@link createMtlsMiddleware}, which sets `req.auth` for the gateway's own
 * certificate. On a trusted header it replaces `req.auth` with the forwarded identity
 * (`extra.identity`, with `extra.via` = the gateway; `scopes` empty). The forwarded
 * certificate is decoded against the identity profile but its chain, expiry and revocation
 * are not checked again: the gateway did. An unusable forwarded certificate, or one whose
 * SHA-256 is not the header's `Hash=`, is answered 401 (`invalid_identity`).
 *
 * ```ts
 * app.use(createMtlsMiddleware());                                  // the gateway authenticates to us
 * app.use(trustForwardedIdentity({ gateways: ['spiffe://acme.test/service/gateway'] }));
 * // req.auth.extra.identity is now the end user; req.auth.extra.via the gateway
 * ```
 */
export function trustForwardedIdentity(options: TrustForwardedOptions) {
  const log = options.log ?? stderrLog('mcp-mtls');
  return (req: Req, res: ServerResponse, next: (err?: unknown) => void) => {
    const header = req.headers[XFCC];
    if (header === undefined) return next();
    const value = Array.isArray(header) ? header[0]! : header;
    const peer = req.auth?.extra.identity;
    if (!peer || !options.gateways.includes(peer.principal)) {
      log(`ignored ${XFCC} from ${peer?.principal ?? req.socket.remoteAddress}: not a configured gateway`);
      delete req.headers[XFCC];
      return next();
    }
    const { cert: der, hash } = xfccFirstElement(value);
    let user: Identity;
    try {
      if (!der) throw new Error('no certificate in the header');
      // Hash= and Cert= must name one certificate: a header that pairs them otherwise was not
      // made from one verified certificate (as a gateway reading a renegotiated socket did)
      const actual = sha256Hex(der);
      if (hash !== actual) throw new Error(hash ? `its Hash ${hash} is not the SHA-256 of its Cert (${actual})` : 'the header has no Hash of its Cert');
      user = decodeIdentity(der, { ...(options.trustDomains ? { trustDomains: options.trustDomains } : {}), ...(options.delegation === false ? { delegation: false } : {}) });
    } catch (e) {
      sendJsonResponse(res, 401, { error: 'invalid_identity', message: `the forwarded certificate is not usable: ${(e as Error).message}` }, { cacheControl: 'no-store' });
      return;
    }
    req.auth = authInfoOf(user, peer);
    next();
  };
}
