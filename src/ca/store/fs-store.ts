/**
 * The folder store: issued/<serial>.crt for every certificate, index.jsonl (append-only
 * records), audit.log (append-only JSON lines), crl/, and a cross-process lock
 * (util/lock.ts: a dead owner's lock is taken over at once, a live one never).
 *
 * Commit order, for crash safety: certificate files (fsynced), then the index line (the
 * commit point), then the audit line. A crash before the index line leaves an unlisted
 * certificate file whose serial is still never reused (serialExists looks at issued/).
 */
import fs from 'node:fs';
import { MtlsError } from '../../errors.js';
import { acquireLock, type HeldLock } from '../../util/lock.js';
import { pemDecodeAll, pemEncode, readCertificates } from '../../x509/pem.js';
import { caLayout, MODES, type CaLayout } from '../layout.js';
import { appendLines, readJsonLines, writeFileAtomic, writeFilesAtomic } from '../../util/atomic-file.js';
import type { AuditEvent, CrlName, IndexRecord, Store, StoreTransaction } from './store.js';

export interface FsStoreOptions {
  /** how long to wait for the lock before giving up */
  waitMs?: number;
  /**
   * Fault injection for the crash tests: the process kills itself (SIGKILL) when it reaches
   * this point of a commit. Points: after-journal, after-files, after-index, after-audit.
   */
  crashAt?: string;
}

export class FsStore implements Store {
  readonly layout: CaLayout;
  readonly #waitMs: number;
  readonly #crashAt: string | undefined;

  constructor(dir: string, options: FsStoreOptions = {}) {
    this.layout = caLayout(dir);
    this.#waitMs = options.waitMs ?? 60_000;
    this.#crashAt = options.crashAt;
  }

  async transaction<T>(fn: (tx: StoreTransaction) => T | Promise<T>): Promise<T> {
    const lock = await acquireLock(`${this.layout.lock}.lock`, { waitMs: this.#waitMs });
    try {
      if (fs.existsSync(this.layout.pending)) this.#recover();
      return await fn(this.#tx(lock));
    } finally {
      lock.release();
    }
  }

  #tx(lock: HeldLock): StoreTransaction {
    const layout = this.layout;
    const point = (name: string) => {
      if (this.#crashAt === name) process.kill(process.pid, 'SIGKILL');
    };
    return {
      serialExists: (serial) => fs.existsSync(layout.issuedCert(serial)),
      commitIssued: (items, audit) => {
        lock.assertHeld();
        fs.mkdirSync(layout.issuedDir, { recursive: true, mode: 0o755 });
        // a journal first, so that a crash at any point below is finished or undone by the
        // next transaction (#recover); then the certificate files, then the index line (the
        // commit point), then the audit lines
        writeFileAtomic(layout.pending, JSON.stringify({ serials: items.map((i) => i.record.serial), audit }), { mode: MODES.record });
        point('after-journal');
        writeFilesAtomic(items.map(({ record, der }) => ({ file: layout.issuedCert(record.serial), data: pemEncode('CERTIFICATE', der), mode: MODES.cert, exclusive: true })));
        point('after-files');
        appendLines(layout.index, items.map((i) => JSON.stringify(i.record)), MODES.record);
        point('after-index');
        appendLines(layout.audit, audit.map((a) => JSON.stringify(a)), MODES.record);
        point('after-audit');
        fs.rmSync(layout.pending, { force: true });
      },
      appendAudit: (events) => appendLines(layout.audit, events.map((a) => JSON.stringify(a)), MODES.record),
      commitRevocation: (record, audit) => {
        lock.assertHeld();
        appendLines(layout.index, [JSON.stringify(record)], MODES.record);
        appendLines(layout.audit, [JSON.stringify(audit)], MODES.record);
      },
      writeCrl: (which, der) => {
        lock.assertHeld();
        fs.mkdirSync(layout.crlDir, { recursive: true, mode: 0o755 });
        writeFileAtomic(layout.crl(which), pemEncode('X509 CRL', der), { mode: MODES.cert });
      },
    };
  }

  /**
   * Finishes or undoes an issuance a crash interrupted: certificates that reached the index get
   * their missing audit lines; files of certificates that did not are removed (they were never
   * delivered: delivery happens after the commit). Afterwards the index and issued/ agree.
   */
  #recover(): void {
    let pending: { serials: string[]; audit: AuditEvent[] };
    try {
      pending = JSON.parse(fs.readFileSync(this.layout.pending, 'utf8'));
    } catch {
      fs.rmSync(this.layout.pending, { force: true }); // torn before its rename: nothing else was written
      return;
    }
    const indexed = new Set(this.readIndex().filter((r) => r.op === 'issue').map((r) => r.serial));
    const audited = new Set(this.readAudit().filter((e) => e.event === 'cert.issue').map((e) => e.serial as string));
    const missingAudit = pending.audit.filter((e) => indexed.has(e.serial as string) && !audited.has(e.serial as string));
    const undone = pending.serials.filter((s) => !indexed.has(s));
    for (const s of undone) fs.rmSync(this.layout.issuedCert(s), { force: true });
    appendLines(this.layout.audit, [...missingAudit.map((e) => JSON.stringify(e)), JSON.stringify({ time: new Date().toISOString(), event: 'store.recovered', actor: 'mcp-mtls', completed: missingAudit.length, undone })], MODES.record);
    fs.rmSync(this.layout.pending, { force: true });
  }

  readIndex(): IndexRecord[] {
    return readJsonLines<IndexRecord>(this.layout.index);
  }

  readAudit(): AuditEvent[] {
    return readJsonLines<AuditEvent>(this.layout.audit);
  }

  readCrl(which: CrlName): Buffer | undefined {
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

  readIssued(serial: string): Buffer | undefined {
    if (!/^[0-9a-f]{1,40}$/.test(serial)) return undefined;
    try {
      return readCertificates(fs.readFileSync(this.layout.issuedCert(serial)))[0];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
}
