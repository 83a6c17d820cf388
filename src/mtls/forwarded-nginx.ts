/**
 * nginx and ingress-nginx: `$ssl_client_escaped_cert`, the client certificate as PEM,
 * URL-encoded (nginx 1.13.5+), in a header the operator names: ingress-nginx's default is
 * `ssl-client-cert` (`proxy_set_header ssl-client-cert $ssl_client_escaped_cert;`). Exactly
 * one certificate.
 */
import { ForwardedValueError, leafAndChain, pemCertificates, percentDecode, readWith, singleLine, type ForwardedRead, type HeaderLines } from './forwarded-common.js';

/** ingress-nginx's header name for the forwarded certificate. */
export const NGINX_DEFAULT_HEADER = 'ssl-client-cert';

/** Reads the URL-encoded PEM in `header` (lowercase). */
export function readNginx(headers: HeaderLines, header: string = NGINX_DEFAULT_HEADER): ForwardedRead {
  return readWith(() => {
    const value = singleLine(headers, header);
    // nginx sends an empty value when the client presented no certificate (ssl_verify_client optional)
    if (value === undefined || value === '') return { kind: 'absent' };
    if (value.includes('-----BEGIN') && /\n/.test(value)) throw new ForwardedValueError(`${header} holds PEM that is not URL-encoded: forward $ssl_client_escaped_cert, not $ssl_client_cert`);
    return { kind: 'certificate', certs: leafAndChain(pemCertificates(percentDecode(value, header), header), header, false) };
  });
}
