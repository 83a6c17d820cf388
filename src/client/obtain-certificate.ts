/**
 * A certificate from the CA for a key made here: the key is generated in this process, a CSR
 * proves possession, and only the CSR and a credential (an enrollment token for `/sign`, an ID
 * token for `/login/sign`) are sent, over TLS verified against the pinned root (ca-pin.ts). The
 * answer (leaf then intermediate) is checked as loadBundle checks a bundle (the key matches, the
 * chain leads to the pinned root, valid now) before anything is written.
 */
import crypto from 'node:crypto';
import type { Agent } from 'undici';
import { checkBundle, type Bundle } from '../bundle/load.js';
import { formatBundleProfile, BUNDLE_KIND } from '../bundle/profile.js';
import { MtlsError } from '../errors.js';
import { createCsr } from '../x509/csr.js';
import { generateKey, type KeyType } from '../x509/keys.js';
import { pemEncode, readCertificates } from '../x509/pem.js';
import { caErrorOf, caRequest } from './ca-pin.js';

export interface ObtainOptions {
  readonly agent: Agent;
  /** the CA's signing endpoint (`/sign` or `/login/sign`) */
  readonly url: URL;
  /** `Authorization: Bearer ...` (never logged, never in an error) */
  readonly bearer: string;
  readonly root: Buffer;
  /** extra headers (`Mcp-Mtls-Nonce`) */
  readonly headers?: Readonly<Record<string, string>>;
  readonly keyType?: KeyType;
  /** what the credential is, for errors ("enrollment token", "sign-in") */
  readonly what: string;
}

/** A certificate and its key, checked; `bundle.source.file` is a placeholder until written. */
export interface Obtained {
  readonly bundle: Bundle;
  readonly chain: Buffer[];
  readonly key: crypto.KeyObject;
}

export async function obtainCertificate(o: ObtainOptions): Promise<Obtained> {
  const generated = generateKey(o.keyType ?? 'ec-p256');
  // the CSR's subject is ignored by the CA (the claims come from the token); a fixed name says what made it
  const csr = pemEncode('CERTIFICATE REQUEST', createCsr(generated, 'mcp-mtls'));
  const answer = await caRequest(o.agent, o.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${o.bearer}`, 'content-type': 'application/pkcs10', accept: 'application/pem-certificate-chain, application/json', ...o.headers },
    body: csr,
  });
  if (answer.status !== 200) {
    const e = caErrorOf(answer);
    throw new MtlsError('TOKEN_REFUSED', `the CA refused the ${o.what} (${answer.status}${e.code ? ` ${e.code}` : ''}): ${e.message}`, { ...(e.hint ? { hint: e.hint } : {}), details: { status: answer.status, ...(e.code ? { caCode: e.code } : {}) } });
  }
  if (!answer.type.startsWith('application/pem-certificate-chain')) {
    throw new MtlsError('CERT_INVALID', `${o.url.href} answered ${answer.type || 'no content type'}, not a certificate chain`, { hint: 'check --ca: it is the URL of `mcp-mtls ca serve`' });
  }
  let chain: Buffer[];
  try {
    chain = readCertificates(answer.body);
  } catch (cause) {
    throw new MtlsError('CERT_INVALID', `the CA's answer holds no readable certificate chain: ${(cause as Error).message}`, { cause });
  }
  const key = crypto.createPrivateKey({ key: Buffer.from(generated.pkcs8), format: 'der', type: 'pkcs8' });
  let bundle: Bundle;
  try {
    bundle = checkBundle({ chain, key, ca: [o.root], source: { file: '(the CA answer)', format: 'profile' } }, new Date());
  } catch (e) {
    throw new MtlsError('CERT_INVALID', `the CA answered a certificate that cannot be used: ${(e as Error).message}`, { cause: e, hint: 'nothing was written; tell the CA operator' });
  }
  return { bundle, chain, key };
}

/** The bundle profile text for an obtained certificate (docs/bundle.md), with the renewal URL and the pinned root. */
export function bundleText(o: Obtained, root: Buffer, extra: { renewUrl?: string; url?: string }): string {
  return formatBundleProfile({
    kind: BUNDLE_KIND,
    version: 1,
    ...(extra.url ? { url: extra.url } : {}),
    ...(extra.renewUrl ? { renewUrl: extra.renewUrl } : {}),
    ...(o.bundle.identity ? { principal: o.bundle.identity.principal } : {}),
    notAfter: o.bundle.notAfter.toISOString(),
    certificate: o.chain.map((d) => pemEncode('CERTIFICATE', d)).join(''),
    key: o.key.export({ format: 'pem', type: 'pkcs8' }) as string,
    ca: pemEncode('CERTIFICATE', root),
  });
}
