/**
 * The folder store: issued/<serial>.crt for every certificate, index.jsonl (append-only
 * records), audit.log (append-only JSON lines), crl/, and a cross-process lock
 * (util/lock.ts: a dead owner's lock is taken over at once, a live one never).
 *
 * Commit order, for crash safety: certificate files (fsynced), then the index line (the
 * commit point), then the audit line. A crash before the index line leaves an unlisted
 * certificate file whose serial is still never reused (serialExists looks at issued/).
 *
 * `tidy` (removeRecords) follows the same pattern with its own journal (tidy-pending.json): the
 * serials are retired first (retired.jsonl: serialExists stays true for them), then the index is
 * rewritten atomically without them (the commit point), then their files and the audit line go.
 *
 * Enrollment tokens live in tokens.json (0600, rewritten atomically under the lock when one is
 * made or dropped), each use in a file of its own (fs-tokens.ts), once-only
 * credentials (useOnce: hashes of ID tokens) in used-once.json until they expire, revoked
 * principals (`revoke --principal`, each with its time) in revoked-principals.json; the next
 * CRL number is one more than the stored CRL's (the lock makes that safe across processes).
 *
 * Lookups (by serial, successor, delegations, team/role/id, active revocations) answer from
 * index.jsonl held in memory: read whole once per process, then only what other processes
 * appended since (fs-follow.ts: it writes nothing, so crash safety is the files' alone).
 */
import fs from 'node:fs';
import path from 'node:path';
import { MtlsError } from '../../errors.js';
import { acquireLock, type HeldLock } from '../../util/lock.js';
import { pemDecodeAll, pemEncode, readCertificates } from '../../x509/pem.js';
import { caLayout, MODES, type CaLayout } from '../layout.js';
import { appendLines, fsyncDir, readJsonLines, writeFileAtomic, writeFilesAtomic } from '../../util/atomic-file.js';
import { nextCrlNumber } from '../crl-signing.js';
import { FolderTokens, withUse, type TokenUse } from './fs-tokens.js';
import { JsonLinesFollower } from './fs-follow.js';
import { IndexMapLookups } from './index-map-lookups.js';
import { checkPrincipalRevocations, withoutRevokedTokens, IndexMaps, laterRevocation, renewalFromMaps, type AuditEvent, type PrincipalRevocation, type CrlName, type IndexRecord, type Store, type StoreSnapshot, type StoredToken, type StoreTransaction, type TokenConsumeResult } from './store.js';

/** Options of {@link FsStore}. */
export interface FsStoreOptions {
  /** how long to wait for the lock before giving up */
  waitMs?: number;
  /**
   * Fault injection for the crash tests: the process kills itself (SIGKILL) when it reaches
   * this point of a commit. Points: after-journal, after-files, after-index, after-audit; of
   * removeRecords: tidy-after-journal, tidy-after-index.
   */
  crashAt?: string;
}

/**
 * The folder store (the default): the CA's state as files in the CA folder (issued/, index.jsonl,
 * audit.log, crl/, tokens.json, tokens-used/), changed under a cross-process lock, crash-safe (a journal
 * finishes or undoes an interrupted issuance on the next transaction). For one host.
 */
export class FsStore extends IndexMapLookups implements Store {
  /** the paths of the CA folder's files @internal */
  readonly layout: CaLayout;
  readonly #waitMs: number;
  readonly #crashAt: string | undefined;
  /** the lock of the transaction running (one at a time: the lock serialises them, also within a process) */
  #held: HeldLock | undefined;
  readonly #tokens: FolderTokens;
  readonly #tidyPending: string;
  readonly #usedOnce: string;
  readonly #revokedPrincipals: string;
  /** index.jsonl by key, as far as #follower read it */
  #index = new IndexMaps();
  readonly #follower: JsonLinesFollower<IndexRecord>;
  #retired = new Set<string>();
  readonly #retiredFollower: JsonLinesFollower<string>;

  constructor(dir: string, options: FsStoreOptions = {}) {
    super();
    this.layout = caLayout(dir);
    this.#tokens = new FolderTokens(this.layout.dir);
    this.#tidyPending = path.join(this.layout.dir, 'tidy-pending.json');
    this.#usedOnce = path.join(this.layout.dir, 'used-once.json');
    this.#revokedPrincipals = path.join(this.layout.dir, 'revoked-principals.json');
    this.#waitMs = options.waitMs ?? 60_000;
    this.#crashAt = options.crashAt;
    this.#follower = new JsonLinesFollower<IndexRecord>(this.layout.index, { reset: () => (this.#index = new IndexMaps()), add: (r) => this.#index.add(r) });
    this.#retiredFollower = new JsonLinesFollower<string>(this.layout.retired, { reset: () => (this.#retired = new Set()), add: (x) => this.#retired.add(x) });
  }

  /** How much of index.jsonl this store read, and how many times from the start: for tests that lookups read only what is new. @internal */
  get indexReads(): { readonly bytesRead: number; readonly fullReads: number } {
    return { ...this.#follower.stats };
  }

  /** index.jsonl by key, brought up to the file's complete lines */
  #maps(): IndexMaps {
    this.#follower.refresh();
    return this.#index;
  }

  protected indexMaps(): IndexMaps {
    return this.#maps();
  }

  protected revokedPrincipal(principal: string): PrincipalRevocation | undefined {
    const all = this.#readRevokedPrincipals();
    return Object.hasOwn(all, principal) ? all[principal] : undefined;
  }

  get location(): string {
    return this.layout.dir;
  }

  async close(): Promise<void> {}

  async transaction<T>(fn: (tx: StoreTransaction) => T | Promise<T>): Promise<T> {
    const lock = await acquireLock(`${this.layout.lock}.lock`, { waitMs: this.#waitMs });
    this.#held = lock;
    try {
      // recovery removes what a dead transaction left: only under a lock that is still ours
      if (fs.existsSync(this.layout.pending)) {
        lock.assertHeld();
        this.#recover();
      }
      if (fs.existsSync(this.#tidyPending)) {
        lock.assertHeld();
        this.#recoverTidy();
      }
      const tx = this.#tx(lock);
      const result = await fn(tx.ops);
      tx.finish();
      return result;
    } finally {
      this.#held = undefined;
      lock.release();
    }
  }

  /**
   * The operations of one transaction. A token used (consumeToken) has its use file written
   * with the issuance's journal, in one atomic write, so before the index line, the commit
   * point; a transaction that ends without committing an issuance writes it at its end
   * (`finish`), and one that throws writes nothing.
   */
  #tx(lock: HeldLock): { ops: StoreTransaction; finish(): void } {
    const layout = this.layout;
    const point = (name: string) => {
      if (this.#crashAt === name) process.kill(process.pid, 'SIGKILL');
    };
    /** the token this transaction used, its use not written yet */
    let staged: { hash: string; use: TokenUse } | undefined;
    /** every token, uses applied, this transaction's too */
    const tokens = () => this.#tokens.list().map((t) => (staged && t.hash === staged.hash ? withUse(t, staged.use) : t));
    const writeList = (list: readonly StoredToken[]) => {
      writeFilesAtomic([this.#tokens.listFile(list)]);
      this.#tokens.written(list);
    };
    const ops: StoreTransaction = {
      ...this.lookups(),
      serialExists: async (serial) => fs.existsSync(layout.issuedCert(serial)) || this.#readRetired().has(serial),
      commitIssued: async (items, audit) => {
        lock.assertHeld();
        const retired = this.#readRetired();
        const taken = items.find((i) => fs.existsSync(layout.issuedCert(i.record.serial)) || retired.has(i.record.serial));
        if (taken) throw new MtlsError('SERIAL_TAKEN', `serial ${taken.record.serial} is taken`, { hint: 'issue again' });
        fs.mkdirSync(layout.issuedDir, { recursive: true, mode: 0o755 });
        // a journal first, so that a crash at any point below is finished or undone by the
        // next transaction (#recover); then the certificate files, then the index line (the
        // commit point), then the audit lines
        // (with a token this transaction used: its use file beside it, named in it for the recovery)
        writeFilesAtomic([{ file: layout.pending, data: JSON.stringify({ serials: items.map((i) => i.record.serial), audit, ...(staged ? { tokens: [staged.hash] } : {}) }), mode: MODES.record }, ...(staged ? [this.#tokens.useFile(staged.hash, staged.use)] : [])]);
        staged = undefined;
        point('after-journal');
        writeFilesAtomic(items.map(({ record, der }) => ({ file: layout.issuedCert(record.serial), data: pemEncode('CERTIFICATE', der), mode: MODES.cert, exclusive: true })));
        point('after-files');
        lock.assertHeld(); // again at the commit point: the files above take time
        appendLines(layout.index, items.map((i) => JSON.stringify(i.record)), MODES.record);
        point('after-index');
        appendLines(layout.audit, audit.map((a) => JSON.stringify(a)), MODES.record);
        point('after-audit');
        fs.rmSync(layout.pending, { force: true });
      },
      appendAudit: async (events) => appendLines(layout.audit, events.map((a) => JSON.stringify(a)), MODES.record),
      commitRevocation: async (record, audit) => {
        lock.assertHeld();
        appendLines(layout.index, [JSON.stringify(record)], MODES.record);
        appendLines(layout.audit, [JSON.stringify(audit)], MODES.record);
      },
      writeCrl: async (which, der) => {
        lock.assertHeld();
        fs.mkdirSync(layout.crlDir, { recursive: true, mode: 0o755 });
        writeFileAtomic(layout.crl(which), pemEncode('X509 CRL', der), { mode: MODES.cert });
      },
      readIndex: async () => this.#readIndex(),
      renewalOf: async (serial) => renewalFromMaps(this.#maps(), serial),
      readCrl: async (which) => this.#readCrl(which),
      putToken: async (token) => {
        lock.assertHeld();
        const list = tokens();
        if (list.some((t) => t.hash === token.hash || t.id === token.id)) {
          throw new MtlsError('BAD_ARGUMENT', `an enrollment token with id ${token.id} or the same secret exists already`, { hint: 'create a new token' });
        }
        // the list is written whole anyway: the uses since the last write go into it, and their
        // files after (so the files stay few, and a version before use files sees these uses)
        const folded = this.#tokens.withUseFiles(list);
        writeList([...list, token]);
        staged = undefined; // a use of this transaction is in tokens.json now
        this.#tokens.removeUses(folded);
      },
      consumeToken: async (hash, now, serial) => {
        lock.assertHeld();
        // one lookup and one file read, whatever the number of tokens
        const found = this.#tokens.byHash(hash);
        const refused = consumeRefusal(found && staged?.hash === hash ? withUse(found, staged.use) : found, now);
        if (refused) return refused;
        const token = unusedToken(found as StoredToken);
        staged = { hash, use: { usedAt: now.toISOString(), ...(serial ? { usedFor: serial } : {}) } }; // written with the issuance's journal (commitIssued), else at the end of the transaction
        return { token };
      },
      dropUnusedTokens: async (kind, id) => {
        lock.assertHeld();
        const list = tokens();
        const kept = list.filter((t) => t.usedAt !== undefined || t.claims.kind !== kind || t.claims.id !== id);
        if (kept.length === list.length) return [];
        const dropped = list.filter((t) => !kept.includes(t));
        // each dropped token also gets a use file: a process holding tokens.json as it parsed it
        // before (ca serve, whose cache goes by the file's stat) finds it used, whatever it holds
        const at = new Date().toISOString();
        const folded = this.#tokens.withUseFiles(kept);
        writeFilesAtomic([...dropped.map((t) => this.#tokens.useFile(t.hash, { usedAt: at })), this.#tokens.listFile(kept)]);
        this.#tokens.written(kept);
        staged = undefined; // a use of this transaction is in tokens.json now
        this.#tokens.removeUses(folded);
        return dropped.map((t) => t.id);
      },
      useOnce: async (key, expiresAt, now) => {
        lock.assertHeld();
        const kept = Object.entries(this.#readUsedOnce()).filter(([, until]) => until > now.getTime());
        if (kept.some(([k]) => k === key)) return false;
        writeFileAtomic(this.#usedOnce, JSON.stringify(Object.fromEntries([...kept, [key, expiresAt.getTime()]])) + '\n', { mode: MODES.record });
        return true;
      },
      nextCrlNumber: async (which) => nextCrlNumber(this.#readCrl(which)),
      removeRecords: async (serials, audit) => {
        lock.assertHeld();
        if (serials.length === 0) return;
        // the journal, then the serials retired (durably, before any record goes: never reused),
        // then the index without them (one atomic rename: the commit point), then #finishTidy
        writeFileAtomic(this.#tidyPending, JSON.stringify({ serials, audit }), { mode: MODES.record });
        point('tidy-after-journal');
        const known = this.#readRetired();
        appendLines(layout.retired, serials.filter((x) => !known.has(x)).map((x) => JSON.stringify(x)), MODES.record);
        const gone = new Set(serials);
        const kept = this.#readIndex().filter((r) => !gone.has(r.serial));
        writeFileAtomic(layout.index, kept.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: MODES.record });
        point('tidy-after-index');
        this.#finishTidy(serials, audit);
      },
      recordPrincipalRevocation: async (record) => {
        lock.assertHeld();
        // before the revocation lines (revokePrincipal writes it first): a crash in between leaves
        // the principal's older ID tokens refused and its certificates valid, and `revoke` again finishes it
        this.#writeRevokedPrincipals([record]);
      },
    };
    return {
      ops,
      finish: () => {
        if (!staged) return;
        lock.assertHeld();
        writeFilesAtomic([this.#tokens.useFile(staged.hash, staged.use)]);
        staged = undefined;
      },
    };
  }

  /** After the index no longer lists them: the certificate files, the audit line, the journal. */
  #finishTidy(serials: readonly string[], audit: AuditEvent | undefined): void {
    for (const x of serials) fs.rmSync(this.layout.issuedCert(x), { force: true });
    fsyncDir(this.layout.issuedDir);
    if (audit) appendLines(this.layout.audit, [JSON.stringify(audit)], MODES.record);
    fs.rmSync(this.#tidyPending, { force: true });
  }

  /**
   * Finishes or forgets a tidy a crash interrupted: when the index still lists one of its serials,
   * the commit point was not reached and nothing visible changed (the retired serials stay retired:
   * harmless, they were in use); otherwise its files and audit line are finished.
   */
  #recoverTidy(): void {
    let pending: { serials: string[]; audit: AuditEvent };
    try {
      pending = JSON.parse(fs.readFileSync(this.#tidyPending, 'utf8'));
    } catch {
      fs.rmSync(this.#tidyPending, { force: true }); // torn before its rename: nothing else was written
      return;
    }
    const listed = new Set(this.#readIndex().map((r) => r.serial));
    if (pending.serials.some((x) => listed.has(x))) fs.rmSync(this.#tidyPending, { force: true });
    else this.#finishTidy(pending.serials, pending.audit);
  }

  /** retired.jsonl, brought up to the file (the set is the store's own: do not change it) */
  #readRetired(): Set<string> {
    this.#retiredFollower.refresh();
    return this.#retired;
  }

  /** Everything the folder holds, read under the lock (after finishing any interrupted commit): for `ca export`. */
  snapshot(): Promise<StoreSnapshot> {
    return this.transaction(async (tx) => {
      const index = await tx.readIndex();
      const issued: { serial: string; der: Uint8Array }[] = [];
      for (const r of index) {
        if (r.op !== 'issue') continue;
        const der = await this.readIssued(r.serial);
        if (!der) throw new MtlsError('STORE_CORRUPT', `${this.layout.issuedCert(r.serial)} is missing`, { hint: 'restore the CA folder from backup' });
        issued.push({ serial: r.serial, der });
      }
      const [root, intermediate] = [this.#readCrl('root'), this.#readCrl('intermediate')];
      const retired = [...this.#readRetired()];
      const usedOnce = Object.entries(this.#readUsedOnce()).map(([key, until]) => ({ key, expiresAt: new Date(until).toISOString() }));
      const principalRevocations = Object.values(this.#readRevokedPrincipals());
      return {
        index,
        issued,
        audit: this.#readAudit(),
        crls: { ...(root ? { root } : {}), ...(intermediate ? { intermediate } : {}) },
        tokens: this.#tokens.list(),
        ...(retired.length ? { retired } : {}),
        ...(usedOnce.length ? { usedOnce } : {}),
        ...(principalRevocations.length ? { principalRevocations } : {}),
      };
    });
  }

  /**
   * Writes a snapshot into the folder, under the lock: for `ca import`. Refuses a folder that
   * holds certificates or tokens unless `replace`; audit.log and the CRLs are always replaced.
   * The index is written last: until then the folder still reads as before.
   */
  restore(data: StoreSnapshot, replace: boolean): Promise<void> {
    return this.transaction(async () => {
      const layout = this.layout;
      const files = fs.existsSync(layout.issuedDir) ? fs.readdirSync(layout.issuedDir).filter((f) => f.endsWith('.crt')) : [];
      if (!replace && (this.#readIndex().length > 0 || files.length > 0 || this.#tokens.raw().length > 0)) {
        throw new MtlsError('CA_EXISTS', `${layout.dir} already holds certificates or tokens`, { hint: 'import into a fresh CA folder (a copy of this one with only the keys and config.yaml), or pass --replace' });
      }
      // serials name files: one from a database that is not a lowercase hex serial (`../root`)
      // would write outside issued/ (over root.crt, the trust anchor bundles hand out)
      const bad = [...data.issued.map((c) => c.serial), ...data.index.map((r) => r.serial), ...(data.retired ?? [])].find((x) => !/^[0-9a-f]{1,40}$/.test(x));
      if (bad !== undefined) throw new MtlsError('STORE_CORRUPT', `the store holds a serial that is not a certificate serial: ${JSON.stringify(bad.slice(0, 60))}`, { hint: 'nothing was imported; check who can write to the database' });
      fs.mkdirSync(layout.issuedDir, { recursive: true, mode: 0o755 });
      fs.mkdirSync(layout.crlDir, { recursive: true, mode: 0o755 });
      for (let i = 0; i < data.issued.length; i += 500) {
        writeFilesAtomic(data.issued.slice(i, i + 500).map((c) => ({ file: layout.issuedCert(c.serial), data: pemEncode('CERTIFICATE', c.der), mode: MODES.cert })));
      }
      const keep = new Set(data.issued.map((c) => `${c.serial}.crt`));
      for (const f of files) if (!keep.has(f)) fs.rmSync(path.join(layout.issuedDir, f), { force: true });
      for (const which of ['root', 'intermediate'] as const) {
        const der = data.crls[which];
        if (der) writeFileAtomic(layout.crl(which), pemEncode('X509 CRL', der), { mode: MODES.cert });
        else fs.rmSync(layout.crl(which), { force: true });
      }
      // revoked principals (below) are kept, the folder's own and the snapshot's: their tokens not used yet stay out
      if (data.principalRevocations?.length) checkPrincipalRevocations(data.principalRevocations);
      const tokens = withoutRevokedTokens(data.tokens, [...Object.values(this.#readRevokedPrincipals()), ...(data.principalRevocations ?? [])]);
      if (tokens.length > 0) writeFileAtomic(this.#tokens.file, JSON.stringify(tokens, null, 1) + '\n', { mode: MODES.record });
      else fs.rmSync(this.#tokens.file, { force: true });
      // the snapshot's tokens carry their uses; the folder's use files go after (a crash in
      // between leaves uses of its own tokens only, which stay used)
      this.#tokens.clearUses();
      const lines = (items: readonly unknown[]) => items.map((x) => `${JSON.stringify(x)}\n`).join('');
      // used ID tokens: added to what the folder already holds (a record only ever refuses a
      // replay), the later expiry winning; never dropped, with --replace either
      if (data.usedOnce?.length) {
        const used = this.#readUsedOnce();
        for (const r of data.usedOnce) {
          const until = Date.parse(r.expiresAt);
          if (typeof r.key !== 'string' || !Number.isFinite(until)) throw new MtlsError('STORE_CORRUPT', `the store holds a once-only record that is not a key and a time: ${JSON.stringify(String(r.key).slice(0, 60))}`, { hint: 'nothing was imported; check who can write to the database' });
          used[r.key] = Math.max(until, used[r.key] ?? 0);
        }
        writeFileAtomic(this.#usedOnce, JSON.stringify(used) + '\n', { mode: MODES.record });
      }
      // revoked principals: added to the folder's own (the later revocation wins), never dropped
      if (data.principalRevocations?.length) {
        checkPrincipalRevocations(data.principalRevocations);
        this.#writeRevokedPrincipals(data.principalRevocations);
      }
      if (data.retired?.length) writeFileAtomic(layout.retired, lines(data.retired), { mode: MODES.record });
      else fs.rmSync(layout.retired, { force: true });
      this.#held?.assertHeld();
      writeFileAtomic(layout.audit, lines(data.audit), { mode: MODES.record });
      writeFileAtomic(layout.index, lines(data.index), { mode: MODES.record });
    });
  }

  /**
   * Finishes or undoes an issuance a crash interrupted: certificates that reached the index get
   * their missing audit lines; files of certificates that did not are removed (they were never
   * delivered: delivery happens after the commit). Afterwards the index and issued/ agree.
   */
  #recover(): void {
    let pending: { serials: string[]; audit: AuditEvent[]; tokens?: string[] };
    try {
      pending = JSON.parse(fs.readFileSync(this.layout.pending, 'utf8'));
    } catch {
      fs.rmSync(this.layout.pending, { force: true }); // torn before its rename: nothing else was written
      return;
    }
    const indexed = new Set(this.#readIndex().filter((r) => r.op === 'issue').map((r) => r.serial));
    const audited = new Set(this.#readAudit().filter((e) => e.event === 'cert.issue').map((e) => e.serial as string));
    const missingAudit = pending.audit.filter((e) => indexed.has(e.serial as string) && !audited.has(e.serial as string));
    const undone = pending.serials.filter((s) => !indexed.has(s));
    for (const s of undone) fs.rmSync(this.layout.issuedCert(s), { force: true });
    // a token this issuance used was written with the journal: the issuance undone, it enrolls again
    // (else it is spent with no certificate to show for it, and a retry is refused as used)
    const undoneSet = new Set(undone);
    // its use file, named in the journal
    const named = (pending.tokens ?? []).flatMap((hash) => this.#tokens.byHash(hash) ?? []).filter((t) => t.usedFor !== undefined && undoneSet.has(t.usedFor));
    const given = this.#tokens.withUseFiles(named);
    this.#tokens.removeUses(given);
    const restored = named.filter((t) => given.includes(t.hash));
    // a journal of an earlier version: the use was written into tokens.json
    const raw = this.#tokens.raw();
    const inList = raw.filter((t) => t.usedFor !== undefined && undoneSet.has(t.usedFor));
    if (inList.length) {
      const list = raw.map((t) => (inList.includes(t) ? unusedToken(t) : t));
      writeFilesAtomic([this.#tokens.listFile(list)]);
      this.#tokens.written(list);
      restored.push(...inList);
    }
    appendLines(this.layout.audit, [...missingAudit.map((e) => JSON.stringify(e)), JSON.stringify({ time: new Date().toISOString(), event: 'store.recovered', actor: 'mcp-mtls', completed: missingAudit.length, undone, ...(restored.length ? { tokensRestored: restored.map((t) => t.id) } : {}) })], MODES.record);
    fs.rmSync(this.layout.pending, { force: true });
  }

  async readIndex(): Promise<IndexRecord[]> {
    return this.#readIndex();
  }

  async readAudit(): Promise<AuditEvent[]> {
    return this.#readAudit();
  }

  async readCrl(which: CrlName): Promise<Buffer | undefined> {
    return this.#readCrl(which);
  }

  async readTokens(): Promise<readonly StoredToken[]> {
    const tokens = this.#tokens.list();
    // an issuance that died before its commit point wrote its token's use with its journal; the
    // next transaction gives the token back (#recover), and a read before that sees it unused
    // already, so that a retry enrolls instead of being taken for a replay
    if (!fs.existsSync(this.layout.pending)) return tokens;
    const undone = this.#undoneSerials();
    return undone.size === 0 ? tokens : tokens.map((t) => (t.usedFor !== undefined && undone.has(t.usedFor) ? unusedToken(t) : t));
  }

  /** the serials of the pending journal not in the index: what its recovery will undo */
  #undoneSerials(): Set<string> {
    let serials: string[];
    try {
      serials = (JSON.parse(fs.readFileSync(this.layout.pending, 'utf8')) as { serials: string[] }).serials;
    } catch {
      return new Set();
    }
    const maps = this.#maps();
    return new Set(serials.filter((s) => !maps.issued.has(s)));
  }

  #readIndex(): IndexRecord[] {
    return [...this.#maps().records];
  }

  #readAudit(): AuditEvent[] {
    return readJsonLines<AuditEvent>(this.layout.audit);
  }

  /** key -> expiry (ms since the epoch) of the once-only credentials seen */
  #readUsedOnce(): Record<string, number> {
    let text: string;
    try {
      text = fs.readFileSync(this.#usedOnce, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    try {
      const v = JSON.parse(text) as unknown;
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, number>;
    } catch (cause) {
      // refusing every sign-in beats accepting replays: the operator fixes or removes the file
      throw new MtlsError('STORE_CORRUPT', `${this.#usedOnce} is not a JSON object of used credentials`, { cause, hint: 'remove it (it only holds hashes of ID tokens used in the last minutes)' });
    }
  }

  /** revoked-principals.json as last read: its file's identity (inode, size, mtime) and what it parses to */
  #revokedSeen: { stamp: string; records: Readonly<Record<string, PrincipalRevocation>> } | undefined;

  /**
   * principal URI -> its last revocation. The file is parsed again only when it changed (a write
   * renames a new file in, so another inode): a lookup per sign-in costs a stat, not a parse.
   */
  #readRevokedPrincipals(): Readonly<Record<string, PrincipalRevocation>> {
    let fd: number;
    try {
      fd = fs.openSync(this.#revokedPrincipals, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      const stamp = `${st.ino}:${st.size}:${st.mtimeNs}`;
      if (this.#revokedSeen?.stamp === stamp) return this.#revokedSeen.records;
      const text = fs.readFileSync(fd, 'utf8');
      let records: Record<string, PrincipalRevocation>;
      try {
        const v = JSON.parse(text) as unknown;
        if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
        records = Object.assign(Object.create(null) as Record<string, PrincipalRevocation>, v);
        checkPrincipalRevocations(Object.values(records));
      } catch (cause) {
        // refusing every sign-in beats accepting a revoked person's tokens: the operator restores it
        throw new MtlsError('STORE_CORRUPT', `${this.#revokedPrincipals} is not a JSON object of revoked principals`, { cause, hint: 'restore it from backup (without it, ID tokens of revoked principals issued before their revocation are accepted again)' });
      }
      this.#revokedSeen = { stamp, records };
      return records;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** adds `records` to revoked-principals.json, each principal's later revocation kept (under the lock) */
  #writeRevokedPrincipals(records: readonly PrincipalRevocation[]): void {
    const all: Record<string, PrincipalRevocation> = Object.assign(Object.create(null), this.#readRevokedPrincipals());
    for (const r of records) all[r.principal] = laterRevocation(all[r.principal], { principal: r.principal, revokedAt: r.revokedAt, reason: r.reason });
    writeFileAtomic(this.#revokedPrincipals, JSON.stringify(all, null, 1) + '\n', { mode: MODES.record });
  }

  #readCrl(which: CrlName): Buffer | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.layout.crl(which), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const block = pemDecodeAll(text).find((b) => b.label === 'X509 CRL');
    if (!block) throw new MtlsError('STORE_CORRUPT', `${this.layout.crl(which)} holds no X509 CRL`, { hint: 'run `mcp-mtls crl` to write it again' });
    return block.der;
  }

  async readIssued(serial: string): Promise<Buffer | undefined> {
    if (!/^[0-9a-f]{1,40}$/.test(serial)) return undefined;
    try {
      return readCertificates(fs.readFileSync(this.layout.issuedCert(serial)))[0];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
}

/** The token as it was before its use (shared by the stores without SQL). */
export function unusedToken({ usedAt: _u, usedFor: _f, ...token }: StoredToken): StoredToken {
  return token;
}

/** Why a token cannot be used at `now`, or undefined when it can (shared by the stores without SQL). */
export function consumeRefusal(token: StoredToken | undefined, now: Date): TokenConsumeResult | undefined {
  if (!token) return { refused: 'unknown' };
  if (token.usedAt !== undefined) return { refused: 'used' };
  if (Date.parse(token.expiresAt) <= now.getTime()) return { refused: 'expired' };
  return undefined;
}
