/**
 * An in-memory Store: for benchmarks of the issuance engine without disk, and for tests of
 * code above the store. Same contract as the folder store, nothing persisted.
 */
import { MtlsError } from '../../errors.js';
import { parseCrl } from '../../x509/crl.js';
import { consumeRefusal, unusedToken } from './fs-store.js';
import { IndexMapLookups } from './index-map-lookups.js';
import { IndexMaps, laterRevocation, renewalFromMaps, type AuditEvent, type PrincipalRevocation, type CrlName, type IndexRecord, type Store, type StoredToken, type StoreTransaction } from './store.js';

/** A Store in memory, with the folder store's contract and nothing persisted: for tests and benchmarks. */
export class MemoryStore extends IndexMapLookups implements Store {
  readonly location = 'memory';
  readonly #index: IndexRecord[] = [];
  /** #index by key (lookups without a scan), rebuilt when removeRecords rewrites the index */
  #maps = new IndexMaps();
  readonly #audit: AuditEvent[] = [];
  readonly #issued = new Map<string, Buffer>();
  readonly #crls = new Map<CrlName, Buffer>();
  readonly #tokens: StoredToken[] = [];
  readonly #crlNumbers = new Map<CrlName, bigint>();
  readonly #retired = new Set<string>();
  readonly #usedOnce = new Map<string, number>();
  readonly #revokedPrincipals = new Map<string, PrincipalRevocation>();
  #tail: Promise<unknown> = Promise.resolve();

  transaction<T>(fn: (tx: StoreTransaction) => T | Promise<T>): Promise<T> {
    // serialise like the folder store's lock does
    const run = this.#tail.then(() => fn(this.#tx()));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {}

  #tx(): StoreTransaction {
    return {
      serialExists: async (serial) => this.#issued.has(serial) || this.#retired.has(serial),
      commitIssued: async (items, audit) => {
        for (const { record } of items) {
          if (this.#issued.has(record.serial) || this.#retired.has(record.serial)) throw new MtlsError('SERIAL_TAKEN', `serial ${record.serial} is taken`);
        }
        for (const { record, der } of items) this.#issued.set(record.serial, Buffer.from(der));
        for (const { record } of items) {
          this.#index.push(record);
          this.#maps.add(record);
        }
        this.#audit.push(...audit);
      },
      appendAudit: async (events) => {
        this.#audit.push(...events);
      },
      commitRevocation: async (record, audit) => {
        this.#index.push(record);
        this.#maps.add(record);
        this.#audit.push(audit);
      },
      writeCrl: async (which, der) => {
        this.#crls.set(which, Buffer.from(der));
      },
      readIndex: async () => [...this.#index],
      ...this.lookups(),
      renewalOf: async (serial) => renewalFromMaps(this.#maps, serial),
      readCrl: async (which) => this.#crls.get(which),
      useOnce: async (key, expiresAt, now) => {
        for (const [k, until] of this.#usedOnce) if (until <= now.getTime()) this.#usedOnce.delete(k);
        if (this.#usedOnce.has(key)) return false;
        this.#usedOnce.set(key, expiresAt.getTime());
        return true;
      },
      putToken: async (token) => {
        if (this.#tokens.some((t) => t.hash === token.hash || t.id === token.id)) {
          throw new MtlsError('BAD_ARGUMENT', `an enrollment token with id ${token.id} or the same secret exists already`, { hint: 'create a new token' });
        }
        this.#tokens.push({ ...token });
      },
      consumeToken: async (hash, now, serial) => {
        const i = this.#tokens.findIndex((t) => t.hash === hash);
        const refused = consumeRefusal(this.#tokens[i], now);
        if (refused) return refused;
        const token = unusedToken(this.#tokens[i] as StoredToken);
        this.#tokens[i] = { ...token, usedAt: now.toISOString(), ...(serial ? { usedFor: serial } : {}) };
        return { token };
      },
      dropUnusedTokens: async (kind, id) => {
        const dropped = this.#tokens.filter((t) => t.usedAt === undefined && t.claims.kind === kind && t.claims.id === id);
        for (const t of dropped) this.#tokens.splice(this.#tokens.indexOf(t), 1);
        return dropped.map((t) => t.id);
      },
      nextCrlNumber: async (which) => {
        // strictly increasing even when a number is drawn and its CRL never written
        const stored = this.#crls.get(which);
        const written = stored ? (parseCrl(stored).number ?? 0n) : 0n;
        const drawn = this.#crlNumbers.get(which) ?? 0n;
        const next = (written > drawn ? written : drawn) + 1n;
        this.#crlNumbers.set(which, next);
        return next;
      },
      removeRecords: async (serials, audit) => {
        if (serials.length === 0) return;
        const gone = new Set(serials);
        for (const x of serials) {
          this.#retired.add(x);
          this.#issued.delete(x);
        }
        this.#index.splice(0, this.#index.length, ...this.#index.filter((r) => !gone.has(r.serial)));
        this.#maps = new IndexMaps(this.#index);
        this.#audit.push(audit);
      },
      recordPrincipalRevocation: async (record) => {
        this.#revokedPrincipals.set(record.principal, laterRevocation(this.#revokedPrincipals.get(record.principal), { ...record }));
      },
    };
  }

  async readIndex(): Promise<IndexRecord[]> {
    return [...this.#index];
  }

  protected indexMaps(): IndexMaps {
    return this.#maps;
  }

  protected revokedPrincipal(principal: string): PrincipalRevocation | undefined {
    return this.#revokedPrincipals.get(principal);
  }

  async readIssued(serial: string): Promise<Buffer | undefined> {
    return this.#issued.get(serial);
  }

  async readCrl(which: CrlName): Promise<Buffer | undefined> {
    return this.#crls.get(which);
  }

  async readAudit(): Promise<AuditEvent[]> {
    return [...this.#audit];
  }

  async readTokens(): Promise<readonly StoredToken[]> {
    return this.#tokens.map((t) => ({ ...t }));
  }
}
