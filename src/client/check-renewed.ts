/**
 * What the CA returned is checked before it is used or written: a CA that answers with
 * someone else's certificate, another key, other claims or a shorter validity must not
 * replace working credentials.
 */
import type { KeyObject } from 'node:crypto';
import { checkBundle, type Bundle } from '../bundle/load.js';
import { isMtlsError, MtlsError } from '../errors.js';
import { checkClientCertificate, identityFromParsed } from '../identity/decode.js';
import { parseCertificate, type ParsedCertificate } from '../x509/certificate.js';
import { OID } from '../x509/oids.js';

/** What each refused check of checkBundle says about the CA's answer. */
const BUNDLE_PROBLEMS: Readonly<Record<string, string>> = {
  key_mismatch: 'its public key is not the key this client holds',
  untrusted_chain: "it does not chain to the bundle's CA",
};

/** The checks on what the CA returned: same holder, our key, chains to our CA, valid now, lasts longer. */
export function checkRenewed(current: Bundle, chain: readonly Buffer[], key: KeyObject, now: Date): Bundle {
  const refuse = (why: string, cause?: unknown) =>
    new MtlsError('CERT_INVALID', `the CA returned an unusable certificate: ${why}; it was not used nor written`, { ...(cause ? { cause } : {}), hint: 'the current certificate stays in use; report this to the CA operator' });
  if (chain.length === 0) throw refuse('no certificate');
  let next: Bundle;
  try {
    const { notAfter: _n, warnings: _w, identity: _i, ...rest } = current;
    next = checkBundle({ ...rest, chain, key }, now);
  } catch (e) {
    const problem = isMtlsError(e, 'BUNDLE_INVALID') ? e.details?.problem : undefined;
    // otherwise the reason as checkBundle gave it, without the file name it starts with
    throw refuse((typeof problem === 'string' ? BUNDLE_PROBLEMS[problem] : undefined) ?? (e as Error).message.replace(/^.*?: /, ''), e);
  }
  const oldLeaf = parseCertificate(current.chain[0] as Buffer);
  let newLeaf: ParsedCertificate;
  try {
    newLeaf = parseCertificate(chain[0] as Buffer);
  } catch (e) {
    throw refuse((e as Error).message, e);
  }
  const same = (oid: string) => {
    const a = oldLeaf.extensions.get(oid)?.value;
    const b = newLeaf.extensions.get(oid)?.value;
    return a === undefined ? b === undefined : b !== undefined && a.equals(b);
  };
  if (!same(OID.subjectAltName)) throw refuse('its subject alternative names differ from the current certificate\'s');
  if (!same(OID.subjectDirectoryAttributes)) throw refuse('its teams or roles differ from the current certificate\'s');
  if (current.identity) {
    try {
      checkClientCertificate(newLeaf);
      const id = identityFromParsed(newLeaf, { trustDomains: [current.identity.trustDomain] });
      if (id.principal !== current.identity.principal) throw new Error(`principal ${id.principal} is not ${current.identity.principal}`);
    } catch (e) {
      throw refuse((e as Error).message, e);
    }
  }
  if (newLeaf.serial === oldLeaf.serial) throw refuse('it is the current certificate again');
  if (next.notAfter.getTime() < current.notAfter.getTime()) throw refuse(`it ends ${next.notAfter.toISOString()}, before the current one`);
  return next;
}
