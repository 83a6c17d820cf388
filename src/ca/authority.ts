/**
 * The certificate authority: opens a CA folder and issues certificates in stages
 * (validate -> build from the profile -> enforce -> sign -> store), as smallstep does.
 * Every stage before signing can refuse; a refusal is audited and writes nothing else.
 */
import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import { MtlsError, isMtlsError } from '../errors.js';
import { decodeIdentity } from '../identity/decode.js';
import { normalizeClaims, type NormalizedClaims } from '../identity/encode.js';
import type { ClientClaims } from '../identity/identity.js';
import { parseCertificate, randomSerial, signCertificate, type ParsedCertificate } from '../x509/certificate.js';
import { createSigner, generateKey, keyIdentifier, keyTypeOfSpki, type GeneratedKey, type KeyType, type Signer } from '../x509/keys.js';
import { decodeKeyIdentifier } from '../x509/certificate.js';
import { verifyCsr } from '../x509/csr.js';
import { OID } from '../x509/oids.js';
import { pemEncode, readCertificates } from '../x509/pem.js';
import { loadCaConfig, type CaConfig } from './config.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import { caLayout, type CaLayout } from './layout.js';
import { grantKeys } from './ca-keys.js';
import { canonicalDnsName, checkClientClaims, checkServerNames, checkTtlLimit } from './limits.js';
import { enforceProfile } from './profile-check.js';
import { clientFields, serverFields, type IssuerInfo } from './profiles.js';
import { openStore } from './store/open.js';
import type { AuditEvent, IssuedRecord, Store, StoreTransaction } from './store/store.js';
import { sha256Hex } from '../util/sha256.js';

/** Supplies the passphrase of an encrypted CA key; asked only when that key is needed. */
export type PassphraseProvider = (keyName: 'root' | 'intermediate') => string | Promise<string>;

/** Options of {@link Authority.open}: how to unlock the CA keys, where the CA's state lives, the clock. */
export interface AuthorityOptions {
  /** asked for the passphrase of an encrypted CA key the first time that key is needed; without it an encrypted key throws `CA_KEY_LOCKED` */
  passphrase?: PassphraseProvider;
  /** the clock (validity periods, records, audit times, CRLs); default the system clock. For tests */
  now?: () => Date;
  /** a store to use as it is (e.g. a `MemoryStore`), instead of opening one; `storeUrl` and config.yaml's `store:` are then ignored */
  store?: Store;
  /** without `store`: where the state lives (a postgres:// URL, never with a password), over config.yaml's `store:`; default the CA folder */
  storeUrl?: string;
  /** the database password, when the store is a database (PGPASSWORD, ~/.pgpass: the CLI reads them) */
  storePassword?: () => Promise<string | undefined>;
}

/** Clock skew allowance: notBefore is backdated by this much (identity.md). */
export const BACKDATE_MS = 60_000;
/** How far in the past an explicit `notBefore` may be (backdating a certificate is limited to this). */
export const MAX_BACKDATE_MS = 3_600_000;

/**
 * An explicit validity period of one issuance, instead of (or with) a lifetime: `notBefore`
 * (default: now, less the {@link BACKDATE_MS} clock-skew allowance) at most {@link MAX_BACKDATE_MS}
 * in the past (else `BAD_ARGUMENT`), not before the intermediate CA's; `notAfter` (default:
 * `notBefore` plus the lifetime) in the future, after `notBefore` (else `BAD_ARGUMENT`), not after
 * the intermediate CA's (`TTL_EXCEEDS_ISSUER`). The period is checked against the type's
 * `limits.<type>.maxTtl` (`LIMIT_EXCEEDED`). `notAfter` and `ttlMs` together are `BAD_ARGUMENT`.
 * Times are kept to the second (milliseconds dropped).
 */
export interface ValidityRequest {
  /** the first moment the certificate is valid */
  readonly notBefore?: Date;
  /** the last moment the certificate is valid */
  readonly notAfter?: Date;
}

/**
 * What to put into a client certificate ({@link Authority.issueClient}): the claims of
 * `ClientClaims` (kind, id, teams, roles, email) without the trust domain, which is always the
 * CA's own. Claims are normalised and checked against the identity profile; a bad one throws
 * `BAD_NAME` (or `PROFILE_VIOLATION`: under name constraints an id cannot contain a dot). Teams
 * and roles outside config.yaml's `limits.client.teams` / `limits.client.roles` throw `LIMIT_EXCEEDED`.
 */
export interface ClientRequest extends Omit<ClientClaims, 'trustDomain'>, ValidityRequest {
  /** lifetime in ms; default config.yaml's `defaults.clientTtl` (24h). At most `limits.client.maxTtl` (default 30d; else `LIMIT_EXCEEDED`); must not end after the intermediate (`TTL_EXCEEDS_ISSUER`) */
  readonly ttlMs?: number;
  /** key type to generate; default config.yaml's `keyType`. Ignored when `spki` is given */
  readonly keyType?: KeyType;
  /**
   * a public key (SubjectPublicKeyInfo, DER) from a verified CSR (or the certificate being
   * renewed): the CA generates no key. Proof of possession is the caller's job here
   */
  readonly spki?: Uint8Array;
  /** serial of the certificate this one renews (lowercase hex); recorded in the index, not checked */
  readonly renewedFrom?: string;
  /**
   * a delegated certificate (with `actingFor`): the serial of the delegator's certificate that
   * signed the grant; recorded in the index, and revoking that serial revokes this one (revocation.ts)
   */
  readonly delegatedFrom?: string;
  /** a delegated certificate: the serial of the actor's own certificate it was exchanged with; revoking that serial revokes this one */
  readonly actorSerial?: string;
  /**
   * where `spki` came from, for the index's `keySource`: a CSR (a new key) or the renewed
   * certificate (the same key). Default: 'reused' with `renewedFrom`, else 'csr'
   */
  readonly spkiFrom?: 'csr' | 'reused';
}

/**
 * What to put into a server certificate ({@link Authority.issueServer}): at least one DNS name
 * or IP address (else `BAD_ARGUMENT`); under name constraints at least one DNS name, all within
 * the permitted ones (else `PROFILE_VIOLATION`), and all within config.yaml's `limits.server.dns`
 * and `limits.server.ips` when set (else `LIMIT_EXCEEDED`). DNS names are checked and written in
 * canonical form (lowercase ASCII, IDNA, no trailing dot). Duplicates are dropped.
 */
export interface ServerRequest extends ValidityRequest {
  /** DNS names, e.g. `mcp.example.com` (an invalid one throws `BAD_NAME`); `Bücher.test.` is certified as `xn--bcher-kva.test` */
  readonly dns: readonly string[];
  /** IPv4 or IPv6 addresses, without a zone (`%eth0`) */
  readonly ips: readonly string[];
  /** lifetime in ms; default config.yaml's `defaults.serverTtl` (90d). At most `limits.server.maxTtl` (default 397d; else `LIMIT_EXCEEDED`); must not end after the intermediate (`TTL_EXCEEDS_ISSUER`) */
  readonly ttlMs?: number;
  /** key type to generate; default config.yaml's `keyType`. Ignored when `spki` is given */
  readonly keyType?: KeyType;
  /** a public key (SubjectPublicKeyInfo, DER) to certify: the CA generates no key */
  readonly spki?: Uint8Array;
  /** serial of the certificate this one renews (lowercase hex); recorded in the index, not checked */
  readonly renewedFrom?: string;
}

/** Where issued certificates go, completed inside the store's transaction (see output.ts). */
export interface Delivery {
  /** checks and stages the outputs; throwing refuses the issuance before anything is recorded */
  stage(issued: readonly IssuedCertificate[]): { commit(): void; abort(): void };
}

/** Options of one issuance (`issueClient`, `issueClients`, `issueClientFromCsr`, `issueServer`). */
export interface IssueOptions {
  /**
   * called as each certificate is signed, with how many are signed and the total; before the
   * commit, so a later refusal still records nothing (and a retried batch counts from 1 again)
   */
  readonly onProgress?: (done: number, total: number) => void;
  /** where the certificates (and generated keys) go, staged before the commit; without it the caller takes them from the result */
  readonly delivery?: Delivery;
  /**
   * runs inside the issuing transaction, after signing and right before the commit (e.g. using
   * up an enrollment token); throwing refuses the issuance with nothing recorded. The audit
   * events it returns are committed with the issuance's own, before them, in the same write
   * (one fsync in the folder store, one statement in a database)
   */
  readonly beforeCommit?: (tx: StoreTransaction, issued: readonly IssuedCertificate[]) => Promise<void | readonly { event: string; [k: string]: unknown }[]>;
}

/** Refusals already written to the audit log (so that nested stages audit once). */
const AUDITED = new WeakSet<Error>();

/** A certificate the CA signed and recorded, with its chain and, when the CA generated it, its key. */
export interface IssuedCertificate {
  /** what the store recorded: serial (lowercase hex), claims or names, validity (ISO 8601), SHA-256 fingerprint */
  readonly record: IssuedRecord;
  /** the certificate, DER */
  readonly der: Buffer;
  /** leaf then intermediate, PEM (no root) */
  readonly chainPem: string;
  /**
   * present when the CA generated the key (no `spki` in the request): unencrypted PKCS#8. The
   * store does not keep it: this is the only copy
   */
  readonly key?: GeneratedKey;
}

/** A prepared request: validated and ready to sign once a serial is chosen. */
interface Prepared {
  readonly type: 'client' | 'server';
  readonly claims?: NormalizedClaims;
  readonly dns: readonly string[];
  readonly ips: readonly string[];
  readonly keyType: KeyType;
  readonly key?: GeneratedKey;
  readonly spki: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly renewedFrom?: string;
  readonly delegatedFrom?: string;
  readonly actorSerial?: string;
  readonly spkiFrom?: 'csr' | 'reused';
}

/**
 * An open CA folder ({@link Authority.open}): its config, root and intermediate certificates
 * and store, and the issuing of certificates in stages (validate, build from the profile,
 * enforce, sign, store). Each issuance is one store transaction: a refusal (an `MtlsError`) is
 * written to the audit log as `cert.refuse` and records nothing else. The CA keys are read only
 * when something is signed. Opening holds the store open: call `store.close()` when done (a
 * database store keeps connections).
 */
export class Authority {
  /** the CA's config.yaml, as read when opened */
  readonly config: CaConfig;
  /** the paths of the CA folder's files @internal */
  readonly layout: CaLayout;
  /** where records, CRLs, audit and tokens live: the folder, a database, or `options.store` */
  readonly store: Store;
  /** the root certificate, DER */
  readonly rootDer: Buffer;
  /** the intermediate (issuing) certificate, DER */
  readonly intermediateDer: Buffer;
  /** the root certificate, parsed @internal */
  readonly root: ParsedCertificate;
  /** the intermediate certificate, parsed @internal */
  readonly intermediate: ParsedCertificate;
  /** what the intermediate contributes to every certificate and CRL it signs @internal */
  readonly issuer: IssuerInfo;
  readonly #options: AuthorityOptions;
  #signer: Signer | undefined;

  private constructor(dir: string, options: AuthorityOptions) {
    this.layout = caLayout(dir);
    this.config = loadCaConfig(this.layout.config);
    this.#options = options;
    this.rootDer = readCertFile(this.layout.rootCert);
    this.store =
      options.store ??
      openStore(options.storeUrl ?? this.config.store, dir, {
        where: options.storeUrl ? 'store' : `${this.layout.config} store`,
        caFingerprint: sha256Hex(this.rootDer),
        ...(options.storePassword ? { password: options.storePassword } : {}),
      });
    this.intermediateDer = readCertFile(this.layout.intermediateCert);
    this.root = parseCertificate(this.rootDer);
    this.intermediate = parseCertificate(this.intermediateDer);
    const ski = this.intermediate.extensions.get(OID.subjectKeyIdentifier);
    this.issuer = {
      subjectName: this.intermediate.subjectName,
      keyId: ski ? Buffer.from(decodeKeyIdentifier(OID.subjectKeyIdentifier, ski.value) as string, 'hex') : keyIdentifier(this.intermediate.spki),
      notAfter: this.intermediate.notAfter,
    };
    grantKeys(this, { intermediate: () => this.#intermediateSigner(), root: () => this.#rootSigner() });
  }

  /**
   * Opens the CA in `dir`: reads config.yaml and the root and intermediate certificates, and
   * opens the store (a database store connects at its first use). Keys are not read until
   * something is signed.
   *
   * @throws MtlsError `CA_NOT_FOUND` when `dir` does not exist or has no config.yaml,
   *   `CA_CONFIG_INVALID` for a bad config.yaml, `STORE_CORRUPT` or `PEM_MALFORMED` for an
   *   unreadable CA certificate, `USAGE` for a store URL that is not postgres:// or holds a password
   */
  static open(dir: string, options: AuthorityOptions = {}): Authority {
    if (!fs.existsSync(caLayout(dir).config)) {
      const exists = fs.existsSync(dir);
      throw new MtlsError('CA_NOT_FOUND', exists ? `${caLayout(dir).dir} is not a CA folder (no config.yaml)` : `CA folder ${caLayout(dir).dir} does not exist`, {
        hint: 'create one with `mcp-mtls ca init --dir DIR --trust-domain example.test`, or pass --dir / set MCP_MTLS_PKI_DIR',
      });
    }
    return new Authority(dir, options);
  }

  /** The current time by the CA's clock (`options.now`, else the system clock). */
  now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  /** The root certificate, PEM: what clients and servers trust. */
  get rootPem(): string {
    return pemEncode('CERTIFICATE', this.rootDer);
  }

  /**
   * Issues one client certificate (generating its key unless `spki` is given) and records it.
   *
   * @throws MtlsError for a refused request (`BAD_NAME`, `PROFILE_VIOLATION`, `LIMIT_EXCEEDED`,
   *   `TTL_EXCEEDS_ISSUER`, ...), a locked or missing intermediate key (`CA_KEY_LOCKED`,
   *   `CA_KEY_MISSING`), or a store failure; then nothing is recorded but the refusal in the audit log
   */
  async issueClient(request: ClientRequest, options: IssueOptions = {}): Promise<IssuedCertificate> {
    const [issued] = await this.issueClients([request], options);
    return issued as IssuedCertificate;
  }

  /**
   * Issues many client certificates in one store transaction: all requests are validated
   * first (one bad row refuses the whole batch, its message prefixed `request N:`), then
   * signed and committed together. Resolves in the order of `requests`.
   */
  issueClients(requests: readonly ClientRequest[], options: IssueOptions = {}): Promise<IssuedCertificate[]> {
    const subjects = requests.map((r) => ({ principal: `${r.kind}/${r.id}` }));
    return this.#audited(subjects[0] ?? {}, async () => {
      const prepared = await this.#prepareAll(requests.map((r) => () => this.#prepareClient(r)), subjects);
      return this.#signAndCommit(prepared, options);
    });
  }

  /**
   * Issues a client certificate for the public key of a CSR (PEM or DER), after checking its
   * signature. The claims come from `request`; the CSR's subject and extensions are ignored.
   *
   * @throws MtlsError `CSR_INVALID` or `CSR_BAD_SIGNATURE` for a bad CSR, else as {@link Authority.issueClient}
   */
  issueClientFromCsr(csr: Uint8Array, request: Omit<ClientRequest, 'spki' | 'keyType'>, options: IssueOptions = {}): Promise<IssuedCertificate> {
    return this.#audited({ principal: `${request.kind}/${request.id}`, source: 'csr' }, async () => {
      const verified = verifyCsr(csr);
      return this.issueClient({ ...request, spki: verified.spki }, options);
    });
  }

  /**
   * Issues one server certificate (serverAuth, for the DNS names and IPs of `request`),
   * generating its key unless `spki` is given, and records it.
   *
   * @throws MtlsError `BAD_ARGUMENT` without any name, `BAD_NAME`, `PROFILE_VIOLATION` outside
   *   the name constraints, else as {@link Authority.issueClient}
   */
  issueServer(request: ServerRequest, options: IssueOptions = {}): Promise<IssuedCertificate> {
    const subject = { dns: request.dns, ips: request.ips };
    return this.#audited(subject, async () => {
      const prepared = await this.#prepareAll([() => this.#prepareServer(request)], [subject]);
      const [issued] = await this.#signAndCommit(prepared, options);
      return issued as IssuedCertificate;
    });
  }

  /** Runs an issuance; a refusal (any MtlsError) is written to the audit log once. */
  async #audited<T>(subject: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isMtlsError(e) && !AUDITED.has(e)) {
        AUDITED.add(e);
        await this.#audit([{ event: 'cert.refuse', ...subject, code: e.code, reason: e.message }]).catch(() => undefined);
      }
      throw e;
    }
  }

  // ------------------------------------------------------------ stage 1-3: validate, build, enforce

  /**
   * the validity period: the lifetime asked for (else config.yaml's default) or an explicit
   * notBefore / notAfter (ValidityRequest), within limits.<type>.maxTtl, ending before the intermediate
   */
  #validity(type: 'client' | 'server', r: { ttlMs?: number | undefined } & ValidityRequest): { notBefore: Date; notAfter: Date } {
    const now = this.now().getTime();
    const second = (ms: number) => Math.floor(ms / 1000) * 1000;
    const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
    if (r.notAfter !== undefined && r.ttlMs !== undefined) {
      throw new MtlsError('BAD_ARGUMENT', 'give a lifetime (--ttl) or an end (--not-after), not both', { hint: 'drop --ttl: --not-after says when the certificate ends' });
    }
    for (const [what, d] of [['notBefore', r.notBefore], ['notAfter', r.notAfter]] as const) {
      if (d !== undefined && !(d instanceof Date && Number.isFinite(d.getTime()))) throw new MtlsError('BAD_ARGUMENT', `${what} is not a valid time`, { hint: 'e.g. 2026-12-01T09:00:00Z' });
    }
    if (r.notBefore !== undefined && r.notBefore.getTime() < now - MAX_BACKDATE_MS) {
      throw new MtlsError('BAD_ARGUMENT', `--not-before ${iso(r.notBefore.getTime())} is more than ${formatDuration(MAX_BACKDATE_MS)} in the past: backdating a certificate is limited to ${formatDuration(MAX_BACKDATE_MS)}`, {
        hint: `choose a --not-before after ${iso(second(now - MAX_BACKDATE_MS) + 1000)}, or leave it out (the certificate is then valid from now)`,
        details: { maxBackdateMs: MAX_BACKDATE_MS },
      });
    }
    const notBefore = r.notBefore !== undefined ? second(r.notBefore.getTime()) : second(now - BACKDATE_MS);
    // the lifetime counts from now, or from an explicit notBefore
    const start = r.notBefore !== undefined ? notBefore : now;
    let notAfter: number;
    if (r.notAfter !== undefined) {
      notAfter = second(r.notAfter.getTime());
      if (notAfter <= now) throw new MtlsError('BAD_ARGUMENT', `--not-after ${iso(notAfter)} is in the past`, { hint: 'choose a time in the future' });
      if (notAfter <= notBefore) throw new MtlsError('BAD_ARGUMENT', `--not-after ${iso(notAfter)} is not after --not-before ${iso(notBefore)}`, { hint: 'the certificate must end after it starts' });
      checkTtlLimit(this.config, type, { ms: notAfter - start, text: `${formatDuration(notAfter - start)} (until --not-after ${iso(notAfter)})`, from: 'request' });
    } else {
      const defaultTtl = type === 'client' ? this.config.defaults.clientTtl : this.config.defaults.serverTtl;
      const ttl = r.ttlMs ?? parseDuration(defaultTtl);
      if (!(ttl > 0) || !Number.isFinite(ttl)) throw new MtlsError('BAD_DURATION', `a certificate lifetime must be positive (got ${ttl} ms)`, { hint: 'e.g. --ttl 24h' });
      checkTtlLimit(this.config, type, r.ttlMs === undefined ? { ms: ttl, text: defaultTtl, from: 'default' } : { ms: ttl, from: 'request' });
      notAfter = second(start + ttl);
    }
    if (notAfter > this.intermediate.notAfter.getTime()) {
      throw new MtlsError('TTL_EXCEEDS_ISSUER', `the certificate would end ${iso(notAfter)}, after the intermediate CA (${this.intermediate.notAfter.toISOString()})`, {
        hint: r.notAfter !== undefined ? `choose a --not-after up to ${this.intermediate.notAfter.toISOString()}, or rotate the intermediate CA` : 'choose a shorter --ttl, or rotate the intermediate CA',
      });
    }
    if (now < this.intermediate.notBefore.getTime()) {
      throw new MtlsError('CERT_NOT_YET_VALID', 'the intermediate CA is not valid yet: check the clock');
    }
    if (r.notBefore !== undefined && notBefore < this.intermediate.notBefore.getTime()) {
      throw new MtlsError('BAD_ARGUMENT', `--not-before ${iso(notBefore)} is before the intermediate CA's validity (from ${this.intermediate.notBefore.toISOString()})`, { hint: `choose a --not-before from ${this.intermediate.notBefore.toISOString()}` });
    }
    return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
  }

  #key(keyType: KeyType | undefined, spki: Uint8Array | undefined): { keyType: KeyType; key?: GeneratedKey; spki: Uint8Array } {
    if (spki) return { keyType: keyTypeOfSpki(spki), spki };
    const key = generateKey(keyType ?? this.config.keyType);
    return { keyType: key.type, key, spki: key.spki };
  }

  #prepareClient(r: ClientRequest): Prepared {
    const claims = normalizeClaims({ ...r, trustDomain: this.config.trustDomain });
    if (this.config.nameConstraints.enabled && claims.id.includes('.')) {
      throw new MtlsError('PROFILE_VIOLATION', `under name constraints an id cannot contain a dot ("${claims.id}")`, {
        hint: 'OpenSSL checks a subject CN that looks like a host name against the DNS constraints, so the certificate would not verify; choose an id without dots',
      });
    }
    checkClientClaims(this.config, claims);
    const validity = this.#validity('client', r);
    return { type: 'client', claims, dns: [], ips: [], ...validity, ...this.#key(r.keyType, r.spki), ...(r.renewedFrom ? { renewedFrom: r.renewedFrom } : {}), ...(r.delegatedFrom ? { delegatedFrom: r.delegatedFrom } : {}), ...(r.actorSerial ? { actorSerial: r.actorSerial } : {}), ...(r.spkiFrom ? { spkiFrom: r.spkiFrom } : {}) };
  }

  #prepareServer(request: ServerRequest): Prepared {
    if (request.dns.length === 0 && request.ips.length === 0) {
      throw new MtlsError('BAD_ARGUMENT', 'a server certificate needs at least one --dns name or --ip address', { hint: 'e.g. --dns mcp.example.com --ip 127.0.0.1' });
    }
    // one canonical form (lowercase ASCII, IDNA, no trailing dot) for every check and for the certificate
    const dns = request.dns.map((d) => {
      const canonical = canonicalDnsName(d);
      if (!canonical) throw new MtlsError('BAD_NAME', `invalid DNS name "${d}"`, { hint: 'use a host name such as mcp.example.com; an IP address goes in --ip' });
      return canonical;
    });
    const r = { ...request, dns };
    for (const ip of r.ips) {
      if (!net.isIP(ip) || ip.includes('%')) throw new MtlsError('BAD_NAME', `invalid IP address "${ip}"`, { hint: 'use an IPv4 or IPv6 address such as 127.0.0.1' });
    }
    const permitted = this.config.nameConstraints;
    if (permitted.enabled && r.dns.length === 0) {
      throw new MtlsError('PROFILE_VIOLATION', 'under name constraints a server certificate needs a --dns name', {
        hint: 'OpenSSL checks a subject CN that looks like a host name (an IP address does) against the DNS constraints; add a --dns name within them',
      });
    }
    if (permitted.enabled) {
      for (const d of r.dns) {
        // d is canonical (lowercase); DNS names compare case-insensitively (the constraint may be written in capitals)
        if (!permitted.dns.some((p) => d === p.toLowerCase() || d.endsWith(`.${p.toLowerCase()}`))) {
          throw new MtlsError('PROFILE_VIOLATION', `DNS name "${d}" is outside the CA's name constraints (${permitted.dns.join(', ') || 'none'})`, {
            hint: 'the intermediate CA only vouches for the DNS names given at `ca init --name-constraints --permit-dns`',
          });
        }
      }
    }
    checkServerNames(this.config, r.dns, r.ips);
    const validity = this.#validity('server', r);
    return { type: 'server', dns: [...new Set(r.dns)], ips: [...new Set(r.ips)], ...validity, ...this.#key(r.keyType, r.spki), ...(r.renewedFrom ? { renewedFrom: r.renewedFrom } : {}) };
  }

  async #prepareAll(steps: (() => Prepared)[], subjects: Record<string, unknown>[]): Promise<Prepared[]> {
    const out: Prepared[] = [];
    for (let i = 0; i < steps.length; i++) {
      try {
        out.push((steps[i] as () => Prepared)());
      } catch (e) {
        if (isMtlsError(e)) {
          await this.#audit([{ event: 'cert.refuse', ...subjects[i], ...(steps.length > 1 ? { row: i + 1 } : {}), code: e.code, reason: e.message }]).catch(() => undefined);
          const refusal = steps.length > 1 ? new MtlsError(e.code, `request ${i + 1}: ${e.message}`, { hint: e.hint ?? 'fix the row; nothing was issued', cause: e }) : e;
          AUDITED.add(refusal);
          throw refusal;
        }
        throw e;
      }
    }
    return out;
  }

  // ------------------------------------------------------------ stage 4-5: sign, store

  async #signAndCommit(prepared: readonly Prepared[], options: IssueOptions): Promise<IssuedCertificate[]> {
    const signer = await this.#intermediateSigner();
    const chainTail = pemEncode('CERTIFICATE', this.intermediateDer);
    // a serial another CA process committed between our check and our commit is refused by
    // the store (SERIAL_TAKEN, never overwritten): sign again with new serials
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#commitOnce(prepared, options, signer, chainTail);
      } catch (e) {
        if (!isMtlsError(e, 'SERIAL_TAKEN') || attempt >= 5) throw e;
      }
    }
  }

  #commitOnce(prepared: readonly Prepared[], options: IssueOptions, signer: Signer, chainTail: string): Promise<IssuedCertificate[]> {
    const onProgress = options.onProgress;
    return this.store.transaction(async (tx) => {
      const issued: IssuedCertificate[] = [];
      const used = new Set<string>();
      const issuedAt = this.now().toISOString();
      for (const p of prepared) {
        let serial: Buffer;
        let hex: string;
        do {
          serial = randomSerial();
          hex = serial.toString('hex');
        } while (used.has(hex) || (await tx.serialExists(hex)));
        used.add(hex);
        const common = { serial, notBefore: p.notBefore, notAfter: p.notAfter, spki: p.spki, keyType: p.keyType, organization: this.config.organization, crlUrl: this.config.crlUrl };
        const fields = p.type === 'client' ? clientFields(this.issuer, { ...common, claims: p.claims as NormalizedClaims }) : serverFields(this.issuer, { ...common, dns: p.dns, ips: p.ips });
        enforceProfile(p.type, fields, this.intermediate.notAfter);
        const der = signCertificate(fields, signer);
        const record = this.#record(p, hex, der, issuedAt);
        if (p.type === 'client') selfCheck(der, p.claims as NormalizedClaims);
        issued.push({ record, der, chainPem: pemEncode('CERTIFICATE', der) + chainTail, ...(p.key ? { key: p.key } : {}) });
        onProgress?.(issued.length, prepared.length);
      }
      const before = (await options.beforeCommit?.(tx, issued)) ?? [];
      // delivery is staged (checked, written to temporary files) before the commit, so a
      // refused output leaves nothing recorded; it is completed after, under the same lock
      const staged = options.delivery?.stage(issued);
      try {
        await tx.commitIssued(
          issued.map((i) => ({ record: i.record, der: i.der })),
          [...before.map((e) => this.#event(e)), ...issued.map((i) => this.#event({ event: 'cert.issue', ...auditFields(i.record) }))],
        );
      } catch (e) {
        staged?.abort();
        throw e;
      }
      try {
        staged?.commit();
      } catch (e) {
        // recorded but never delivered: void it, so no valid certificate exists that nobody holds
        const revokedAt = new Date(Math.floor(this.now().getTime() / 1000) * 1000).toISOString();
        for (const i of issued) {
          await tx.commitRevocation({ op: 'revoke', serial: i.record.serial, reason: 'cessationOfOperation', revokedAt }, this.#event({ event: 'cert.void', serial: i.record.serial, reason: (e as Error).message }));
        }
        throw new MtlsError(isMtlsError(e) ? e.code : 'IO_ERROR', `the certificate could not be delivered and was revoked: ${(e as Error).message}`, { cause: e, hint: 'fix the output folder and issue again' });
      }
      return issued;
    });
  }

  #record(p: Prepared, serial: string, der: Buffer, issuedAt: string): IssuedRecord {
    const c = p.claims;
    return {
      op: 'issue',
      serial,
      type: p.type,
      ...(c ? { principal: c.principal, kind: c.kind } : {}),
      id: c ? c.id : ((p.dns[0] ?? p.ips[0]) as string),
      teams: c?.teams ?? [],
      roles: c?.roles ?? [],
      ...(c?.email ? { email: c.email } : {}),
      ...(p.type === 'server' ? { dns: p.dns, ips: p.ips } : {}),
      keyType: p.keyType,
      keySource: p.key ? 'generated' : (p.spkiFrom ?? (p.renewedFrom ? 'reused' : 'csr')),
      ...(p.renewedFrom ? { renewedFrom: p.renewedFrom } : {}),
      ...(c?.actingForPrincipal ? { actingFor: c.actingForPrincipal } : {}),
      ...(p.delegatedFrom ? { delegatedFrom: p.delegatedFrom } : {}),
      ...(p.actorSerial ? { actorSerial: p.actorSerial } : {}),
      fingerprint: sha256Hex(der),
      notBefore: p.notBefore.toISOString(),
      notAfter: p.notAfter.toISOString(),
      issuedAt,
    };
  }

  #event(fields: { event: string; [k: string]: unknown }): AuditEvent {
    return { time: this.now().toISOString(), actor: actor(), ...fields };
  }

  async #audit(events: { event: string; [k: string]: unknown }[]): Promise<void> {
    await this.store.transaction((tx) => tx.appendAudit(events.map((e) => this.#event(e))));
  }

  /**
   * Reads (and decrypts, asking `options.passphrase`) the intermediate key now rather than at
   * the first signature, and keeps it for the issuances and CRLs to come. Call it early to
   * check the key and passphrase before serving. Hands out nothing: the CA keys sign only what
   * the issuance stages and the CRL writer build.
   *
   * @throws MtlsError `CA_KEY_MISSING`, `CA_KEY_LOCKED` (encrypted without a passphrase, or a
   *   wrong one), `KEY_INVALID`
   */
  async unlock(): Promise<void> {
    await this.#intermediateSigner();
  }

  /** the intermediate's signer, read the first time and kept (internal: ca-keys.ts) */
  async #intermediateSigner(): Promise<Signer> {
    if (!this.#signer) {
      const key = await this.#loadKey('intermediate');
      this.#signer ??= createSigner(key);
      this.#derivationKey ??= crypto.createHash('sha256').update('mcp-mtls derived keys v1\0').update(key.export({ format: 'der', type: 'pkcs8' })).digest();
    }
    return this.#signer;
  }

  #derivationKey: Buffer | undefined;

  /**
   * A 32-byte key for `purpose` (HKDF-SHA256), derived from the intermediate CA key: the same in
   * every process holding this CA's key (the `ca serve` replicas of one CA), never derivable from
   * anything public, and a different one per purpose. The console's CSRF key is one. Unlocks the
   * key as {@link unlock} does.
   */
  async deriveKey(purpose: string): Promise<Buffer> {
    await this.#intermediateSigner();
    return Buffer.from(crypto.hkdfSync('sha256', this.#derivationKey as Buffer, Buffer.from(this.intermediate.serial, 'utf8'), Buffer.from(purpose, 'utf8'), 32));
  }

  async #loadKey(which: 'root' | 'intermediate'): Promise<KeyObject> {
    const file = which === 'root' ? this.layout.rootKey : this.layout.intermediateKey;
    let pem: string;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch (cause) {
      throw new MtlsError('CA_KEY_MISSING', `the ${which} CA key is not at ${file}`, {
        cause,
        hint: which === 'root' ? 'the root key is offline: bring it back to private/root.key for this operation' : 'restore private/intermediate.key from backup',
      });
    }
    const encrypted = pem.includes('ENCRYPTED PRIVATE KEY');
    let passphrase: string | undefined;
    if (encrypted) {
      if (!this.#options.passphrase) {
        throw new MtlsError('CA_KEY_LOCKED', `the ${which} CA key is encrypted and no passphrase was given`, {
          hint: 'pass --passphrase-file FILE, set MCP_MTLS_PASSPHRASE, or run in a terminal to be asked',
        });
      }
      passphrase = await this.#options.passphrase(which);
    }
    try {
      return crypto.createPrivateKey(encrypted ? { key: pem, format: 'pem', passphrase: passphrase as string } : { key: pem, format: 'pem' });
    } catch (cause) {
      if (encrypted) {
        throw new MtlsError('CA_KEY_LOCKED', `wrong passphrase for the ${which} CA key`, { cause, hint: 'check the passphrase file or MCP_MTLS_PASSPHRASE' });
      }
      throw new MtlsError('KEY_INVALID', `${file} is not a readable private key`, { cause });
    }
  }

  /** the root key's signer (the root's CRL), read anew at each call, not kept: the root key is normally offline (internal: ca-keys.ts) */
  async #rootSigner(): Promise<Signer> {
    return createSigner(await this.#loadKey('root'));
  }
}

function readCertFile(file: string): Buffer {
  try {
    return readCertificates(fs.readFileSync(file))[0] as Buffer;
  } catch (cause) {
    if (isMtlsError(cause)) throw cause;
    throw new MtlsError('STORE_CORRUPT', `cannot read ${file}`, { cause, hint: 'restore the CA folder from backup' });
  }
}

/**
 * The last gate before a certificate leaves the CA: read it back with the strict reader and
 * compare with the claims. Costs ~10 µs; catches any encoder regression for good.
 */
function selfCheck(der: Buffer, claims: NormalizedClaims): void {
  const id = decodeIdentity(der, { trustDomains: [claims.trustDomain] });
  const same =
    id.principal === claims.principal &&
    // a delegated certificate's teams and roles are the delegator's (profile v1.1)
    (id.actingFor?.teams ?? id.teams).join('\n') === claims.teams.join('\n') &&
    (id.actingFor?.roles ?? id.roles).join('\n') === claims.roles.join('\n') &&
    (!id.actingFor || (id.teams.length === 0 && id.roles.length === 0)) &&
    id.email === claims.email &&
    id.actingFor?.principal === claims.actingForPrincipal &&
    // profile v1.2: the tool globs, as asked
    (id.actingFor?.tools ?? []).join('\n') === (claims.actingFor?.tools ?? []).join('\n') &&
    (id.actingFor?.tools === undefined) === (claims.actingFor?.tools === undefined);
  if (!same) throw new MtlsError('PROFILE_VIOLATION', 'internal error: the signed certificate does not read back as the requested identity');
}

function auditFields(r: IssuedRecord): Record<string, unknown> {
  const { op: _op, issuedAt: _at, ...rest } = r;
  return rest;
}

let actorName: string | undefined;

/** Who runs this command, for the audit log (looked up once per process). */
export function actor(): string {
  if (actorName === undefined) {
    try {
      actorName = os.userInfo().username;
    } catch {
      actorName = String(process.getuid?.() ?? 'unknown');
    }
  }
  return actorName;
}
