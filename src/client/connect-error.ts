/**
 * Why a request could not reach the server. undici's fetch() rejects with a bare
 * `TypeError: fetch failed` whose `cause` chain holds the real reason (a socket error code
 * such as ECONNREFUSED, or a TLS verification code such as ERR_TLS_CERT_ALTNAME_INVALID).
 * This turns it into an MtlsError with a stable code and a hint naming the next step:
 * `SERVER_UNREACHABLE` (nothing answered: down, wrong host or port, network) or
 * `SERVER_CERT_INVALID` (something answered, but its certificate is not the server's).
 */
import { MtlsError, isMtlsError } from '../errors.js';

const UNREACHABLE: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused (nothing listens on that port)',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved (DNS)',
  ETIMEDOUT: 'the connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  ECONNRESET: 'the connection was reset',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  EPIPE: 'the connection was closed',
  UND_ERR_SOCKET: 'the connection was closed',
};

const SERVER_CERT: Readonly<Record<string, string>> = {
  ERR_TLS_CERT_ALTNAME_INVALID: 'the server certificate is not valid for this host name',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the server certificate is not signed by the bundle's CA",
  UNABLE_TO_GET_ISSUER_CERT: "the server certificate is not signed by the bundle's CA",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the server certificate is not signed by the bundle's CA",
  SELF_SIGNED_CERT_IN_CHAIN: "the server certificate chain ends in a CA the bundle does not trust",
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed',
  CERT_HAS_EXPIRED: 'the server certificate has expired',
  CERT_NOT_YET_VALID: 'the server certificate is not valid yet',
  CERT_REVOKED: 'the server certificate is revoked',
  CERT_SIGNATURE_FAILURE: 'the server certificate signature is invalid',
};

/** The error codes along `e`'s cause chain (outermost first), and the innermost message. */
function causes(e: unknown): { codes: string[]; message: string | undefined } {
  const codes: string[] = [];
  let message: string | undefined;
  const seen = new Set<unknown>();
  for (let c: unknown = e; typeof c === 'object' && c !== null && !seen.has(c) && seen.size < 10; c = (c as { cause?: unknown }).cause) {
    seen.add(c);
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    if (typeof (c as { message?: unknown }).message === 'string') message = (c as Error).message;
    for (const inner of (c as { errors?: unknown }).errors instanceof Array ? ((c as { errors: unknown[] }).errors) : []) {
      const ic = (inner as { code?: unknown })?.code;
      if (typeof ic === 'string') codes.push(ic);
    }
  }
  return { codes, message };
}

/**
 * The MtlsError for a request to `url` that failed before any HTTP answer, or undefined when
 * `e` is not such a failure (an MtlsError already, an abort, or not fetch's connection error).
 */
export function connectionError(e: unknown, url: string | URL): MtlsError | undefined {
  if (isMtlsError(e) || (e as { name?: unknown })?.name === 'AbortError') return undefined;
  if (!(e instanceof TypeError) || typeof (e as { cause?: unknown }).cause !== 'object') return undefined;
  const { codes, message } = causes((e as { cause: unknown }).cause);
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    origin = String(url);
  }
  const cert = codes.find((c) => c in SERVER_CERT);
  if (cert) {
    return new MtlsError('SERVER_CERT_INVALID', `cannot connect to ${origin}: ${SERVER_CERT[cert]} (${cert}${message ? `: ${message}` : ''})`, {
      cause: e,
      details: { cause: cert },
      hint:
        cert === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? "use the host name the server's certificate was issued for (see `mcp-mtls inspect` on it), or re-issue the server certificate with this name (--dns / --ip)"
          : cert === 'CERT_HAS_EXPIRED' || cert === 'CERT_NOT_YET_VALID'
            ? "the server's operator must renew its certificate (check this machine's clock too)"
            : "this bundle trusts another CA than the one that issued the server's certificate: check the URL, or make the bundle from the server's CA",
    });
  }
  const down = codes.find((c) => c in UNREACHABLE);
  const code = down ?? codes[0] ?? 'UNKNOWN';
  return new MtlsError('SERVER_UNREACHABLE', `cannot connect to ${origin}: ${down ? UNREACHABLE[down] : 'the connection failed'} (${code}${message ? `: ${message}` : ''})`, {
    cause: e,
    details: { cause: code },
    hint: down === 'ENOTFOUND' || down === 'EAI_AGAIN' ? 'check the host name in the server URL' : 'check that the server is running and that the URL (host and port) is right',
  });
}
