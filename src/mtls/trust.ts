/**
 * One construction of authentication and revocation from a server's TLS material, for every
 * listener: {@link createMtlsServer} (and so the gateway) and {@link createMtlsMiddleware}. Two
 * constructions drifted before: the middleware had no CA certificates, so a root CRL revoking
 * an intermediate changed nothing there. Here, once:
 *
 * - the CA certificates: the `ca` list and what the server's `cert` carries after its leaf;
 * - the CRLs (files, URLs, URLs named by certificates), each verified and filed under the CA
 *   key of the certificate whose key signed it (ca-key.ts), never under a name alone;
 * - the authenticator, which looks revocation up under the CA that verifies each certificate;
 * - live reloads: every change rebuilds the revocation state and calls `onChange`.
 *
 * CRL URLs named by client certificates (`crlFromCertificates`) are learned per issuing CA key
 * (a same-named CA of another tenant cannot pre-empt them) and fail closed: until a CRL of that
 * CA is loaded, its clients are refused `revocation_unknown`.
 */
import { createAuthenticator, type ForwardedAuthenticator, type IssuerInfo } from './authenticate.js';
import { namesakes } from './ca-key.js';
import { watchCrlFiles } from './crl-files.js';
import { MtlsError } from '../errors.js';
import { checkCrlUrl, CRL_FETCH_DEFAULTS, createCrlFetcher, type CrlFetcher, type CrlSourceStatus } from './crl-fetch.js';
import { createCrlVerifier, crlWarnings, revocationOf, type CrlVerifier, type RevocationState, type VerifiedCrl } from './revocation.js';
import { parseCertificate, type ParsedCertificate } from '../x509/certificate.js';
import { crlUrlsOf } from '../x509/crl-distribution-points.js';
import { readCertificates } from '../x509/pem.js';
import { OID } from '../x509/oids.js';

type Pems = string | Buffer | readonly (string | Buffer)[];

/** Options of {@link createTrust}: the TLS material and how revocation is kept current. */
export interface TrustOptions {
  /** The server's certificate chain (PEM); what follows its leaf counts as CA certificates. */
  readonly cert?: string | Buffer;
  /** The trusted CA certificates (PEM): roots, and the intermediates of every tenant. */
  readonly ca: Pems;
  /** CRLs (PEM or DER) at start. */
  readonly crl?: readonly (string | Buffer)[];
  /**
   * the files `crl` was read from ({@link tlsFromPki} records them): watched (crl-files.ts), and
   * when one changes all are read again and replace the file CRLs as `reloadCrls` does; one that
   * cannot be read or does not verify is logged and the last good CRLs stay
   */
  readonly crlFiles?: readonly string[];
  readonly crlUrls?: readonly string[];
  readonly crlFromCertificates?: boolean;
  readonly crlFetch?: { readonly intervalMs?: number; readonly timeoutMs?: number; readonly maxBytes?: number };
  readonly trustDomains?: readonly string[];
  /** false: delegated certificates are read as their holder (the actor) alone (docs/delegation.md); default true */
  readonly delegation?: boolean;
  readonly trustDomainRoots?: Readonly<Record<string, string | Buffer>>;
  readonly clock?: () => Date;
  readonly log: (message: string) => void;
  /** After each change of the revocation data (`source`: the URL of a fetched CRL): e.g. close the connections it now refuses; returns how many. */
  readonly onChange?: (source: string | undefined) => number | void;
}

/** What {@link createTrust} returns. */
export interface Trust {
  readonly authenticator: ForwardedAuthenticator;
  /** the CA certificates (DER) CRLs are verified with and clients' issuers found among */
  readonly caCertificates: readonly Buffer[];
  revocation(): RevocationState;
  /** replaces the CRLs given as files; throws (CRL_INVALID, DER_MALFORMED) before anything changes; returns what `onChange` returned */
  reloadCrls(crls: readonly (string | Buffer)[]): number;
  refreshCrls(): Promise<void>;
  crlSources(): readonly CrlSourceStatus[];
  /** stops the fetches, the watching of `crlFiles` and the hourly CRL warning */
  stop(): void;
}

const asList = (v: Pems): (string | Buffer)[] => (Array.isArray(v) ? [...v] : [v as string | Buffer]);
const ders = (v: Pems): Buffer[] => asList(v).flatMap((c) => readCertificates(Buffer.isBuffer(c) ? c : Buffer.from(c)));
const short = (caKey: string) => `sha256:${caKey.slice(caKey.indexOf('/') + 1, caKey.indexOf('/') + 17)}`;

/** The options a listener (createMtlsServer, the middleware) takes under the names createTrust gives them. */
export type ListenerTrustOptions = Pick<TrustOptions, 'cert' | 'crl' | 'crlFiles' | 'crlUrls' | 'crlFromCertificates' | 'crlFetch' | 'trustDomains' | 'delegation' | 'trustDomainRoots' | 'clock'>;

const LISTENER_TRUST_KEYS = ['cert', 'crl', 'crlFiles', 'crlUrls', 'crlFromCertificates', 'crlFetch', 'trustDomains', 'delegation', 'trustDomainRoots', 'clock'] as const satisfies readonly (keyof ListenerTrustOptions)[];

/**
 * What a listener hands on to {@link createTrust}: the options it was given that are set, so
 * that both listeners forward the same ones the same way (an unset or false one is left out and
 * createTrust's default applies). Extra keys of `options` (log, audit, ...) are not copied.
 */
export function listenerTrustOptions(options: ListenerTrustOptions): ListenerTrustOptions {
  const set: Record<string, unknown> = {};
  // delegation: false is a setting, not an absence
  for (const key of LISTENER_TRUST_KEYS) if (options[key] || (key === 'delegation' && options[key] === false)) set[key] = options[key];
  return set as ListenerTrustOptions;
}

/**
 * Builds the authenticator and its revocation data from TLS material, and keeps them current.
 *
 * @throws MtlsError `PEM_MALFORMED`, `CRL_INVALID` or `DER_MALFORMED` for the material; `BAD_ARGUMENT` for a CRL URL or interval
 */
export function createTrust(options: TrustOptions): Trust {
  const { log } = options;
  const clock = options.clock ?? (() => new Date());
  // CRLs may be signed by the root or the intermediate; the intermediate reaches us in the
  // client's chain, so the CA list includes what `cert` carries after the leaf
  const serverChain = options.cert ? readCertificates(Buffer.from(options.cert)) : [];
  const caCertificates = [...ders(options.ca), ...serverChain.slice(1)];
  const sharedNames = new Set<string>();
  for (const n of namesakes(caCertificates)) {
    sharedNames.add(n.nameHex);
    log(`${n.keys} CA certificates are named "${n.subject}" with different keys: CRLs and revocations are kept per CA key, so one cannot revoke the other's certificates; check that each is meant to be trusted (another tenant may have copied the name)`);
  }
  const verifier = attributing(createCrlVerifier(caCertificates), sharedNames, log);

  // the CRLs given as files (crl, reloadCrls) and the fetched ones add up
  let fileCrls: VerifiedCrl[] = (options.crl ?? []).flatMap((c) => verifier.verify(Buffer.from(c)));
  let fetcher: CrlFetcher | undefined;
  const allCrls = () => [...fileCrls, ...(fetcher?.crls() ?? [])];
  // issuing CAs (by CA key) whose client certificates named CRL URLs: refused until a CRL of them is loaded
  const awaiting = new Map<string, readonly string[]>();
  const build = (): RevocationState => {
    const state = revocationOf(allCrls());
    const waiting = new Map([...awaiting].filter(([k]) => !state.byCa.has(k)));
    return waiting.size ? { ...state, awaiting: waiting } : state;
  };
  let revocation = build();
  for (const w of crlWarnings(revocation, clock())) log(w);

  // client certificates name their CRL URLs: learned per issuing CA key (the CA whose key
  // verified the certificate), so a same-named CA of another tenant, connecting first, cannot
  // stand in for it; fetched in the background. Each new cRLDistributionPoints value of a CA is
  // read (one buffer comparison per connection otherwise): a CA whose certificates name several
  // URLs (it moved its CRL) is not held to the first certificate's, which may be dead. At most
  // 4 URLs per CA, within a budget that covers every configured CA: a tenant's certificates
  // naming dozens of URLs cannot use it up and leave another tenant's CRL unfetched.
  const learned = new Map<string, { exts: Buffer[]; urls: number }>();
  const perCa = CRL_FETCH_DEFAULTS.maxLearnedPerCa;
  const maxLearned = Math.max(CRL_FETCH_DEFAULTS.maxLearned, perCa * caCertificates.length);
  const learn = (cert: ParsedCertificate, issuer: IssuerInfo | undefined): string | undefined => {
    if (!fetcher) return undefined;
    const ext = cert.extensions.get(OID.cRLDistributionPoints)?.value;
    if (!ext) return undefined;
    const seen = issuer ? learned.get(issuer.caKey) : undefined;
    if (seen && (seen.urls >= perCa || seen.exts.length >= 16 || seen.exts.some((e) => e.equals(ext)))) return undefined; // the common case
    const urls = crlUrlsOf(cert).filter((u) => {
      try {
        return checkCrlUrl(u) !== undefined;
      } catch {
        return false; // not fetchable: as if it named none (the fetcher would refuse it too)
      }
    });
    if (urls.length === 0) return undefined;
    if (!issuer) return `it names a CRL URL (${urls[0]}), but the CA certificate whose key signed it is not among the server's CA certificates, so no CRL of that CA can be verified: add its intermediate certificate to the server's CA list`;
    const entry = seen ?? { exts: [], urls: 0 };
    learned.set(issuer.caKey, entry);
    entry.exts.push(Buffer.from(ext));
    const fresh = urls.filter((u) => !fetcher!.status().some((s) => s.url === new URL(u).href));
    const room = Math.max(0, perCa - entry.urls);
    for (const u of fresh.slice(room)) log(`not fetching ${u}, named by a client certificate of the CA ${short(issuer.caKey)}: at most ${perCa} learned CRL URLs per CA; list it in crlUrls`);
    for (const u of fresh.slice(0, room)) {
      entry.urls++;
      if (!fetcher.add(u, 'certificate')) log(`not fetching ${u}, named by a client certificate: at most ${maxLearned} learned CRL URLs; list it in crlUrls`);
    }
    if (!revocation.byCa.has(issuer.caKey)) {
      const all = [...new Set([...(awaiting.get(issuer.caKey) ?? []), ...urls])];
      const before = awaiting.get(issuer.caKey)?.length;
      awaiting.set(issuer.caKey, all);
      revocation = build();
      authenticator.setRevocation(revocation); // applies to this very connection, before its first answer
      if (before !== all.length) log(`clients of the CA ${short(issuer.caKey)} are refused (revocation_unknown) until a CRL of it is fetched from ${all.join(', ')}`);
    }
    return undefined;
  };

  const authenticator = createAuthenticator({
    revocation,
    caCertificates,
    ...(options.trustDomains ? { trustDomains: options.trustDomains } : {}),
    ...(options.delegation === false ? { delegation: false } : {}),
    ...(options.trustDomainRoots ? { trustDomainRoots: options.trustDomainRoots } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.crlFromCertificates ? { onCertificate: learn } : {}),
  });

  /** Rebuilds revocation from every CRL and tells the listener. */
  const apply = (source?: string): number => {
    revocation = build();
    authenticator.setRevocation(revocation);
    for (const w of crlWarnings(revocation, clock())) log(w);
    return options.onChange?.(source) ?? 0;
  };

  if (options.crlUrls?.length || options.crlFromCertificates) {
    const fromCerts = options.crlFromCertificates
      ? [...caCertificates, ...serverChain].flatMap((der) => {
          try {
            return crlUrlsOf(parseCertificate(der));
          } catch {
            return [];
          }
        })
      : [];
    fetcher = createCrlFetcher({
      urls: [...new Set([...(options.crlUrls ?? []), ...fromCerts])],
      maxLearned,
      verifier,
      applied: allCrls,
      onUpdate: (url, crls) => {
        const closed = apply(url);
        log(`CRL from ${url} applied: ${crls.map((c) => `#${c.number ?? '?'} of ${c.issuer} (${c.serials.size} revoked)`).join(', ')}${closed ? `; closed ${closed} revoked connection(s)` : ''}`);
      },
      log,
      ca: caCertificates,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.crlFetch?.intervalMs !== undefined ? { intervalMs: options.crlFetch.intervalMs } : {}),
      ...(options.crlFetch?.timeoutMs !== undefined ? { timeoutMs: options.crlFetch.timeoutMs } : {}),
      ...(options.crlFetch?.maxBytes !== undefined ? { maxBytes: options.crlFetch.maxBytes } : {}),
    });
  }

  // a CRL that nobody refreshes would expire silently: say so every hour while it is near
  const warnTimer = setInterval(() => {
    for (const w of crlWarnings(revocation, clock())) log(w);
  }, 3_600_000);
  warnTimer.unref();

  const reloadCrls = (crls: readonly (string | Buffer)[]): number => {
    fileCrls = crls.flatMap((c) => verifier.verify(Buffer.from(c))); // throws before anything changes
    return apply();
  };
  // the CRL files on disk: a new one (`mcp-mtls revoke`, `mcp-mtls crl`) applies within seconds
  const files = options.crlFiles?.length
    ? watchCrlFiles(
        options.crlFiles,
        (crls) => {
          // a file cut short (a partial write) may hold no complete CRL: refused, not read as "none"
          const verified = crls.map((c, i) => {
            const v = verifier.verify(c);
            if (v.length === 0) throw new MtlsError('CRL_INVALID', `${options.crlFiles![i]} holds no complete CRL`);
            return v;
          });
          fileCrls = verified.flat();
          const closed = apply();
          log(`CRL files reloaded (${options.crlFiles!.join(', ')})${closed ? `; closed ${closed} revoked connection(s)` : ''}`);
        },
        log,
      )
    : undefined;

  return {
    authenticator,
    caCertificates,
    revocation: () => revocation,
    reloadCrls,
    refreshCrls: async () => {
      await fetcher?.refresh();
    },
    crlSources: () => fetcher?.status() ?? [],
    stop() {
      clearInterval(warnTimer);
      fetcher?.stop();
      files?.stop();
    },
  };
}

/**
 * The verifier, saying (once per CRL) when a CRL comes from a CA that shares its name with
 * another configured CA: it is filed under its signer's key only, and applies to nothing the
 * other CA signed.
 */
function attributing(verifier: CrlVerifier, sharedNames: ReadonlySet<string>, log: (m: string) => void): CrlVerifier {
  if (sharedNames.size === 0) return verifier;
  const told = new Set<string>();
  return {
    verify(data, source) {
      const out = verifier.verify(data, source);
      for (const v of out) {
        const said = `${v.caKey}#${v.number ?? v.thisUpdate.toISOString()}`;
        if (!sharedNames.has(v.issuerNameHex) || told.has(said)) continue;
        told.add(said);
        log(`the CRL #${v.number ?? '?'} of "${v.issuer.replaceAll('\n', ', ')}"${source ? ` from ${source}` : ''} is signed by the CA with key ${short(v.caKey)}: it applies only to certificates that key signed, not to the other CA(s) named the same`);
      }
      return out;
    },
  };
}
