/**
 * What every forwarded-certificate header reader shares: the result type, and the checks that
 * turn bytes a proxy wrote into certificates, refusing a truncated, doubled or malformed value
 * with a reason a person can act on. The readers (one module per format) only unwrap their
 * format's encoding; whether a certificate is trusted is decided by the authenticator, exactly
 * as for a handshake (authenticate.ts).
 */
import { readWhole } from '../x509/der.js';
import { decodeBasicConstraints, parseCertificate } from '../x509/certificate.js';
import { OID } from '../x509/oids.js';

/** A forwarded client certificate: the leaf (DER), and the CA certificates a proxy sent with it (not used to build trust). */
export interface ForwardedCertificates {
  readonly leaf: Buffer;
  readonly chain: readonly Buffer[];
}

/** What a reader made of a request's headers: certificates, none at all, or why the value is unusable. */
export type ForwardedRead =
  | { readonly kind: 'certificate'; readonly certs: ForwardedCertificates }
  | { readonly kind: 'absent' }
  | { readonly kind: 'malformed'; readonly problem: string };

/** A header value as Node gives it per line (`req.headersDistinct`): one string per header line. */
export type HeaderLines = Readonly<Record<string, readonly string[] | undefined>>;

/** A reader's refusal, thrown inside a reader and turned into `{ kind: 'malformed' }` by {@link readWith}. */
export class ForwardedValueError extends Error {}

/** Runs a reader, turning its {@link ForwardedValueError} into a `malformed` result. */
export function readWith(read: () => ForwardedRead): ForwardedRead {
  try {
    return read();
  } catch (e) {
    if (e instanceof ForwardedValueError) return { kind: 'malformed', problem: e.message };
    throw e;
  }
}

/** The one value of a singleton header, or undefined when absent; two header lines are refused. */
export function singleLine(headers: HeaderLines, name: string): string | undefined {
  const lines = headers[name];
  if (!lines || lines.length === 0) return undefined;
  if (lines.length > 1) throw new ForwardedValueError(`${name} was sent ${lines.length} times: a proxy sends it once (a second line is a client's, passed through)`);
  return lines[0] as string;
}

/** Checks that `der` is one complete DER certificate (nothing cut off, nothing after it). */
export function wholeCertificate(der: Buffer, what: string): Buffer {
  if (der.length === 0) throw new ForwardedValueError(`${what} is empty`);
  try {
    readWhole(der, 0x30);
  } catch (e) {
    throw new ForwardedValueError(`${what} is not one complete DER certificate (${der.length} bytes; truncated or altered: ${(e as Error).message})`);
  }
  return der;
}

/** Decodes base64 (standard alphabet; `=` padding optional) strictly: any other character is refused. */
export function strictBase64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) throw new ForwardedValueError(`${what} is not base64`);
  return Buffer.from(text, 'base64');
}

/** Percent-decoding (RFC 3986), `+` kept as `+` (base64), refusing a broken escape. */
export function percentDecode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ForwardedValueError(`${what} is not validly URL-encoded`);
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/**
 * The certificates of a PEM text (after URL-decoding): blocks of CERTIFICATE only, nothing but
 * whitespace between them; a BEGIN without its END (a value cut short) is refused as truncated.
 */
export function pemCertificates(text: string, what: string): Buffer[] {
  const begins = text.split('-----BEGIN ').length - 1;
  const ends = text.split('-----END ').length - 1;
  if (begins === 0) throw new ForwardedValueError(`${what} holds no PEM certificate`);
  if (ends < begins) throw new ForwardedValueError(`${what} is truncated: a PEM block has no END line`);
  const out: Buffer[] = [];
  let last = 0;
  for (const m of text.matchAll(PEM_CERT)) {
    if (text.slice(last, m.index).trim() !== '') throw new ForwardedValueError(`${what} has text outside its PEM blocks`);
    last = (m.index as number) + m[0].length;
    const body = (m[1] as string).replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) throw new ForwardedValueError(`${what} has a PEM block with broken base64 (truncated or altered)`);
    out.push(wholeCertificate(Buffer.from(body, 'base64'), what));
  }
  if (text.slice(last).trim() !== '' || out.length !== begins) throw new ForwardedValueError(`${what} holds a PEM block that is not a CERTIFICATE, or text after its PEM blocks`);
  return out;
}

const isCa = (der: Buffer): boolean => {
  try {
    const bc = parseCertificate(der).extensions.get(OID.basicConstraints);
    return bc ? decodeBasicConstraints(bc.value).ca : false;
  } catch {
    return false;
  }
};

/**
 * At most this many CA certificates after the leaf. Only the one that issued the leaf is ever used
 * (authenticate.ts links it to a configured CA), a real chain has one or two (and the root), and
 * each costs a parse and a signature check with a key the sender chose, on every value not seen
 * before: three 3072-bit RSA CA certificates cost 4 to 9 ms here, a kept answer 10 µs.
 */
export const MAX_FORWARDED_CHAIN = 4;

/**
 * The leaf and chain from certificates in the order a proxy sends them (leaf first). With
 * `chainAllowed` false exactly one certificate is accepted; otherwise every certificate after
 * the first must be a CA certificate (at most {@link MAX_FORWARDED_CHAIN}): two client
 * certificates where one is meant are refused.
 */
export function leafAndChain(certs: readonly Buffer[], what: string, chainAllowed: boolean): ForwardedCertificates {
  const [leaf, ...chain] = certs;
  if (!leaf) throw new ForwardedValueError(`${what} holds no certificate`);
  if (!chainAllowed && chain.length > 0) throw new ForwardedValueError(`${what} holds ${certs.length} certificates where one is meant`);
  if (chain.length > MAX_FORWARDED_CHAIN) throw new ForwardedValueError(`${what} holds ${chain.length} CA certificates after the client certificate, more than the ${MAX_FORWARDED_CHAIN} accepted: send the client certificate with its intermediate CA`);
  if (chain.some((c) => !isCa(c))) throw new ForwardedValueError(`${what} holds more than one client certificate (after the first, only CA certificates may follow)`);
  return { leaf, chain };
}
