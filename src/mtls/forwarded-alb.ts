/**
 * AWS Application Load Balancer with mutual TLS. Verify mode: `X-Amzn-Mtls-Clientcert-Leaf`, the
 * leaf certificate as URL-encoded PEM with `+`, `=` and `/` left as they are. Passthrough mode:
 * `X-Amzn-Mtls-Clientcert`, the whole chain the client sent, URL-encoded PEM the same way, leaf
 * first (the ALB verified nothing; neither does that change anything here: every certificate is
 * verified by the server). A request carries one of the two, never both.
 */
import { ForwardedValueError, leafAndChain, pemCertificates, percentDecode, readWith, singleLine, type ForwardedRead, type HeaderLines } from './forwarded-common.js';

export const ALB_LEAF = 'x-amzn-mtls-clientcert-leaf';
export const ALB_CHAIN = 'x-amzn-mtls-clientcert';

/** The headers this format uses. */
export const ALB_HEADERS = [ALB_LEAF, ALB_CHAIN] as const;

/** Reads either header. */
export function readAlb(headers: HeaderLines): ForwardedRead {
  return readWith(() => {
    const leaf = singleLine(headers, ALB_LEAF);
    const chain = singleLine(headers, ALB_CHAIN);
    if (leaf !== undefined && chain !== undefined) throw new ForwardedValueError(`both ${ALB_LEAF} (verify mode) and ${ALB_CHAIN} (passthrough mode) were sent: an ALB sends one`);
    if (leaf !== undefined) return { kind: 'certificate', certs: leafAndChain(pemCertificates(percentDecode(leaf, ALB_LEAF), ALB_LEAF), ALB_LEAF, false) };
    if (chain !== undefined) return { kind: 'certificate', certs: leafAndChain(pemCertificates(percentDecode(chain, ALB_CHAIN), ALB_CHAIN), ALB_CHAIN, true) };
    return { kind: 'absent' };
  });
}
