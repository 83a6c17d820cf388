/**
 * An in-memory Store: for benchmarks of the issuance engine without disk, and for tests of
 * code above the store. Same contract as the folder store, nothing persisted.
 */
import type { AuditEvent, CrlName, IndexRecord, Store, StoreTransaction } from './store.js';

export class MemoryStore implements Store {
  readonly #index: IndexRecord[] = [];
  readonly #audit: AuditEvent[] = [];
  readonly #issued = new Map<string, Buffer>();
  readonly #crls = new Map<CrlName, Buffer>();
  #tail: Promise<unknown> = Promise.resolve();

  transaction<T>(fn: (tx: StoreTransaction) => T | Promise<T>): Promise<T> {
    // serialise like the folder store's lock does
    const run = this.#tail.then(() => fn(this.#tx()));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #tx(): StoreTransaction {
    return {
      serialExists: (serial) => this.#issued.has(serial),
      commitIssued: (items, audit) => {
        for (const { record, der } of items) this.#issued.set(record.serial, Buffer.from(der));
        this.#index.push(...items.map((i) => i.record));
        this.#audit.push(...audit);
      },
      appendAudit: (events) => {
        this.#audit.push(...events);
      },
      commitRevocation: (record, audit) => {
        this.#index.push(record);
        this.#audit.push(audit);
      },
      writeCrl: (which, der) => {
        this.#crls.set(which, Buffer.from(der));
      },
    };
  }

  readIndex(): IndexRecord[] {
    return [...this.#index];
  }

  readIssued(serial: string): Buffer | undefined {
    return this.#issued.get(serial);
  }

  readCrl(which: CrlName): Buffer | undefined {
    return this.#crls.get(which);
  }

  readAudit(): AuditEvent[] {
    return [...this.#audit];
  }
}
