/**
 * x-forwarded-client-cert in Envoy's format (identity.md "Forwarded identity"): written by the
 * gateway for its upstream ({@link formatXfcc}); read by the upstream helper
 * (trust-forwarded.ts) only from the gateway, and by servers behind Envoy from their trusted
 * proxies ({@link readXfcc}, trusted-proxies.ts).
 */
import { MtlsError } from '../errors.js';
import { pemEncode } from '../x509/pem.js';
import type { Identity } from '../identity/identity.js';
import { ForwardedValueError, leafAndChain, pemCertificates, percentDecode, readWith, singleLine, type ForwardedRead, type HeaderLines } from './forwarded-common.js';
import { sha256Hex } from '../util/sha256.js';

/** The header name, `x-forwarded-client-cert` (lowercase, as Node presents incoming headers). */
export const XFCC = 'x-forwarded-client-cert';

/**
 * The x-forwarded-client-cert value the gateway sends upstream for a client, in Envoy's
 * format: `Hash=<SHA-256 hex>;Cert="<url-encoded PEM>";URI=<principal>`.
 *
 * @param der - the client certificate (DER) that `identity` was decoded from
 * @throws MtlsError `CERT_INVALID` when `der` is not that certificate (its SHA-256 is not
 *   `identity.fingerprint`): the header never pairs one identity with another certificate
 */
export function formatXfcc(identity: Identity, der: Uint8Array): string {
  const hash = sha256Hex(der);
  if (hash !== identity.fingerprint) {
    throw new MtlsError('CERT_INVALID', `the certificate to forward (SHA-256 ${hash}) is not the one ${identity.principal} was authenticated with (${identity.fingerprint})`, { hint: 'forward the certificate of the verified handshake' });
  }
  return `Hash=${hash};Cert="${encodeURIComponent(pemEncode('CERTIFICATE', der))}";URI=${identity.principal}`;
}

/** The certificate DER of the first element of an XFCC header, or undefined when it has none. */
export function certFromXfcc(value: string): Buffer | undefined {
  return xfccFirstElement(value).cert;
}

/**
 * The `Cert=` (the first certificate of its PEM, DER) and `Hash=` (lowercase) of the first
 * element of an XFCC header, each undefined when absent or unreadable: the lenient reading
 * trust-forwarded.ts makes of the gateway's header (it checks Hash against Cert itself). The
 * same tokenizer as {@link readXfcc}; a value it cannot split into key=value pairs has neither.
 */
export function xfccFirstElement(value: string): { cert?: Buffer; hash?: string } {
  let pairs: ReadonlyMap<string, string>;
  try {
    pairs = xfccPairs(xfccElements(value)[0] as string);
  } catch (e) {
    if (e instanceof ForwardedValueError) return {};
    throw e;
  }
  const hash = pairs.get('hash');
  let cert: Buffer | undefined;
  try {
    const text = pairs.get('cert');
    if (text !== undefined) cert = xfccCertificates(text, 'Cert')[0];
  } catch (e) {
    if (!(e instanceof ForwardedValueError)) throw e;
  }
  return { ...(cert ? { cert } : {}), ...(hash ? { hash: hash.toLowerCase() } : {}) };
}

/** Splits on `sep` outside double quotes (a quoted value may hold `,`, `;`, `=` and `\"`). */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted && c === '\\' && i + 1 < text.length) {
      cur += c + (text[++i] as string);
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new ForwardedValueError(`${XFCC} has an unterminated quoted value (truncated?)`);
  out.push(cur);
  return out;
}

/** The elements of an XFCC value (one per proxy that appended), split on `,` outside quotes. */
const xfccElements = (value: string): string[] => splitOutsideQuotes(value, ',');

/** One element's key=value pairs: keys lowercase and each at most once, quoted values unquoted. */
function xfccPairs(element: string): ReadonlyMap<string, string> {
  const pairs = new Map<string, string>();
  for (const pair of splitOutsideQuotes(element, ';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ForwardedValueError(`${XFCC} has a part that is not key=value`);
    const key = pair.slice(0, eq).trim().toLowerCase();
    let v = pair.slice(eq + 1).trim();
    if (v.startsWith('"')) {
      if (!v.endsWith('"') || v.length < 2) throw new ForwardedValueError(`${XFCC} ${key} has a broken quoted value`);
      v = v.slice(1, -1).replace(/\\"/g, '"');
    }
    if (pairs.has(key)) throw new ForwardedValueError(`${XFCC} has ${key}= twice`);
    pairs.set(key, v);
  }
  return pairs;
}

/** The certificates of a `Cert=` or `Chain=` value (URL-encoded PEM). */
const xfccCertificates = (text: string, key: string): Buffer[] => pemCertificates(percentDecode(text, `${XFCC} ${key}`), `${XFCC} ${key}`);

/**
 * Reads x-forwarded-client-cert as a proxy (Envoy, Istio's gateway, this project's gateway) sends
 * it for the certificate of the TLS connection it ended: one element (Envoy's
 * `forward_client_cert_details: SANITIZE_SET`; several elements mean the proxy appended to a
 * header from downstream, refused), keys case-insensitive, each at most once, `Cert=` the
 * URL-encoded PEM (required: `set_current_client_cert_details: { cert: true }`), `Hash=` the
 * SHA-256 of its DER (checked when present), `Chain=` the URL-encoded PEM chain (its first
 * certificate must be `Cert`).
 */
export function readXfcc(headers: HeaderLines): ForwardedRead {
  return readWith(() => {
    const value = singleLine(headers, XFCC);
    if (value === undefined) return { kind: 'absent' };
    const elements = xfccElements(value);
    if (elements.length > 1) throw new ForwardedValueError(`${XFCC} has ${elements.length} elements: the proxy appended to a header from downstream; configure it to replace the header (Envoy: forward_client_cert_details: SANITIZE_SET)`);
    const pairs = xfccPairs(elements[0] as string);
    const cert = pairs.get('cert');
    if (cert === undefined) throw new ForwardedValueError(`${XFCC} has no Cert= (Envoy: set_current_client_cert_details: { cert: true })`);
    const { leaf } = leafAndChain(xfccCertificates(cert, 'Cert'), `${XFCC} Cert`, false);
    const hash = pairs.get('hash');
    if (hash !== undefined) {
      const actual = sha256Hex(leaf);
      if (hash.toLowerCase() !== actual) throw new ForwardedValueError(`${XFCC} Hash ${hash} is not the SHA-256 of its Cert (${actual})`);
    }
    const chainText = pairs.get('chain');
    let chain: Buffer[] = [];
    if (chainText !== undefined) {
      const all = xfccCertificates(chainText, 'Chain');
      if (!all[0]?.equals(leaf)) throw new ForwardedValueError(`${XFCC} Chain does not start with its Cert`);
      chain = all.slice(1);
    }
    return { kind: 'certificate', certs: leafAndChain([leaf, ...chain], `${XFCC} Chain`, true) };
  });
}
