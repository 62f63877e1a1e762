/**
 * Where the quota interceptor keeps its counts. A bucket is one thing that has a
 * limit (`subject:alice@acme.example`, `tenant:acme`); a sandbox counts against
 * every bucket it was created under, from its reservation until its delete commits.
 */

/** One counter with its limit. */
export interface Bucket {
  /** `subject:<subject>` or `tenant:<tenant>`. */
  readonly key: string;
  readonly limit: number;
}

/** The result of a reservation: either room in every bucket, or the first bucket that is full. */
export type ReserveResult =
  | {
      readonly ok: true;
      /** Per bucket, in order: sandboxes counted including this reservation. */
      readonly counts: readonly number[];
    }
  | {
      readonly ok: false;
      /** The full bucket. */
      readonly bucket: Bucket;
      /** Running sandboxes plus live reservations in it. */
      readonly count: number;
    };

export interface BucketUsage {
  /** Sandboxes whose create committed and whose delete has not. */
  readonly running: number;
  /** Reservations taken by validate that no commit has confirmed yet and that have not expired. */
  readonly reserved: number;
}

/** A delete whose commit confirmed it: the sandbox and the buckets it no longer counts against. */
export interface ReleasedSandbox {
  readonly sandbox: string;
  readonly buckets: readonly string[];
}

/**
 * The store contract. Every method is atomic with respect to every other call on
 * the same store (across replicas for a shared store), so concurrent validates can
 * never together take more than a bucket's limit.
 */
export interface QuotaStore {
  /**
   * Drop expired reservations, then, only when every bucket has room, reserve `id`
   * in all of them until `ttlMs` from now. Reserving an id that is already reserved
   * refreshes it and does not count it twice.
   */
  reserve(buckets: readonly Bucket[], id: string, ttlMs: number): Promise<ReserveResult>;
  /**
   * A create committed: `sandbox` now runs under `buckets`. Each bucket gives up one
   * reservation: `id`, or when no reservation has that id (the create had no name yet,
   * or the handler named it differently) the bucket's oldest one. So every commit
   * turns exactly one reservation into one running sandbox. Idempotent per sandbox.
   */
  commit(buckets: readonly string[], sandbox: string, id: string): Promise<void>;
  /** `caller` asked to delete `sandbox`; remembered until `ttlMs` from now for `confirmDelete`. */
  markDelete(caller: string, sandbox: string, ttlMs: number): Promise<void>;
  /**
   * A delete by `caller` committed: take the caller's oldest pending delete that has
   * not expired, and free its sandbox from the buckets it ran under. Undefined when
   * there was none, or the sandbox was not one this store knew.
   */
  confirmDelete(caller: string): Promise<ReleasedSandbox | undefined>;
  usage(bucket: string): Promise<BucketUsage>;
  /** Release connections. */
  close(): Promise<void>;
}

/** The prefix of an anonymous reservation id (a create without a name yet). */
export const ANONYMOUS_RESERVATION = '?';

interface PendingDelete {
  readonly sandbox: string;
  readonly expiresAt: number;
}

/**
 * The store for one interceptor replica: plain maps, no I/O. Counts are lost when
 * the process restarts; run several replicas with `RedisQuotaStore` instead.
 */
export class MemoryQuotaStore implements QuotaStore {
  private readonly running = new Map<string, Set<string>>();
  /** bucket → reservation id → expiry (epoch ms); Map order is insertion order. */
  private readonly reserved = new Map<string, Map<string, number>>();
  private readonly owners = new Map<string, readonly string[]>();
  private readonly pending = new Map<string, PendingDelete[]>();

  constructor(private readonly now: () => number = Date.now) {}

  private runningOf(bucket: string): Set<string> {
    let s = this.running.get(bucket);
    if (!s) {
      s = new Set();
      this.running.set(bucket, s);
    }
    return s;
  }

  private reservedOf(bucket: string): Map<string, number> {
    let m = this.reserved.get(bucket);
    if (!m) {
      m = new Map();
      this.reserved.set(bucket, m);
    }
    const now = this.now();
    for (const [id, expiresAt] of m) if (expiresAt <= now) m.delete(id);
    return m;
  }

  async reserve(buckets: readonly Bucket[], id: string, ttlMs: number): Promise<ReserveResult> {
    const counts: number[] = [];
    for (const b of buckets) {
      const reserved = this.reservedOf(b.key);
      let count = this.runningOf(b.key).size + reserved.size;
      if (!reserved.has(id)) {
        if (count >= b.limit) return { ok: false, bucket: b, count };
        count += 1;
      }
      counts.push(count);
    }
    const expiresAt = this.now() + ttlMs;
    for (const b of buckets) {
      const reserved = this.reservedOf(b.key);
      reserved.delete(id);
      reserved.set(id, expiresAt);
    }
    return { ok: true, counts };
  }

  async commit(buckets: readonly string[], sandbox: string, id: string): Promise<void> {
    this.forget(sandbox);
    for (const b of buckets) {
      const reserved = this.reservedOf(b);
      if (!reserved.delete(id)) {
        // Map order is insertion order: the first entry is the oldest reservation.
        const oldest = reserved.keys().next();
        if (!oldest.done) reserved.delete(oldest.value);
      }
      this.runningOf(b).add(sandbox);
    }
    this.owners.set(sandbox, [...buckets]);
  }

  async markDelete(caller: string, sandbox: string, ttlMs: number): Promise<void> {
    const list = this.pending.get(caller) ?? [];
    list.push({ sandbox, expiresAt: this.now() + ttlMs });
    this.pending.set(caller, list);
  }

  async confirmDelete(caller: string): Promise<ReleasedSandbox | undefined> {
    const list = this.pending.get(caller);
    const now = this.now();
    let entry: PendingDelete | undefined;
    while (list && list.length > 0) {
      const next = list.shift()!;
      if (next.expiresAt > now) {
        entry = next;
        break;
      }
    }
    if (list && list.length === 0) this.pending.delete(caller);
    if (!entry) return undefined;
    const buckets = this.forget(entry.sandbox);
    return buckets ? { sandbox: entry.sandbox, buckets } : undefined;
  }

  /** Remove a sandbox from the buckets it ran under; returns them. */
  private forget(sandbox: string): readonly string[] | undefined {
    const buckets = this.owners.get(sandbox);
    if (!buckets) return undefined;
    for (const b of buckets) this.running.get(b)?.delete(sandbox);
    this.owners.delete(sandbox);
    return buckets;
  }

  async usage(bucket: string): Promise<BucketUsage> {
    return { running: this.runningOf(bucket).size, reserved: this.reservedOf(bucket).size };
  }

  async close(): Promise<void> {}
}
