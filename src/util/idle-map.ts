/**
 * A Map for session tables: entries unused for `idleMs` expire and the table holds at most `max`
 * (the least recently used goes first). Recency is the Map's insertion order (a touched entry is
 * re-inserted), so expiry looks at the front only: O(1) amortized, no timers. Written here: the
 * LRU packages on npm add timers or per-entry TTL bookkeeping this does not need.
 */
export class IdleMap<K, V> {
  readonly #entries = new Map<K, { value: V; at: number }>();

  constructor(
    private readonly options: { idleMs: number; max: number; now?: () => number; onEvict?: (key: K, value: V) => void },
  ) {}

  #now(): number {
    return this.options.now ? this.options.now() : Date.now();
  }

  #expire(now: number): void {
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.options.max && now - e.at < this.options.idleMs) break;
      this.#entries.delete(k);
      this.options.onEvict?.(k, e.value);
    }
  }

  /** the value, marked as used now; undefined if absent or expired */
  get(key: K): V | undefined {
    const now = this.#now();
    this.#expire(now);
    const e = this.#entries.get(key);
    if (!e) return undefined;
    // re-inserted to move it to the back; the same record, so a hit allocates nothing
    e.at = now;
    this.#entries.delete(key);
    this.#entries.set(key, e);
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
    this.#expire(now);
  }

  /** Drops the least recently used entry (telling onEvict), e.g. to keep a budget other than `max`; false when empty. */
  evictOldest(): boolean {
    for (const [k, e] of this.#entries) {
      this.#entries.delete(k);
      this.options.onEvict?.(k, e.value);
      return true;
    }
    return false;
  }

  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  values(): V[] {
    return [...this.#entries.values()].map((e) => e.value);
  }

  clear(): void {
    this.#entries.clear();
  }
}
