/** Reading a client's certificate bundle: see {@link loadBundle}. */
import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MtlsError } from '../errors.js';
import { decodeIdentity } from '../identity/decode.js';
import type { Identity } from '../identity/identity.js';
import { decodeBasicConstraints, decodeExtKeyUsage, parseCertificate } from '../x509/certificate.js';
import { OID } from '../x509/oids.js';
import { readPkcs12 } from '../x509/pkcs12.js';
import { pemDecodeAll } from '../x509/pem.js';
import { parseBundleProfile } from './profile.js';
import { profileBundleFile, profileNameOfBundleFile, profileOfBundleFile, readProfileBundleText } from './profile-dir.js';

/** A client's certificate, key and CA, checked, as {@link loadBundle} returns it; what {@link createMtlsAgent} connects with. */
export interface Bundle {
  /** The certificates (DER): leaf first, then intermediates. */
  readonly chain: readonly Buffer[];
  readonly key: KeyObject;
  /** The trusted roots (DER). */
  readonly ca: readonly Buffer[];
  /** The MCP server's URL, from the bundle profile (other formats have none). */
  readonly url?: string;
  /** the CA's renewal endpoint, from the bundle profile */
  readonly renewUrl?: string;
  /** the identity the certificate carries, when it is an identity profile v1 client certificate */
  readonly identity?: Identity;
  /** When the leaf certificate expires. */
  readonly notAfter: Date;
  /** Things to tell the user, such as a certificate that expires within a day. */
  readonly warnings: readonly string[];
  /** Where the bundle was read from (absolute path) and in which format. */
  readonly source: { readonly file: string; readonly format: 'profile' | 'pem' | 'p12' };
}

/** Supplies a bundle's passphrase when one is needed (e.g. prompts for it, or reads a file). */
export type BundlePassphrase = () => string | Promise<string>;

/** Options of {@link loadBundle}. */
export interface LoadBundleOptions {
  /** Asked only for an encrypted key or a PKCS#12 file, at most once per load. */
  passphrase?: BundlePassphrase;
  /** The time validity is checked at; default now. */
  now?: Date;
}

/**
 * Which check of {@link checkBundle} failed, in `details.problem` of its `BUNDLE_INVALID`: the
 * renewer tells the CA's mistakes apart by it (never by the message).
 */
export type BundleProblem = 'key_mismatch' | 'untrusted_chain';

function invalid(file: string, message: string, cause?: unknown, problem?: BundleProblem): MtlsError {
  return new MtlsError('BUNDLE_INVALID', `${file}: ${message}`, { cause, hint: 'make the bundle again with `mcp-mtls bundle`', ...(problem ? { details: { problem } } : {}) });
}

/**
 * A warning when `leaf` is not a client certificate (a server or CA certificate: no clientAuth
 * in its extKeyUsage, or cA TRUE), saying what to do; undefined for a client certificate.
 * `label` names it (a file or a serial).
 */
export function clientCertificateWarning(leaf: Buffer, label: string): string | undefined {
  let cert;
  try {
    cert = parseCertificate(leaf);
  } catch {
    return undefined; // unreadable: the checks that follow say so
  }
  const eku = cert.extensions.get(OID.extKeyUsage);
  const purposes = eku ? decodeExtKeyUsage(eku.value) : undefined;
  const bc = cert.extensions.get(OID.basicConstraints);
  const what = bc && decodeBasicConstraints(bc.value).ca
    ? 'a CA certificate (basicConstraints cA TRUE)'
    : purposes && !purposes.includes(OID.clientAuth)
      ? purposes.includes(OID.serverAuth) ? 'a server certificate (extKeyUsage serverAuth, no clientAuth)' : 'not a client certificate (no clientAuth in its extKeyUsage)'
      : undefined;
  return what && `${label} is ${what}: mcp-mtls servers refuse it from a client (not_a_client_certificate); issue a client certificate (\`mcp-mtls issue client --user ID\`) and bundle that`;
}

/**
 * A warning when the file holding a private key can be read or written by other users (POSIX
 * mode & 0o077), with the chmod that fixes it; undefined otherwise (and on Windows, whose modes
 * say nothing). `what` names it in the sentence ("the private key FILE", "the private key in FILE").
 */
export function keyFileModeWarning(file: string, what = `the private key ${file}`): string | undefined {
  if (process.platform === 'win32') return undefined;
  let mode: number;
  try {
    mode = fs.statSync(file).mode & 0o777;
  } catch {
    return undefined;
  }
  if ((mode & 0o077) === 0) return undefined;
  return `${what} can be read by other users (mode 0${mode.toString(8)}): run \`chmod 600 ${file}\``;
}

async function needPassphrase(options: LoadBundleOptions, file: string): Promise<string> {
  if (!options.passphrase) {
    throw new MtlsError('BUNDLE_PASSWORD', `${file} is encrypted and no passphrase was given`, { hint: 'pass --passphrase-file FILE or set MCP_MTLS_BUNDLE_PASSPHRASE' });
  }
  return options.passphrase();
}

async function readKey(pem: string, file: string, options: LoadBundleOptions): Promise<KeyObject> {
  const encrypted = pem.includes('ENCRYPTED PRIVATE KEY');
  try {
    return encrypted ? crypto.createPrivateKey({ key: pem, format: 'pem', passphrase: await needPassphrase(options, file) }) : crypto.createPrivateKey(pem);
  } catch (e) {
    if (e instanceof MtlsError) throw e;
    if (encrypted) throw new MtlsError('BUNDLE_PASSWORD', `wrong passphrase for the key in ${file}`, { cause: e, hint: 'check --passphrase-file or MCP_MTLS_BUNDLE_PASSPHRASE' });
    throw invalid(file, 'the private key cannot be read', e);
  }
}

const certsOf = (pem: string, file: string, what: string): Buffer[] => {
  try {
    return pemDecodeAll(pem).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
  } catch (e) {
    throw invalid(file, `${what}: ${(e as Error).message}`, e);
  }
};

/**
 * Loads a client's certificate, key and CA and checks them before any connection is made: the
 * key must match the certificate, the chain must lead to the CA, and the certificate must be
 * inside its validity (expiry within a day, past two thirds of its lifetime, is a warning). A
 * certificate that is not a client certificate (a server or CA certificate) and a key file other
 * users can read (POSIX mode & 0o077: the PEM folder's key.pem, or the profile or PKCS#12 file)
 * are warnings too, in `warnings`.
 *
 * @param file - a PEM folder (cert.pem, key.pem, ca.pem), a PKCS#12 file (`.p12` or `.pfx`;
 *   self-signed certificates in it are the CA), or else a bundle profile (YAML)
 * @throws MtlsError `FILE_NOT_FOUND` (nothing at `file`), `BUNDLE_INVALID` (unreadable or
 *   inconsistent), `BUNDLE_PASSWORD` (encrypted and no passphrase given, or a wrong one),
 *   `CERT_EXPIRED`, `CERT_NOT_YET_VALID`
 *
 * `{ profile: NAME }` loads the bundle of a named profile (what `mcp-mtls login` and `enroll
 * --profile` write: `$XDG_CONFIG_HOME/mcp-mtls/profiles/NAME/bundle.yaml`, see profile-dir.ts);
 * an expired one says to sign in again.
 */
export async function loadBundle(file: string | { readonly profile: string; readonly env?: NodeJS.ProcessEnv }, options: LoadBundleOptions = {}): Promise<Bundle> {
  const profile = typeof file === 'string' ? undefined : file.profile;
  const resolved = typeof file === 'string' ? path.resolve(file) : profileBundleFile(file.profile, file.env);
  // a profile's bundle (also named by its path, as client-config --profile writes it) is read
  // without following a symlink, from files of this user only (profile-dir.ts)
  const asProfile = typeof file === 'string' ? profileNameOfBundleFile(resolved) : file.profile;
  const profileText = asProfile === undefined ? undefined : readProfileBundleText(asProfile, typeof file === 'string' ? undefined : file.env);
  let stat;
  try {
    if (asProfile !== undefined && profileText === undefined) throw new Error('no bundle.yaml');
    stat = fs.statSync(resolved);
  } catch (cause) {
    if (profile !== undefined) throw new MtlsError('FILE_NOT_FOUND', `there is no profile "${profile}" (no ${resolved})`, { cause, hint: `sign in: \`mcp-mtls login --ca https://CA --profile ${profile}\` (or \`mcp-mtls enroll ... --profile ${profile}\` with a token)` });
    throw new MtlsError('FILE_NOT_FOUND', `no bundle at ${resolved}`, { cause, hint: 'make one with `mcp-mtls bundle ... --out FILE`' });
  }
  try {
    return await loadBundleAt(resolved, stat, options, profileText);
  } catch (e) {
    const meta = (e as MtlsError)?.code === 'CERT_EXPIRED' ? profileOfBundleFile(resolved) : undefined;
    if (!meta) throw e;
    const again = meta.via === 'login' ? `run \`mcp-mtls login --profile ${meta.name}\`` : `enroll again with a new token: \`mcp-mtls enroll --ca ${meta.ca} --token-file FILE --profile ${meta.name}\``;
    throw new MtlsError('CERT_EXPIRED', `the certificate of profile "${meta.name}" has expired (${(e as MtlsError).message.replace(/^.* expired at /, 'at ')}): ${again}`, { cause: e, hint: meta.via === 'login' ? 'signing in again gets a new certificate; while a certificate is valid, it renews itself through the CA' : 'ask the operator for a new enrollment token (mcp-mtls token create)' });
  }
}

async function loadBundleAt(resolved: string, stat: fs.Stats, options: LoadBundleOptions, profileText?: string): Promise<Bundle> {
  let chain: Buffer[];
  let ca: Buffer[];
  let key: KeyObject;
  let url: string | undefined;
  let renewUrl: string | undefined;
  let format: Bundle['source']['format'];
  let keyFile: string | undefined; // the key's own file (a PEM folder's key.pem); else the bundle file holds it
  if (profileText === undefined && stat.isDirectory()) {
    format = 'pem';
    // a folder renewed with a new key holds generations (client/bundle-rewrite.ts): all three
    // files are read from the one `current` points to, never across a renewal
    let from = resolved;
    try {
      from = fs.realpathSync(path.join(resolved, 'current'));
    } catch {
      from = resolved;
    }
    const read = (name: string) => {
      try {
        return fs.readFileSync(path.join(from, name), 'utf8');
      } catch (cause) {
        throw invalid(resolved, `missing ${name} (a PEM bundle folder holds cert.pem, key.pem and ca.pem)`, cause);
      }
    };
    chain = certsOf(read('cert.pem'), resolved, 'cert.pem');
    ca = certsOf(read('ca.pem'), resolved, 'ca.pem');
    key = await readKey(read('key.pem'), resolved, options);
    keyFile = path.join(from, 'key.pem');
  } else if (profileText === undefined && /\.(p12|pfx)$/i.test(resolved)) {
    format = 'p12';
    const p12 = readPkcs12(fs.readFileSync(resolved), await needPassphrase(options, resolved));
    const selfSigned = (der: Buffer) => {
      const c = new crypto.X509Certificate(der);
      return c.issuer === c.subject && c.checkIssued(c);
    };
    chain = [p12.certificates[0] as Buffer, ...p12.certificates.slice(1).filter((c) => !selfSigned(c))];
    ca = p12.certificates.slice(1).filter(selfSigned);
    key = p12.privateKey;
  } else {
    format = 'profile';
    const profile = parseBundleProfile(profileText ?? fs.readFileSync(resolved, 'utf8'), resolved);
    chain = certsOf(profile.certificate, resolved, 'certificate');
    ca = certsOf(profile.ca, resolved, 'ca');
    key = await readKey(profile.key, resolved, options);
    url = profile.url;
    renewUrl = profile.renewUrl;
  }
  if (chain.length === 0) throw invalid(resolved, 'no certificate');
  if (ca.length === 0) throw invalid(resolved, 'no CA certificate to trust');
  const checked = checkBundle({ chain, ca, key, ...(url ? { url } : {}), ...(renewUrl ? { renewUrl } : {}), source: { file: resolved, format } }, options.now ?? new Date());
  const modeWarning = keyFile ? keyFileModeWarning(keyFile) : keyFileModeWarning(resolved, `the private key in ${resolved}`);
  return modeWarning ? { ...checked, warnings: [...checked.warnings, modeWarning] } : checked;
}

/** The checks loadBundle makes (key matches, chain leads to the CA, valid at `now`); also used on a renewed certificate before it is written. */
export function checkBundle(b: Omit<Bundle, 'notAfter' | 'warnings' | 'identity'>, now: Date): Bundle {
  const file = b.source.file;
  const leaf = new crypto.X509Certificate(b.chain[0] as Buffer);
  if (!leaf.checkPrivateKey(b.key)) throw invalid(file, 'the private key does not match the certificate', undefined, 'key_mismatch');
  // the chain must lead to one of the CA certificates
  let current = leaf;
  const intermediates = b.chain.slice(1).map((d) => new crypto.X509Certificate(d));
  const roots = b.ca.map((d) => new crypto.X509Certificate(d));
  for (let hops = 0; ; hops++) {
    const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (root) break;
    const next = intermediates.find((c) => current.checkIssued(c) && current.verify(c.publicKey));
    if (!next || hops > 4) throw invalid(file, 'the certificate does not chain to the bundle\'s CA', undefined, 'untrusted_chain');
    current = next;
  }
  const notAfter = new Date(leaf.validTo);
  const notBefore = new Date(leaf.validFrom);
  if (now > notAfter) {
    throw new MtlsError('CERT_EXPIRED', `the certificate in ${file} expired at ${notAfter.toISOString()}`, {
      hint: `renew it where the CA is (its folder ./pki, else add --dir): \`mcp-mtls renew ${leaf.serialNumber.toLowerCase()} --out ./certs\`, then make a new bundle with \`mcp-mtls bundle\``,
    });
  }
  if (now < notBefore) throw new MtlsError('CERT_NOT_YET_VALID', `the certificate in ${file} is valid only from ${notBefore.toISOString()}`, { hint: 'check the clock' });
  const warnings: string[] = [];
  const notClient = clientCertificateWarning(b.chain[0] as Buffer, `the certificate in ${file}`);
  if (notClient) warnings.push(notClient);
  // within a day, and (for short-lived certificates, 24h by default) past two thirds of the
  // lifetime, when renewal is due anyway: a fresh 24h certificate is not worth a warning
  const left = notAfter.getTime() - now.getTime();
  if (left < 86_400_000 && left < (notAfter.getTime() - notBefore.getTime()) / 3) {
    warnings.push(`the certificate expires within a day (${notAfter.toISOString()}): renew it soon`);
  }
  let identity: Identity | undefined;
  try {
    identity = decodeIdentity(b.chain[0] as Buffer);
  } catch {
    identity = undefined; // a server certificate or a foreign client certificate: no identity to show
  }
  return { ...b, notAfter, warnings, ...(identity ? { identity } : {}) };
}

