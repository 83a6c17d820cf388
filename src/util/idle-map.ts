/**
 * A Map for session tables: entries unused for `idleMs` expire and the table holds at most `max`
 * (the least recently used goes first). Recency is the Map's insertion order (a touched entry is
 * re-inserted), so expiry looks at the front only: O(1) amortized, no timers. Written here: the
 * LRU packages on npm add timers or per-entry TTL bookkeeping this does not need.
 */
const NONE: unique symbol = Symbol('none');

export class IdleMap<K, V> {
  readonly #entries = new Map<K, { value: V; at: number }>();
  /** the most recently used key (the Map's last): a hit on it needs no re-insertion */
  #last: K | typeof NONE = NONE;
  /** when the front was last swept: at the same clock reading (and within the cap) nothing more can have expired */
  #swept = Number.NaN;

  constructor(
    private readonly options: { idleMs: number; max: number; now?: () => number; onEvict?: (key: K, value: V) => void },
  ) {}

  #now(): number {
    return this.options.now ? this.options.now() : Date.now();
  }

  #expire(now: number): void {
    if (now === this.#swept && this.#entries.size <= this.options.max) return;
    this.#swept = now;
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.options.max && now - e.at < this.options.idleMs) break;
      this.#entries.delete(k);
      if (k === this.#last) this.#last = NONE;
      this.options.onEvict?.(k, e.value);
    }
  }

  /** the value, marked as used now; undefined if absent or expired */
  get(key: K): V | undefined {
    const now = this.#now();
    this.#expire(now);
    const e = this.#entries.get(key);
    if (!e) return undefined;
    // re-inserted to move it to the back; the same record, so a hit allocates nothing (and a
    // hit on the last one used is not moved at all: a Map's deletions leave holes that make it
    // rebuild its table every few re-insertions)
    e.at = now;
    if (key !== this.#last) {
      this.#entries.delete(key);
      this.#entries.set(key, e);
      this.#last = key;
    }
    return e.value;
  }

  has(key: K): boolean {
    this.#expire(this.#now());
    return this.#entries.has(key);
  }

  set(key: K, value: V): void {
    const now = this.#now();
    this.#entries.delete(key);
    this.#entries.set(key, { value, at: now });
    this.#last = key;
    this.#expire(now);
  }

  /** Drops the least recently used entry (telling onEvict), e.g. to keep a budget other than `max`; false when empty. */
  evictOldest(): boolean {
    for (const [k, e] of this.#entries) {
      this.#entries.delete(k);
      if (k === this.#last) this.#last = NONE;
      this.options.onEvict?.(k, e.value);
      return true;
    }
    return false;
  }

  delete(key: K): boolean {
    if (key === this.#last) this.#last = NONE;
    return this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  values(): V[] {
    return [...this.#entries.values()].map((e) => e.value);
  }

  clear(): void {
    this.#last = NONE;
    this.#entries.clear();
  }
}
