/**
 * Traefik's PassTLSClientCert middleware with `pem: true`: `X-Forwarded-Tls-Client-Cert`, the
 * certificates the client sent, each as the base64 body of its PEM block (BEGIN/END lines and
 * newlines removed), joined with `,`, leaf first. Traefik 2.x URL-escaped the value (`%2B`,
 * `%2F`, `%3D`, `%2C`); 3.x sends it as is: both are read.
 */
import { ForwardedValueError, leafAndChain, percentDecode, readWith, singleLine, strictBase64, wholeCertificate, type ForwardedRead, type HeaderLines } from './forwarded-common.js';

export const TRAEFIK_HEADER = 'x-forwarded-tls-client-cert';

/** Reads `X-Forwarded-Tls-Client-Cert`. */
export function readTraefik(headers: HeaderLines): ForwardedRead {
  return readWith(() => {
    const value = singleLine(headers, TRAEFIK_HEADER);
    if (value === undefined || value === '') return { kind: 'absent' };
    const text = value.includes('%') ? percentDecode(value, TRAEFIK_HEADER) : value;
    if (text.includes('-----')) throw new ForwardedValueError(`${TRAEFIK_HEADER} holds PEM delimiters: Traefik sends the base64 bodies only`);
    const certs = text.split(',').map((part, i) => wholeCertificate(strictBase64(part.trim(), `${TRAEFIK_HEADER} certificate ${i + 1}`), `${TRAEFIK_HEADER} certificate ${i + 1}`));
    return { kind: 'certificate', certs: leafAndChain(certs, TRAEFIK_HEADER, true) };
  });
}
