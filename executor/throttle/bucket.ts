/**
 * The shared rate bucket of a run: every worker of every process reserves its batches of items
 * from one bucket, kept in Redis (redis-bucket.ts) or in the state store (state-bucket.ts).
 *
 * The algorithm is GCRA (generic cell rate algorithm) with reservations. The bucket holds one
 * number, `tat` (theoretical arrival time: when it is next free). Reserving n items is one atomic
 * step on the bucket's own clock:
 *
 *     start := max(tat, now)        tat := start + n / itemsPerSecond
 *
 * and the caller waits until `start` before it starts the n items. Consequences:
 * - Items start at `itemsPerSecond` on average whatever the number of workers and machines:
 *   consecutive reservations are exactly n / itemsPerSecond apart while the bucket is busy.
 * - **Burst**: the bucket stores no tokens (its capacity is zero items beyond the batch being
 *   reserved), so an idle bucket lets one batch start at once and never more; over any window of
 *   W seconds the reservations that start cover at most `itemsPerSecond × W + one batch` items.
 * - Waiting happens after the reservation, so a late timer or a slow round trip does not lose
 *   time: the next reservation queues behind this one, not behind `now`. A reservation whose
 *   caller gives up (pause, stop, a probe tripping) is simply unused: the run goes slower, never
 *   faster.
 * - Only the bucket's clock (Redis `TIME`, or the database's `clock_timestamp()`) is read; the
 *   callers only sleep for the relative wait they are told, so machines' clocks do not matter.
 *
 * A bucket that cannot be reached fails closed: no batch is granted while it is unreachable
 * (the workers hold, with their leases), and after `outageTimeoutMs` the owner is told so it can
 * stop the stage (exit 4, resumable) rather than wait forever.
 */
import type { RateLimiter } from './limiter.js';
import { sleep } from './limiter.js';

/** Where a bucket lives: reserves `n` items, resolving with microseconds until their slot starts (<= 0: now). */
export interface BucketBackend {
  reserve(n: number, microsPerItem: number): Promise<number>;
  /** What to call it in messages (`redis events (redis://…)`, `the state store`). */
  readonly label: string;
  close?(): Promise<void>;
}

export interface SharedBucketOptions {
  itemsPerSecond: number;
  /**
   * How long the bucket may stay unreachable before `onOutage` is called. While unreachable no
   * batch is granted (fail closed). @defaultValue 60000
   */
  outageTimeoutMs?: number;
  /** The bucket could not be reached (called once per outage). */
  onUnreachable?(error: Error): void;
  /** The bucket is reachable again after `afterMs` of outage. */
  onReachable?(afterMs: number): void;
  /** The outage lasted `outageTimeoutMs`: the owner should stop the stage. Acquire keeps holding until aborted. */
  onOutage?(error: Error): void;
  /** Clock for outage timing (epoch ms). @defaultValue Date.now */
  now?: () => number;
  /**
   * The share of the rate this process may use now (the live guard's ramp after a resume): a
   * batch reserves its items' time divided by it. @defaultValue () => 1
   */
  pace?: () => number;
}

/** The smallest pace a reservation honours (a batch never reserves more than 64× its time). */
const MIN_PACE = 1 / 64;

/** Retry delays while the bucket is unreachable: 100 ms doubling to 2 s. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;

export class SharedBucket implements RateLimiter {
  private readonly microsPerItem: number;
  private readonly now: () => number;
  private outageSince: number | undefined;
  private outageReported = false;

  constructor(readonly backend: BucketBackend, private readonly opts: SharedBucketOptions) {
    if (!(opts.itemsPerSecond > 0) || !Number.isFinite(opts.itemsPerSecond)) throw new RangeError(`itemsPerSecond must be a positive number, got ${opts.itemsPerSecond}`);
    this.microsPerItem = 1e6 / opts.itemsPerSecond;
    this.now = opts.now ?? Date.now;
  }

  /** Whether the bucket is currently unreachable. */
  get unreachable(): boolean {
    return this.outageSince !== undefined;
  }

  async acquire(n: number, signal?: AbortSignal): Promise<void> {
    let retry = RETRY_MIN_MS;
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      let waitUs: number;
      try {
        const pace = Math.min(1, Math.max(MIN_PACE, this.opts.pace?.() ?? 1));
        waitUs = await this.backend.reserve(Math.max(1, Math.ceil(n)), this.microsPerItem / pace);
      } catch (e) {
        this.failed(e as Error);
        await sleep(retry, signal);
        retry = Math.min(retry * 2, RETRY_MAX_MS);
        continue;
      }
      this.reached();
      if (waitUs > 0) await sleep(waitUs / 1000, signal);
      return;
    }
  }

  async close(): Promise<void> {
    await this.backend.close?.();
  }

  private failed(e: Error): void {
    const now = this.now();
    if (this.outageSince === undefined) {
      this.outageSince = now;
      this.outageReported = false;
      this.opts.onUnreachable?.(e);
    }
    if (!this.outageReported && now - this.outageSince >= (this.opts.outageTimeoutMs ?? 60_000)) {
      this.outageReported = true;
      this.opts.onOutage?.(e);
    }
  }

  private reached(): void {
    if (this.outageSince === undefined) return;
    const afterMs = this.now() - this.outageSince;
    this.outageSince = undefined;
    this.opts.onReachable?.(afterMs);
  }
}
