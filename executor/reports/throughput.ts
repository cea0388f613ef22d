/**
 * Builders for the time-based parts of a report, with bounded memory whatever the run length:
 * `ThroughputRecorder` (the `throughput` chart buckets) and `ThrottleRecorder` (the `throttle`
 * section). The executor feeds them as items finish and probes trip; `toJSON()` gives the report
 * field.
 */
import type { ReportThrottle, ThrottleEpisode, ThroughputBucket } from '../../schema/report.types.js';

export interface ThroughputRecorderOptions {
  /** Stage start, epoch milliseconds. Bucket 0 starts here. */
  startedAt: number;
  /** Most buckets kept; when exceeded, the bucket width doubles and neighbours merge. @defaultValue 120 */
  maxBuckets?: number;
  /** Width of a bucket at first, in seconds. @defaultValue 1 */
  initialWidthSeconds?: number;
  /** Clock (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/**
 * Items finished per time bucket. Buckets are contiguous, of equal width, and start at t = 0;
 * the width starts at one second and doubles whenever the run outgrows `maxBuckets`, so a
 * ten-second canary and a ten-hour backfill both give a chart of at most `maxBuckets` bars.
 */
export class ThroughputRecorder {
  private readonly startedAt: number;
  private readonly maxBuckets: number;
  private readonly now: () => number;
  private widthMs: number;
  private buckets: number[] = [];

  constructor(opts: ThroughputRecorderOptions) {
    this.startedAt = opts.startedAt;
    this.maxBuckets = Math.max(2, Math.floor(opts.maxBuckets ?? 120));
    this.widthMs = Math.max(1, opts.initialWidthSeconds ?? 1) * 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Records `items` finished at `at` (epoch ms, default now). */
  add(items = 1, at: number = this.now()): void {
    const i = this.indexAt(at);
    while (this.buckets.length <= i) this.buckets.push(0);
    this.buckets[i] = (this.buckets[i] ?? 0) + items;
  }

  /** Current bucket width in seconds. */
  get widthSeconds(): number {
    return this.widthMs / 1000;
  }

  /** The report's `throughput`: buckets from t = 0 through the one holding `until` (default now). */
  toJSON(until: number = this.now()): ThroughputBucket[] {
    const last = Math.max(this.buckets.length - 1, this.indexAt(until));
    const out: ThroughputBucket[] = [];
    for (let i = 0; i <= last; i++) out.push({ t: (i * this.widthMs) / 1000, items: this.buckets[i] ?? 0 });
    return out;
  }

  private indexAt(at: number): number {
    const elapsed = Math.max(0, at - this.startedAt);
    while (Math.floor(elapsed / this.widthMs) >= this.maxBuckets) this.widen();
    return Math.floor(elapsed / this.widthMs);
  }

  private widen(): void {
    const merged: number[] = [];
    for (let i = 0; i < this.buckets.length; i += 2) merged.push((this.buckets[i] ?? 0) + (this.buckets[i + 1] ?? 0));
    this.buckets = merged;
    this.widthMs *= 2;
  }
}

export interface ThrottleRecorderOptions {
  /** Most episodes kept (the most recent); `throttledMs` still counts all of them. @defaultValue 50 */
  maxEpisodes?: number;
  /** Clock (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/**
 * Throttle episodes for the report. Call `throttled(probe, value, max)` on every probe check
 * that is over its limit and `clear()` when the probes are healthy again; a change of probe
 * closes one episode and opens the next.
 */
export class ThrottleRecorder {
  private readonly maxEpisodes: number;
  private readonly now: () => number;
  private readonly episodes: Array<{ probe: string; value: number; max: number; from: number; to: number | null }> = [];
  private closedMs = 0;

  constructor(opts: ThrottleRecorderOptions = {}) {
    this.maxEpisodes = Math.max(1, opts.maxEpisodes ?? 50);
    this.now = opts.now ?? Date.now;
  }

  /** Whether an episode is open. */
  get active(): boolean {
    return this.open !== undefined;
  }

  throttled(probe: string, value: number, max: number, at: number = this.now()): void {
    const open = this.open;
    if (open && open.probe === probe) {
      open.value = Math.max(open.value, value);
      return;
    }
    if (open) this.clear(at);
    this.episodes.push({ probe, value, max, from: at, to: null });
    if (this.episodes.length > this.maxEpisodes) this.episodes.shift();
  }

  clear(at: number = this.now()): void {
    const open = this.open;
    if (!open) return;
    open.to = Math.max(at, open.from);
    this.closedMs += open.to - open.from;
  }

  /** The report's `throttle`; an episode still open counts up to `until` and keeps `to: null`. */
  toJSON(until: number = this.now()): ReportThrottle {
    const open = this.open;
    const throttledMs = this.closedMs + (open ? Math.max(0, until - open.from) : 0);
    const episodes: ThrottleEpisode[] = this.episodes.map((e) => ({
      probe: e.probe,
      value: e.value,
      max: e.max,
      from: new Date(e.from).toISOString(),
      to: e.to === null ? null : new Date(e.to).toISOString(),
    }));
    return { throttledMs: Math.round(throttledMs), episodes };
  }

  private get open(): (typeof this.episodes)[number] | undefined {
    const last = this.episodes[this.episodes.length - 1];
    return last && last.to === null ? last : undefined;
  }
}
