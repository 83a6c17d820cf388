/** `ca init`: creating a CA folder ({@link initCa}). */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MtlsError } from '../errors.js';
import { assertTrustDomain, isValidDnsName } from '../identity/names.js';
import { randomSerial, signCertificate } from '../x509/certificate.js';
import { createSigner, generateKey, keyIdentifier, privateKeyPem, type KeyType } from '../x509/keys.js';
import { pemEncode } from '../x509/pem.js';
import { actor, BACKDATE_MS } from './authority.js';
import { caConfigYaml, type CaConfig } from './config.js';
import { DEFAULT_MAX_TTL } from './limits.js';
import { buildCrl, DEFAULT_CRL_TTL } from './crl-signing.js';
import { parseDuration } from '../util/duration.js';
import { caLayout, MODES } from './layout.js';
import { intermediateFields, rootFields } from './profiles.js';
import { appendLines, fsyncDir, writeFileAtomic } from '../util/atomic-file.js';
import { sha256Hex } from '../util/sha256.js';

/** Options of {@link initCa}. */
export interface InitOptions {
  /** the CA folder; created when missing, refused when it holds any CA file (`CA_EXISTS`) */
  readonly dir: string;
  /** the trust domain of every principal the CA will issue, e.g. `example.test` (else `BAD_TRUST_DOMAIN`) */
  readonly trustDomain: string;
  /** display name, 1 to 50 characters; the CNs are it plus " Root" / " Intermediate". Default `<trustDomain> MCP CA` */
  readonly name?: string;
  /** an O attribute (1 to 64 characters) in the CA certificates and every certificate issued */
  readonly organization?: string;
  /** the CA keys' type, and the default for keys the CA generates; default `ec-p256` */
  readonly keyType?: KeyType;
  /** the root's lifetime in ms; at least `intermediateTtlMs` (else `BAD_DURATION`) */
  readonly rootTtlMs: number;
  /** the intermediate's lifetime in ms; no certificate it issues can outlive it */
  readonly intermediateTtlMs: number;
  /** encrypts both CA keys (PKCS#8, PBES2 AES-256-CBC) */
  readonly passphrase?: string;
  /** opt-in name constraints on the intermediate: the trust domain plus these DNS names */
  readonly nameConstraints?: { readonly dns: readonly string[] };
  /** an http(s) URL in plain ASCII, put into issued certificates as their CRL distribution point */
  readonly crlUrl?: string;
  /** a database store URL recorded in config.yaml (`store:`); the caller moves the initial state there */
  readonly store?: string;
  /** the creation time; default now. For tests */
  readonly now?: Date;
}

/** What {@link initCa} created. */
export interface InitResult {
  /** config.yaml as written (defaults: clients 24h, servers 90d, CRLs 7d; limits: clients 30d, servers 397d) */
  readonly config: CaConfig;
  /** the root certificate, DER */
  readonly rootDer: Buffer;
  /** the intermediate certificate, DER */
  readonly intermediateDer: Buffer;
  /** absolute paths of the files written */
  readonly files: { readonly config: string; readonly rootCert: string; readonly intermediateCert: string; readonly rootKey: string; readonly intermediateKey: string };
}

/**
 * Refuses (`OUTPUT_EXISTS`) a CA folder path that is a file, or that has a file where a parent
 * folder should be: mkdir would fail there with EEXIST / ENOTDIR.
 */
function assertFolderOrMissing(dir: string): void {
  const statOrNothing = (p: string): fs.Stats | undefined => {
    try {
      return fs.statSync(p, { throwIfNoEntry: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined; // a parent is a file: found further up
      throw e;
    }
  };
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    const stat = statOrNothing(p);
    if (stat && !stat.isDirectory()) {
      throw new MtlsError('OUTPUT_EXISTS', p === path.resolve(dir) ? `cannot create the CA folder ${dir}: it is a file, not a folder` : `cannot create the CA folder ${dir}: ${p} is a file, not a folder`, {
        hint: 'choose another --dir (a folder that does not exist yet, or an empty one)',
      });
    }
    if (stat || p === path.dirname(p)) return;
  }
}

/**
 * Creates a CA in `options.dir` (`mcp-mtls ca init`): a root and an issuing intermediate
 * (identity.md "CA hierarchy"), their first CRLs, config.yaml and an empty folder store.
 * Synchronous. Everything is checked before a key is generated, so a refused init writes
 * nothing. Files are written into a staging folder inside the CA folder and moved into place one
 * by one, config.yaml last: a folder without config.yaml is not a CA, and an interrupted init
 * removes what it moved.
 *
 * @throws MtlsError `CA_EXISTS` when the folder holds any CA file (also when a concurrent init
 *   won), `BAD_TRUST_DOMAIN`, `BAD_ARGUMENT` (name, organization, permitted DNS names, CRL URL,
 *   a lifetime past the year 9999), `BAD_DURATION` (intermediate outliving the root), `OUTPUT_EXISTS`
 *   (the folder path is a file, or has a file where a parent folder should be), `IO_ERROR`
 */
export function initCa(options: InitOptions): InitResult {
  const trustDomain = assertTrustDomain(options.trustDomain);
  const layout = caLayout(options.dir);
  assertFolderOrMissing(layout.dir);
  const existing = [layout.config, layout.rootCert, layout.intermediateCert, layout.privateDir, layout.index, layout.crlDir].filter((f) => fs.existsSync(f));
  if (existing.length > 0) {
    throw new MtlsError('CA_EXISTS', `${layout.dir} already holds a CA (${existing.map((f) => path.basename(f)).join(', ')})`, {
      hint: fs.existsSync(layout.config) ? 'use it as it is, or choose another --dir' : 'a previous init was interrupted: remove those files and run init again',
    });
  }
  const name = options.name ?? `${trustDomain} MCP CA`;
  validateInitOptions(name, options);
  if (options.rootTtlMs < options.intermediateTtlMs) {
    throw new MtlsError('BAD_DURATION', 'the intermediate would outlive the root', { hint: 'make --root-ttl longer than --intermediate-ttl' });
  }
  const keyType = options.keyType ?? 'ec-p256';
  const now = (options.now ?? new Date()).getTime();
  const notBefore = new Date(Math.floor((now - BACKDATE_MS) / 1000) * 1000);
  const second = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

  const rootKey = generateKey(keyType);
  const rootSigner = createSigner(crypto.createPrivateKey({ key: rootKey.pkcs8, format: 'der', type: 'pkcs8' }));
  const root = rootFields({
    serial: randomSerial(),
    notBefore,
    notAfter: second(now + options.rootTtlMs),
    spki: rootKey.spki,
    name: `${name} Root`,
    ...(options.organization ? { organization: options.organization } : {}),
  });
  const rootDer = signCertificate(root, rootSigner);

  const interKey = generateKey(keyType);
  const interFields = intermediateFields(
      { subjectName: root.subjectName, keyId: keyIdentifier(rootKey.spki), notAfter: root.notAfter },
      {
        serial: randomSerial(),
        notBefore,
        notAfter: second(now + options.intermediateTtlMs),
        spki: interKey.spki,
        name: `${name} Intermediate`,
        ...(options.organization ? { organization: options.organization } : {}),
        ...(options.nameConstraints ? { permitted: { trustDomain, dns: options.nameConstraints.dns } } : {}),
      },
  );
  const intermediateDer = signCertificate(interFields, rootSigner);

  // First CRLs: the root's lasts until the intermediate expires (the root key goes offline),
  // the intermediate's for the usual CRL validity. Node needs both (gotchas.md).
  const interSigner = createSigner(crypto.createPrivateKey({ key: interKey.pkcs8, format: 'der', type: 'pkcs8' }));
  const crlNow = new Date(now);
  const rootCrl = buildCrl({ subjectName: root.subjectName, keyId: keyIdentifier(rootKey.spki) }, rootSigner, { number: 1n, now: crlNow, nextUpdate: interFields.notAfter, entries: [] });
  const interCrl = buildCrl({ subjectName: interFields.subjectName, keyId: keyIdentifier(interKey.spki) }, interSigner, {
    number: 1n,
    now: crlNow,
    nextUpdate: second(Math.min(now + parseDuration(DEFAULT_CRL_TTL), interFields.notAfter.getTime())),
    entries: [],
  });

  const config: CaConfig = {
    version: 1,
    profile: 1,
    trustDomain,
    name,
    ...(options.organization ? { organization: options.organization } : {}),
    keyType,
    encryptedKeys: options.passphrase !== undefined,
    nameConstraints: { enabled: options.nameConstraints !== undefined, dns: [...(options.nameConstraints?.dns ?? [])] },
    ...(options.crlUrl ? { crlUrl: options.crlUrl } : {}),
    defaults: { clientTtl: '24h', serverTtl: '90d', crlTtl: DEFAULT_CRL_TTL },
    ...(options.store ? { store: options.store } : {}),
    // written out so that operators see (and can lower) them; absent, the same defaults apply
    limits: { client: { maxTtl: DEFAULT_MAX_TTL.client }, server: { maxTtl: DEFAULT_MAX_TTL.server } },
  };

  fs.mkdirSync(layout.dir, { recursive: true, mode: 0o755 });
  // claim the folder: of concurrent inits, exactly one creates private/ and goes on
  try {
    fs.mkdirSync(layout.privateDir, { mode: MODES.privateDir });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new MtlsError('CA_EXISTS', `${layout.dir} already holds a CA (private)`, { hint: 'use it as it is, or choose another --dir' });
    throw new MtlsError('IO_ERROR', `cannot create ${layout.privateDir}: ${(e as Error).message}`, { cause: e, hint: 'check that the folder is writable' });
  }
  let done = false;
  const staging = fs.mkdtempSync(path.join(layout.dir, '.init-'));
  try {
    fs.chmodSync(staging, MODES.privateDir);
    const stage = (name: string, data: string, mode: number) => {
      const file = path.join(staging, name);
      writeFileAtomic(file, data, { mode });
      return file;
    };
    const staged = {
      rootKey: stage('root.key', privateKeyPem(rootKey.pkcs8, options.passphrase), MODES.caKey),
      intermediateKey: stage('intermediate.key', privateKeyPem(interKey.pkcs8, options.passphrase), MODES.caKey),
      rootCert: stage('root.crt', pemEncode('CERTIFICATE', rootDer), MODES.cert),
      intermediateCert: stage('intermediate.crt', pemEncode('CERTIFICATE', intermediateDer), MODES.cert),
      rootCrl: stage('root.crl', pemEncode('X509 CRL', rootCrl), MODES.cert),
      intermediateCrl: stage('intermediate.crl', pemEncode('X509 CRL', interCrl), MODES.cert),
      config: stage('config.yaml', caConfigYaml(config), MODES.cert),
    };
    fs.chmodSync(layout.privateDir, MODES.privateDir);
    fs.mkdirSync(layout.issuedDir, { recursive: true, mode: 0o755 });
    fs.renameSync(staged.rootKey, layout.rootKey);
    fs.renameSync(staged.intermediateKey, layout.intermediateKey);
    fsyncDir(layout.privateDir);
    fs.renameSync(staged.rootCert, layout.rootCert);
    fs.renameSync(staged.intermediateCert, layout.intermediateCert);
    fs.mkdirSync(layout.crlDir, { recursive: true, mode: 0o755 });
    fs.renameSync(staged.rootCrl, layout.crl('root'));
    fs.renameSync(staged.intermediateCrl, layout.crl('intermediate'));
    appendLines(layout.audit, [JSON.stringify({ time: new Date(now).toISOString(), event: 'ca.init', actor: actor(), trustDomain, keyType, root: fingerprint(rootDer), intermediate: fingerprint(intermediateDer) })], MODES.record);
    fs.renameSync(staged.config, layout.config); // last: from here on, this folder is a CA
    fsyncDir(layout.dir);
    done = true;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
    if (!done) for (const f of [layout.rootCert, layout.intermediateCert, layout.crlDir, layout.audit, layout.privateDir]) fs.rmSync(f, { recursive: true, force: true });
  }
  return {
    config,
    rootDer,
    intermediateDer,
    files: { config: layout.config, rootCert: layout.rootCert, intermediateCert: layout.intermediateCert, rootKey: layout.rootKey, intermediateKey: layout.intermediateKey },
  };
}

/** Everything `init` would write, checked before a key is generated: a refused init writes nothing. */
function validateInitOptions(name: string, o: InitOptions): void {
  const bad = (message: string, hint: string) => new MtlsError('BAD_ARGUMENT', message, { hint });
  // " Intermediate" is appended to the CN, which RFC 5280 caps at 64 characters
  if (name.length < 1 || name.length > 50) throw bad(`--name "${name}" must have 1 to 50 characters`, 'choose a shorter display name');
  if (o.organization !== undefined && (o.organization.length < 1 || o.organization.length > 64)) throw bad('--org must have 1 to 64 characters', 'choose a shorter organisation name');
  for (const d of o.nameConstraints?.dns ?? []) {
    if (!isValidDnsName(d) || d.startsWith('*.')) throw bad(`--permit-dns "${d}" is not a DNS name`, 'give a domain such as acme.test');
  }
  if (o.crlUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(o.crlUrl);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !/^[\x21-\x7e]+$/.test(o.crlUrl)) {
      throw bad(`--crl-url "${o.crlUrl}" is not an http(s) URL in plain ASCII`, 'e.g. http://crl.acme.test/intermediate.crl (CRLs are signed, so plain http is usual)');
    }
  }
  const now = (o.now ?? new Date()).getTime();
  for (const [flag, ms] of [['--root-ttl', o.rootTtlMs], ['--intermediate-ttl', o.intermediateTtlMs]] as const) {
    if (new Date(now + ms).getUTCFullYear() > 9999) throw bad(`${flag} reaches past the year 9999`, 'choose a shorter lifetime (10y is the default for the root)');
  }
}

const fingerprint = sha256Hex;
