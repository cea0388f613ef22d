/**
 * Stall detection: no committed progress for `stallAfter` is a stall. The watch fires `onStall`
 * once per episode and `onRecover` when progress comes back; the executor wires these to the
 * alert webhook (./alert.ts), `reprise_stalled`, its log and the plan's `onStall` action.
 */

/** What `onStall` and `onRecover` are told. */
export interface StallInfo {
  /** Epoch ms of the last progress (or of `start()` when there has been none). */
  lastProgressAt: number;
  /** How long without progress when the callback runs. */
  stalledForMs: number;
}

export interface StallWatchOptions {
  /** No progress for this long is a stall (the plan's `abort.stallAfter`). */
  stallAfterMs: number;
  /** Called once when a stall begins. Errors and rejections go to `onError`, never thrown. */
  onStall: (info: StallInfo) => void | Promise<void>;
  /** Called once when progress resumes after a stall. */
  onRecover?: (info: StallInfo) => void | Promise<void>;
  /** Receives what a callback threw or rejected with. @defaultValue ignore */
  onError?: (err: unknown) => void;
  /** Period of the check. @defaultValue stallAfterMs / 10, between 50 ms and 5 s */
  checkEveryMs?: number;
  /** Clock (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/**
 * Watches for stalls. `start()` begins the clock and the periodic check (an unref'd timer, so
 * it never keeps the process alive); `progress()` resets the clock; `suspend()` stops judging
 * while the run is paused on purpose (a paused run is not stalled) and `resume()` restarts the
 * clock; `stop()` ends the watch. `check()` runs one check now (tests and callers with their
 * own loop).
 */
export class StallWatch {
  private readonly opts: StallWatchOptions;
  private readonly now: () => number;
  private lastProgressAt: number;
  private stalledNow = false;
  private suspended = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: StallWatchOptions) {
    if (!(opts.stallAfterMs > 0)) throw new RangeError('stallAfterMs must be positive');
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.lastProgressAt = this.now();
  }

  /** Whether a stall episode is in progress. */
  get stalled(): boolean {
    return this.stalledNow;
  }

  /** Epoch ms of the last progress. */
  get lastProgress(): number {
    return this.lastProgressAt;
  }

  start(): this {
    this.lastProgressAt = this.now();
    if (!this.timer) {
      const every = this.opts.checkEveryMs ?? Math.min(5_000, Math.max(50, Math.floor(this.opts.stallAfterMs / 10)));
      this.timer = setInterval(() => this.check(), every);
      this.timer.unref?.();
    }
    return this;
  }

  /** Committed progress: resets the clock and ends a stall episode. */
  progress(): void {
    const at = this.now();
    const before = this.lastProgressAt;
    this.lastProgressAt = at;
    if (this.stalledNow) {
      this.stalledNow = false;
      this.call(this.opts.onRecover, { lastProgressAt: before, stalledForMs: at - before });
    }
  }

  /** Stops judging (an operator paused the run, or a protect probe holds it at zero). */
  suspend(): void {
    this.suspended = true;
  }

  /**
   * Judges again, with the clock restarted now. An open episode closes without `onRecover` (the
   * run was paused, not recovered), so a run that is still stuck after a resume alerts again.
   */
  resume(): void {
    this.suspended = false;
    this.stalledNow = false;
    this.lastProgressAt = this.now();
  }

  /** One check: fires `onStall` if the run has just become stalled. Returns whether it is stalled. */
  check(): boolean {
    if (this.suspended || this.stalledNow) return this.stalledNow;
    const at = this.now();
    if (at - this.lastProgressAt >= this.opts.stallAfterMs) {
      this.stalledNow = true;
      this.call(this.opts.onStall, { lastProgressAt: this.lastProgressAt, stalledForMs: at - this.lastProgressAt });
    }
    return this.stalledNow;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private call(fn: ((info: StallInfo) => void | Promise<void>) | undefined, info: StallInfo): void {
    if (!fn) return;
    const onError = this.opts.onError ?? (() => {});
    try {
      const r = fn(info);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).then(undefined, onError);
    } catch (e) {
      onError(e);
    }
  }
}
