/**
 * The current rate of a run: items finished over the last few seconds (a rolling window of
 * fixed slots, so memory is constant and old activity ages out), and the ETA it implies.
 */

export interface RateEstimatorOptions {
  /** Window the rate is measured over. @defaultValue 10_000 (10 s) */
  windowMs?: number;
  /** Slot width; the window moves in steps of this size. @defaultValue 250 */
  resolutionMs?: number;
  /** Clock (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/**
 * Items per second over the last `windowMs`. While the estimator is younger than the window,
 * the rate is measured over its age (at least one second), so the first seconds of a run show a
 * sensible number instead of a tenth of it.
 */
export class RateEstimator {
  private readonly windowMs: number;
  private readonly resolutionMs: number;
  private readonly now: () => number;
  private readonly since: number;
  private readonly counts: Float64Array;
  private readonly slotIds: Float64Array;

  constructor(opts: RateEstimatorOptions = {}) {
    this.windowMs = Math.max(1, opts.windowMs ?? 10_000);
    this.resolutionMs = Math.max(1, Math.min(opts.resolutionMs ?? 250, this.windowMs));
    this.now = opts.now ?? Date.now;
    this.since = this.now();
    const slots = Math.ceil(this.windowMs / this.resolutionMs);
    this.counts = new Float64Array(slots);
    this.slotIds = new Float64Array(slots).fill(-1);
  }

  /** Records `n` items finished at `at` (default now). */
  add(n = 1, at: number = this.now()): void {
    const id = Math.floor(at / this.resolutionMs);
    const i = id % this.counts.length;
    if (this.slotIds[i] !== id) {
      this.slotIds[i] = id;
      this.counts[i] = 0;
    }
    this.counts[i] = (this.counts[i] ?? 0) + n;
  }

  /** Items per second over the window ending at `at` (default now). */
  rate(at: number = this.now()): number {
    const current = Math.floor(at / this.resolutionMs);
    const oldest = current - this.counts.length + 1;
    let sum = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const id = this.slotIds[i] ?? -1;
      if (id >= oldest && id <= current) sum += this.counts[i] ?? 0;
    }
    // The window really spans from the start of its oldest slot to now (the current slot is
    // only partly elapsed), and no further back than the estimator's birth.
    const span = Math.max(1000, Math.min(at - oldest * this.resolutionMs, at - this.since));
    return sum / (span / 1000);
  }
}

/** Seconds left at `ratePerSecond` for `remaining` items; null when the rate is zero (unknown). */
export function etaSeconds(remaining: number, ratePerSecond: number): number | null {
  if (remaining <= 0) return 0;
  if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) return null;
  return Math.ceil(remaining / ratePerSecond);
}
