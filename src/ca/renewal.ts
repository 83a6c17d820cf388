/** Renewal by the operator (`mcp-mtls renew`): {@link renewCertificate}. */
import { MtlsError } from '../errors.js';
import { parseCertificate } from '../x509/certificate.js';
import type { KeyType } from '../x509/keys.js';
import type { Authority, Delivery, IssuedCertificate } from './authority.js';
import { foundIssued, revokeCertificate } from './revocation.js';

/** Options of {@link renewCertificate}. */
export interface RenewOptions {
  /** generate a new key (returned in `issued.key`) instead of certifying the old public key again */
  readonly rekey?: boolean;
  /** with rekey: the new key's type (default: the old one's) */
  readonly keyType?: KeyType;
  /** the new lifetime in ms; default config.yaml's default for the certificate's type (not the old lifetime) */
  readonly ttlMs?: number;
  /** revoke the old certificate as superseded once the new one is issued */
  readonly revokeOld?: boolean;
  /** where the new certificate goes (see output.ts) */
  readonly delivery?: Delivery;
}

/**
 * Renews the certificate with serial `serial` (lowercase hex): a new certificate with a new
 * serial for the same principal, teams and roles (or the same server names), taken from the
 * CA's own record of the old one, never from the requester. The public key is kept unless
 * `rekey` asks for a new one. The old certificate stays valid unless `revokeOld`.
 *
 * @returns the new certificate, the old serial, and whether the old one was revoked
 * @throws MtlsError `NOT_FOUND` for an unknown serial, `ALREADY_REVOKED` for a revoked
 *   certificate, `STORE_CORRUPT` when its file is missing, else as `Authority.issueClient`
 */
export async function renewCertificate(ca: Authority, serial: string, options: RenewOptions = {}): Promise<{ issued: IssuedCertificate; oldSerial: string; oldRevoked: boolean }> {
  const { issued: old, revoked } = foundIssued(await ca.store.lookup(serial), serial, ca.layout.dir);
  if (revoked) {
    throw new MtlsError('ALREADY_REVOKED', `certificate ${serial} was revoked (${revoked.reason}); a revoked certificate is not renewed`, {
      hint: 'issue a new certificate with `mcp-mtls issue` if the holder should still have access',
    });
  }
  const oldDer = await ca.store.readIssued(serial);
  if (!oldDer) throw new MtlsError('STORE_CORRUPT', `issued/${serial}.crt is missing`, { hint: 'restore the CA folder from backup' });
  const key = options.rekey ? { keyType: options.keyType ?? old.keyType } : { spki: parseCertificate(oldDer).spki };
  const common = { ...key, renewedFrom: serial, ...(options.ttlMs ? { ttlMs: options.ttlMs } : {}) };
  const issueOptions = options.delivery ? { delivery: options.delivery } : {};
  const issued =
    old.type === 'client'
      ? await ca.issueClient({ kind: old.kind as 'user' | 'service', id: old.id, teams: old.teams, roles: old.roles, ...(old.email ? { email: old.email } : {}), ...common }, issueOptions)
      : await ca.issueServer({ dns: old.dns ?? [], ips: old.ips ?? [], ...common }, issueOptions);
  if (options.revokeOld) await revokeCertificate(ca, serial, 'superseded');
  return { issued, oldSerial: serial, oldRevoked: options.revokeOld === true };
}
