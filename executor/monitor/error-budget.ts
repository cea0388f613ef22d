/**
 * The error budget (`abort.maxErrorRate`, `abort.errorWindow`, `abort.maxConsecutiveErrors`):
 * tells the executor when failures must stop the run (a clean abort, exit code 4), and keeps a
 * bounded sample of failures for the report.
 *
 * The rule, chosen so that one early failure never aborts a healthy run while a broken one stops
 * quickly:
 *
 * - **error-rate**: the run may fail at most `maxErrorRate × errorWindow` of any `errorWindow`
 *   consecutive items. The failures among the last `errorWindow` finished items are counted
 *   against that fixed budget — not divided by however many items have finished so far — so
 *   with 0.01 over 1000 items, the 11th failure within 1000 items aborts, whether it comes at
 *   item 15 or item 40,000, and the first failure at item 1 does not. (Judging "failed / seen"
 *   early would abort on 1 failure in the first 20 items: 5% > 1%.)
 * - **consecutive-errors**: `maxConsecutiveErrors` failures in a row abort at once; this is what
 *   stops a run whose every item fails before the rate budget is used up.
 *
 * A budget below one item (`maxErrorRate × errorWindow < 1`, e.g. `maxErrorRate: 0`) means any
 * failure aborts. `maxConsecutiveErrors <= 0` disables the consecutive rule.
 */
import type { ErrorSample, ReportErrors } from '../../schema/report.types.js';

export interface ErrorBudgetOptions {
  /** Largest failed share of `errorWindow` items (the plan's `abort.maxErrorRate`). */
  maxErrorRate: number;
  /** Window size in items (`abort.errorWindow`). */
  errorWindow: number;
  /** Failures in a row that abort (`abort.maxConsecutiveErrors`). */
  maxConsecutiveErrors: number;
  /** Failure samples kept for the report: the first half and the most recent half. @defaultValue 20 */
  maxSamples?: number;
  /** Longest message kept per sample. @defaultValue 2000 */
  maxMessageLength?: number;
  /** Clock for samples without `at` (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/** Why the budget says stop. */
export interface ErrorBudgetTrip {
  reason: 'error-rate' | 'consecutive-errors';
  /** One sentence with the numbers, for the abort record and the report. */
  detail: string;
  failuresInWindow: number;
  windowItems: number;
  consecutive: number;
}

/** A failed item, as the executor knows it. */
export interface FailureInput {
  itemKey: string;
  /** Attempt that failed last. @defaultValue 1 */
  attempt?: number;
  /** The error; its message is kept (use `message` to give one directly). */
  error?: unknown;
  message?: string;
  /** When it failed. @defaultValue now */
  at?: Date | string | number;
}

export class ErrorBudget {
  private readonly opts: Required<Omit<ErrorBudgetOptions, 'now'>>;
  private readonly now: () => number;
  private readonly window: Uint8Array;
  private next = 0;
  private filled = 0;
  private windowFailures = 0;
  private consecutive = 0;
  private items = 0;
  private failures = 0;
  private trip: ErrorBudgetTrip | null = null;
  private readonly samples: FailureSampler;

  constructor(opts: ErrorBudgetOptions) {
    if (!Number.isInteger(opts.errorWindow) || opts.errorWindow < 1) throw new RangeError('errorWindow must be a positive integer');
    if (!(opts.maxErrorRate >= 0)) throw new RangeError('maxErrorRate must be >= 0');
    this.opts = { maxSamples: 20, maxMessageLength: 2000, ...opts };
    this.now = opts.now ?? Date.now;
    this.window = new Uint8Array(opts.errorWindow);
    this.samples = new FailureSampler({ maxSamples: this.opts.maxSamples, maxMessageLength: this.opts.maxMessageLength, now: this.now });
  }

  /** Failures the window may hold without aborting: ⌊maxErrorRate × errorWindow⌋. */
  get allowedFailures(): number {
    return Math.floor(this.opts.maxErrorRate * this.opts.errorWindow + 1e-9);
  }

  /** The first trip, once the budget is exceeded (later records do not change it). */
  get tripped(): ErrorBudgetTrip | null {
    return this.trip;
  }

  /**
   * Records one finished item (`ok` false: it failed after its retries, with `sample` saying
   * which and why). Returns the trip when the budget is exceeded — on this item or before — and
   * null while the run may go on.
   */
  record(ok: boolean, sample?: FailureInput): ErrorBudgetTrip | null {
    this.items++;
    if (this.filled === this.window.length) this.windowFailures -= this.window[this.next] ?? 0;
    else this.filled++;
    this.window[this.next] = ok ? 0 : 1;
    this.next = (this.next + 1) % this.window.length;
    if (ok) {
      this.consecutive = 0;
      return this.trip;
    }
    this.windowFailures++;
    this.consecutive++;
    this.failures++;
    const lastMessage = this.samples.add(sample).message;
    if (this.trip) return this.trip;
    const max = this.opts.maxConsecutiveErrors;
    if (max > 0 && this.consecutive >= max) {
      this.trip = this.makeTrip('consecutive-errors', `${this.consecutive} items failed in a row (abort.maxConsecutiveErrors is ${max}); last error: ${clip(lastMessage, 200)}`);
    } else if (this.windowFailures > this.allowedFailures) {
      const pct = `${((this.windowFailures / this.filled) * 100).toFixed(1)}%`;
      this.trip = this.makeTrip(
        'error-rate',
        `${this.windowFailures} of the last ${this.filled} items failed (${pct}); abort.maxErrorRate ${this.opts.maxErrorRate} over abort.errorWindow ${this.opts.errorWindow} allows ${this.allowedFailures}; last error: ${clip(lastMessage, 200)}`,
      );
    }
    return this.trip;
  }

  /** Counters for status displays and tests. */
  snapshot(): { items: number; failures: number; windowItems: number; windowFailures: number; consecutive: number } {
    return { items: this.items, failures: this.failures, windowItems: this.filled, windowFailures: this.windowFailures, consecutive: this.consecutive };
  }

  /** The report's `errors`: every failure counted, the first and most recent sampled, in order. */
  errors(): ReportErrors {
    return this.samples.errors();
  }

  private makeTrip(reason: ErrorBudgetTrip['reason'], detail: string): ErrorBudgetTrip {
    return { reason, detail, failuresInWindow: this.windowFailures, windowItems: this.filled, consecutive: this.consecutive };
  }
}

export interface FailureSamplerOptions {
  /** Samples kept: the first half and the most recent half. @defaultValue 20 */
  maxSamples?: number;
  /** Longest message kept per sample. @defaultValue 2000 */
  maxMessageLength?: number;
  /** Clock for samples without `at` (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/**
 * A bounded sample of failures for a report's `errors`: the first ones (how it started) and the
 * most recent ones (how it is going), messages clipped, whatever was thrown (an Error, a string,
 * `null`) turned into a message.
 */
export class FailureSampler {
  private readonly maxSamples: number;
  private readonly maxMessageLength: number;
  private readonly now: () => number;
  private readonly first: ErrorSample[] = [];
  private readonly recent: ErrorSample[] = [];
  private total = 0;

  constructor(opts: FailureSamplerOptions = {}) {
    this.maxSamples = Math.max(0, opts.maxSamples ?? 20);
    this.maxMessageLength = Math.max(1, opts.maxMessageLength ?? 2000);
    this.now = opts.now ?? Date.now;
  }

  /** Counts one failure and keeps it if it is among the first or the most recent; returns the sample. */
  add(input: FailureInput | undefined): ErrorSample {
    this.total++;
    const message = clip(input?.message ?? messageOf(input?.error) ?? 'failed', this.maxMessageLength);
    const at = input?.at === undefined ? new Date(this.now()) : new Date(input.at);
    const sample: ErrorSample = {
      itemKey: input?.itemKey ?? '(unknown)',
      attempt: Math.max(1, Math.floor(input?.attempt ?? 1)),
      message,
      at: Number.isNaN(at.getTime()) ? new Date(this.now()).toISOString() : at.toISOString(),
    };
    const firstMax = Math.ceil(this.maxSamples / 2);
    const recentMax = this.maxSamples - firstMax;
    if (this.first.length < firstMax) this.first.push(sample);
    else if (recentMax > 0) {
      this.recent.push(sample);
      if (this.recent.length > recentMax) this.recent.shift();
    }
    return sample;
  }

  errors(): ReportErrors {
    return { total: this.total, samples: [...this.first, ...this.recent] };
  }
}

/** The message of anything thrown: an Error's message (or name), a string, JSON of the rest. */
export function messageOf(err: unknown): string | undefined {
  if (err === undefined) return undefined;
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'string') return err || 'failed';
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
