/**
 * RFC 9440 `Client-Cert` and `Client-Cert-Chain`: the DER of the client certificate as a
 * Structured Field Byte Sequence (RFC 8941 3.3.5: `:` base64 `:`), and the chain as a List of
 * Byte Sequences. Both are singleton fields: one header line each. HAProxy writes it with
 * `http-request set-header Client-Cert :%[ssl_c_der,base64]:`.
 */
import { ForwardedValueError, leafAndChain, readWith, singleLine, strictBase64, wholeCertificate, type ForwardedRead, type HeaderLines } from './forwarded-common.js';

export const CLIENT_CERT = 'client-cert';
export const CLIENT_CERT_CHAIN = 'client-cert-chain';

/** The headers this format uses. */
export const RFC9440_HEADERS = [CLIENT_CERT, CLIENT_CERT_CHAIN] as const;

const OWS = /^[ \t]+|[ \t]+$/g;

function byteSequence(item: string, what: string): Buffer {
  const m = /^:([^:]*):$/.exec(item.replace(OWS, ''));
  if (!m) throw new ForwardedValueError(`${what} is not a structured-field byte sequence (:base64:)${item.includes(';') ? ' (parameters are not accepted)' : ''}`);
  return wholeCertificate(strictBase64(m[1] as string, what), what);
}

/** Reads `Client-Cert` (and `Client-Cert-Chain`, which needs `Client-Cert`). */
export function readRfc9440(headers: HeaderLines): ForwardedRead {
  return readWith(() => {
    const cert = singleLine(headers, CLIENT_CERT);
    const chain = singleLine(headers, CLIENT_CERT_CHAIN);
    if (cert === undefined) {
      if (chain !== undefined) throw new ForwardedValueError(`${CLIENT_CERT_CHAIN} was sent without ${CLIENT_CERT}`);
      return { kind: 'absent' };
    }
    if (/,/.test(cert)) throw new ForwardedValueError(`${CLIENT_CERT} holds a list: it carries exactly one certificate`);
    const leaf = byteSequence(cert, CLIENT_CERT);
    const rest = chain === undefined || chain.trim() === '' ? [] : chain.split(',').map((item, i) => byteSequence(item, `${CLIENT_CERT_CHAIN} item ${i + 1}`));
    return { kind: 'certificate', certs: leafAndChain([leaf, ...rest], CLIENT_CERT_CHAIN, true) };
  });
}
