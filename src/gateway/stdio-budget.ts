/**
 * How many stdio upstream processes may run: at most `max` per upstream (its `maxProcesses`)
 * and at most `total` across every stdio upstream of the gateway (gateway.yaml
 * `stdioLimits.maxProcesses`). A process is counted from its start until it has exited, so
 * the number alive never passes a cap, not even while a stopped one is still exiting.
 *
 * A start that would pass a cap waits: the least recently used idle process (no request in
 * flight) that makes room is stopped, and the start goes ahead once it has exited. When no
 * process is idle the start waits in a bounded queue (FIFO) until one becomes idle or exits;
 * a full queue, or a wait longer than `queueTimeoutMs`, is refused with a
 * {@link ProcessLimitError}, which the upstream answers 503 with `Retry-After`.
 */

/** A running process the budget may stop to make room. */
export interface IdleProcess {
  readonly lastUsed: number;
  readonly lease: Lease;
  /** stops it (logged by its upstream); its lease is released when it has exited */
  stop(): void;
}

/** One stdio upstream as the budget sees it. */
export interface BudgetMember {
  readonly name: string;
  /** its own cap */
  readonly max: number;
  /** its running processes with no request in flight, that are not stopping already */
  idle(): IdleProcess[];
}

/** The right to run one process; released once, when the process has exited (or never started). */
export interface Lease {
  readonly member: BudgetMember;
  /** the budget stopped it to make room: its exit frees room promised to a waiter */
  markStopped(): void;
  release(): void;
}

/** A start refused at the cap: the queue is full or the wait too long. */
export class ProcessLimitError extends Error {
  constructor(
    message: string,
    /** seconds, for `Retry-After` */
    readonly retryAfter: number,
  ) {
    super(message);
  }
}

export interface BudgetLimits {
  /** processes across every member; undefined: no total cap */
  readonly total?: number;
  /** starts that may wait at once; more are refused at once */
  readonly queueLength: number;
  /** how long a start may wait */
  readonly queueTimeoutMs: number;
}

/**
 * A process used less than this long ago is not stopped to make room: a caller that just
 * opened its session (or got an answer) sends its next request within it, instead of finding
 * its process stopped for another caller and waiting for a new one (measured with 20
 * principals over 8 processes: without it most starts were for a process stopped a moment before).
 */
export const EVICT_GRACE_MS = 1_000;

interface Waiter {
  readonly member: BudgetMember;
  readonly resolve: (lease: Lease) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

type Counts = { live: number };

export class ProcessBudget {
  readonly limits: BudgetLimits;
  readonly #members = new Map<BudgetMember, Counts>();
  readonly #queue: Waiter[] = [];
  #live = 0;
  /** processes this budget stopped and that have not exited yet: each makes room for one waiter */
  #stopping = 0;
  #pumpScheduled = false;
  #graceTimer: NodeJS.Timeout | undefined;
  /** for /metrics: processes stopped to make room, starts refused (queue full), starts that waited too long */
  readonly stats = { evicted: 0, refused: 0, timedOut: 0, queuedTotal: 0 };

  constructor(limits: BudgetLimits) {
    this.limits = limits;
  }

  join(member: BudgetMember): void {
    if (!this.#members.has(member)) this.#members.set(member, { live: 0 });
  }

  /** Processes alive (started, not exited), per member and in total, and starts waiting. */
  counts(member?: BudgetMember): { live: number; queued: number } {
    if (member) return { live: this.#members.get(member)?.live ?? 0, queued: this.#queue.filter((w) => w.member === member).length };
    return { live: this.#live, queued: this.#queue.length };
  }

  /** A lease for one more process of `member`: at once when both caps allow, else after making room or waiting. */
  acquire(member: BudgetMember): Promise<Lease> {
    this.join(member);
    if (this.#queue.length === 0 && this.#fits(member)) return Promise.resolve(this.#grant(member));
    if (this.#queue.length >= this.limits.queueLength) {
      this.stats.refused++;
      return Promise.reject(new ProcessLimitError(`${this.#capText(member)}; ${this.#queue.length} requests wait for a process already: try again later`, Math.max(1, Math.ceil(this.limits.queueTimeoutMs / 1000))));
    }
    return new Promise<Lease>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#queue.indexOf(waiter);
        if (i === -1) return;
        this.#queue.splice(i, 1);
        this.stats.timedOut++;
        reject(new ProcessLimitError(`${this.#capText(member)}, each with a request in flight, and none was free within ${this.limits.queueTimeoutMs} ms: try again later`, Math.max(1, Math.ceil(this.limits.queueTimeoutMs / 1000))));
      }, this.limits.queueTimeoutMs);
      timer.unref();
      const waiter: Waiter = { member, resolve, reject, timer };
      this.#queue.push(waiter);
      this.stats.queuedTotal++;
      this.#pump();
    });
  }

  /** A member's process became idle: a waiter may have it stopped. Deferred, so requests about to be sent to a process just started are in flight first. */
  changed(): void {
    if (this.#pumpScheduled || this.#queue.length === 0) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** Refuses every waiter (the gateway is stopping). */
  close(): void {
    clearTimeout(this.#graceTimer);
    for (const w of this.#queue.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error('the gateway is stopping'));
    }
  }

  #capText(member: BudgetMember): string {
    const own = this.#members.get(member)!.live >= member.max;
    return own ? `at most ${member.max} processes run for ${member.name}` : `at most ${this.limits.total} stdio upstream processes run in total`;
  }

  #fits(member: BudgetMember): boolean {
    return this.#members.get(member)!.live < member.max && (this.limits.total === undefined || this.#live < this.limits.total);
  }

  #grant(member: BudgetMember): Lease {
    const counts = this.#members.get(member)!;
    counts.live++;
    this.#live++;
    let released = false;
    let stoppedByUs = false;
    const lease: Lease = {
      member,
      markStopped: () => {
        if (!stoppedByUs && !released) {
          stoppedByUs = true;
          this.#stopping++;
        }
      },
      release: () => {
        if (released) return;
        released = true;
        counts.live--;
        this.#live--;
        if (stoppedByUs) this.#stopping--;
        this.#pump();
      },
    };
    return lease;
  }

  /** Grants every waiter that fits (in order), and has idle processes stopped for the others, one per waiter. */
  #pump(): void {
    let promised = 0;
    for (const w of [...this.#queue]) {
      if (this.#fits(w.member)) {
        this.#queue.splice(this.#queue.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(this.#grant(w.member));
        continue;
      }
      // a process stopped earlier and still exiting makes room for this waiter
      if (promised < this.#stopping) {
        promised++;
        continue;
      }
      // at its own cap, only one of its own processes makes room; at the total cap, anyone's
      const ownCap = this.#members.get(w.member)!.live >= w.member.max;
      const candidates = (ownCap ? w.member.idle() : [...this.#members.keys()].flatMap((m) => m.idle())).sort((a, b) => a.lastUsed - b.lastUsed);
      const now = Date.now();
      const victim = candidates[0];
      if (!victim) continue;
      if (now - victim.lastUsed < EVICT_GRACE_MS) {
        // used a moment ago: look again when its grace is over
        if (!this.#graceTimer) {
          this.#graceTimer = setTimeout(() => {
            this.#graceTimer = undefined;
            this.#pump();
          }, EVICT_GRACE_MS - (now - victim.lastUsed) + 5);
          this.#graceTimer.unref();
        }
        continue;
      }
      victim.lease.markStopped();
      promised++;
      this.stats.evicted++;
      victim.stop();
    }
  }
}
