/**
 * Prometheus metrics of one run (prom-client), in a registry of its own so that a process
 * embedding reprise, or a test running several runs, never mixes them with the global default
 * registry. The executor calls the event methods (`itemDone`, `effect`, `chunkCommitted`, …);
 * values that depend on time (rate, seconds since progress, time throttled) are computed when
 * Prometheus scrapes. `startMetricsServer` (./server.ts) serves them on `--metrics-port`.
 *
 * docs/grafana-dashboard.json and docs/prometheus-alerts.yml use exactly these names; a test
 * checks that they stay in step.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { RateEstimator } from './rate.js';

/** Stage label values. */
export type MetricStage = 'dry-run' | 'canary' | 'full' | 'reverse';
/** Backfill policy label values. */
export type MetricPolicy = 'replay' | 'suppress' | 'dedupe';
/** Effect status label values: the ledger statuses, plus `captured` in dry-run. */
export type MetricEffectStatus = 'applied' | 'suppressed' | 'skipped-dup' | 'claimed' | 'failed' | 'captured' | 'reversed';

/** Every metric a run exposes. */
export const METRIC_NAMES = [
  'reprise_run_info',
  'reprise_items_total',
  'reprise_items_done',
  'reprise_items_processed_total',
  'reprise_items_failed_total',
  'reprise_effects_total',
  'reprise_chunks_committed_total',
  'reprise_rate_items_per_second',
  'reprise_throttled',
  'reprise_throttled_seconds_total',
  'reprise_seconds_since_progress',
  'reprise_stalled',
  'reprise_errors_consecutive',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

const STATUSES: readonly MetricEffectStatus[] = ['applied', 'suppressed', 'skipped-dup', 'claimed', 'failed', 'captured', 'reversed'];

export interface RunMetricsOptions {
  /** Run id (`<plan>.r<revision>.<hash8>`), the `run` label of every series. */
  run: string;
  plan: string;
  revision: number;
  /** Manifest hash (`sha256:…`). */
  manifest: string;
  /** Stage at start; change it with `setStage`. */
  stage: MetricStage;
  /**
   * The plan's protect probes, so `reprise_throttled{probe}` exists at 0 from the first scrape.
   * @defaultValue []
   */
  probes?: readonly string[];
  /**
   * The plan's effects, so `reprise_effects_total` exists at 0 for each of them from the first
   * scrape. @defaultValue []
   */
  effects?: ReadonlyArray<{ name: string; policy: MetricPolicy }>;
  /** Window of `reprise_rate_items_per_second`. @defaultValue 10_000 */
  rateWindowMs?: number;
  /** Clock (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/** What the metrics know right now (for the progress line and `reprise status`). */
export interface RunMetricsSnapshot {
  stage: MetricStage;
  total: number | null;
  /** Items finished in this stage, successfully or not. */
  processed: number;
  failed: number;
  /** Items in committed chunks. */
  committed: number;
  chunks: number;
  ratePerSecond: number;
  consecutiveErrors: number;
  /** Epoch ms of the last committed progress (stage start until the first). */
  lastProgressAt: number;
  throttledBy: string | null;
  stalled: boolean;
}

/**
 * The metrics of one run. `processed` counts every finished item; `failed` is the part of it
 * that failed after its retries. Progress (for `reprise_seconds_since_progress`) is a committed
 * chunk or an explicit `progress()`, not an item finishing, because only a commit survives a
 * crash.
 */
export class RunMetrics {
  /** The registry holding this run's metrics (and nothing else). */
  readonly registry = new Registry();
  private readonly opts: RunMetricsOptions;
  private readonly now: () => number;
  private stageName: MetricStage;
  private rate: RateEstimator;
  private readonly probes = new Set<string>();
  private throttledProbe: string | null = null;
  private throttledAccountedAt = 0;
  private lastProgressAt: number;
  private isStalled = false;
  private consecutive = 0;
  private total: number | null = null;
  private counts = { processed: 0, failed: 0, committed: 0, chunks: 0 };

  private readonly runInfo: Gauge<'run' | 'plan' | 'revision' | 'stage' | 'manifest'>;
  private readonly itemsTotal: Gauge<'run' | 'stage'>;
  private readonly itemsDone: Gauge<'run' | 'stage'>;
  private readonly processed: Counter<'run' | 'stage'>;
  private readonly failed: Counter<'run' | 'stage'>;
  private readonly effects: Counter<'run' | 'stage' | 'effect' | 'policy' | 'status'>;
  private readonly chunks: Counter<'run' | 'stage'>;
  private readonly rateGauge: Gauge<'run' | 'stage'>;
  private readonly throttledGauge: Gauge<'run' | 'stage' | 'probe'>;
  private readonly throttledSeconds: Counter<'run' | 'stage'>;
  private readonly sinceProgress: Gauge<'run' | 'stage'>;
  private readonly stalledGauge: Gauge<'run' | 'stage'>;
  private readonly consecutiveGauge: Gauge<'run' | 'stage'>;

  constructor(opts: RunMetricsOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.stageName = opts.stage;
    this.rate = new RateEstimator({ windowMs: opts.rateWindowMs ?? 10_000, now: this.now });
    this.lastProgressAt = this.now();
    for (const p of opts.probes ?? []) this.probes.add(p);
    const registers = [this.registry];
    const self = this;

    this.runInfo = new Gauge({
      name: 'reprise_run_info',
      help: 'Always 1; its labels name the run, its plan and revision, the current stage and the manifest hash.',
      labelNames: ['run', 'plan', 'revision', 'stage', 'manifest'],
      registers,
    });
    this.itemsTotal = new Gauge({
      name: 'reprise_items_total',
      help: 'Items the current stage set out to process (the selection count, or the canary size).',
      labelNames: ['run', 'stage'],
      registers,
    });
    this.itemsDone = new Gauge({
      name: 'reprise_items_done',
      help: 'Items of the current stage finished by every process of the run, successfully or not, as the state store counts them (survives restarts; the same in every process).',
      labelNames: ['run', 'stage'],
      registers,
    });
    this.processed = new Counter({
      name: 'reprise_items_processed_total',
      help: 'Items finished, successfully or not (failed items included).',
      labelNames: ['run', 'stage'],
      registers,
    });
    this.failed = new Counter({
      name: 'reprise_items_failed_total',
      help: 'Items that failed after all their retries.',
      labelNames: ['run', 'stage'],
      registers,
    });
    this.effects = new Counter({
      name: 'reprise_effects_total',
      help: 'Side-effect calls by effect, backfill policy (replay, suppress, dedupe) and what the effects gate did (applied, suppressed, skipped-dup, claimed, failed, captured, reversed).',
      labelNames: ['run', 'stage', 'effect', 'policy', 'status'],
      registers,
    });
    this.chunks = new Counter({
      name: 'reprise_chunks_committed_total',
      help: 'Chunks committed (their items, ledger rows and checkpoint in one transaction).',
      labelNames: ['run', 'stage'],
      registers,
    });
    this.rateGauge = new Gauge({
      name: 'reprise_rate_items_per_second',
      help: 'Items finished per second over the last 10 seconds.',
      labelNames: ['run', 'stage'],
      registers,
      collect() {
        this.set(self.labels(), round(self.rate.rate(), 3));
      },
    });
    this.throttledGauge = new Gauge({
      name: 'reprise_throttled',
      help: '1 while the named protect probe is over its limit and the run is throttled to zero, else 0.',
      labelNames: ['run', 'stage', 'probe'],
      registers,
      collect() {
        for (const probe of self.probes) this.set({ ...self.labels(), probe }, self.throttledProbe === probe ? 1 : 0);
      },
    });
    this.throttledSeconds = new Counter({
      name: 'reprise_throttled_seconds_total',
      help: 'Seconds spent throttled to zero by protect probes.',
      labelNames: ['run', 'stage'],
      registers,
      collect() {
        self.accountThrottle();
      },
    });
    this.sinceProgress = new Gauge({
      name: 'reprise_seconds_since_progress',
      help: 'Seconds since the run last committed progress (a chunk), measured at scrape time.',
      labelNames: ['run', 'stage'],
      registers,
      collect() {
        this.set(self.labels(), round(Math.max(0, self.now() - self.lastProgressAt) / 1000, 3));
      },
    });
    this.stalledGauge = new Gauge({
      name: 'reprise_stalled',
      help: '1 while the run is stalled (no committed progress for the plan\'s abort.stallAfter), else 0.',
      labelNames: ['run', 'stage'],
      registers,
      collect() {
        this.set(self.labels(), self.isStalled ? 1 : 0);
      },
    });
    this.consecutiveGauge = new Gauge({
      name: 'reprise_errors_consecutive',
      help: 'Items failed in a row since the last success (the run aborts at abort.maxConsecutiveErrors).',
      labelNames: ['run', 'stage'],
      registers,
      collect() {
        this.set(self.labels(), self.consecutive);
      },
    });
    this.initStage();
  }

  /** The current stage. */
  get stage(): MetricStage {
    return this.stageName;
  }

  /** An item finished: `ok` false when it failed after its retries. */
  itemDone(ok: boolean): void {
    this.processed.inc(this.labels());
    this.counts.processed++;
    this.rate.add(1);
    if (ok) {
      this.consecutive = 0;
    } else {
      this.failed.inc(this.labels());
      this.counts.failed++;
      this.consecutive++;
    }
  }

  /** The effects gate handled a call of effect `name` (policy `policy`) with outcome `status`. */
  effect(name: string, policy: MetricPolicy, status: MetricEffectStatus): void {
    this.effects.inc({ ...this.labels(), effect: name, policy, status });
  }

  /** A chunk of `items` items committed; counts as progress. */
  chunkCommitted(items: number): void {
    this.chunks.inc(this.labels());
    this.counts.chunks++;
    this.counts.committed += Math.max(0, items);
    this.progress();
  }

  /** The run is throttled by `probe` (a protect probe's name), or no longer throttled (`null`). */
  throttled(probe: string | null): void {
    if (probe === this.throttledProbe) return;
    this.accountThrottle();
    if (probe !== null) this.probes.add(probe);
    this.throttledProbe = probe;
    this.throttledAccountedAt = this.now();
  }

  /** Marks committed progress now (resets `reprise_seconds_since_progress`). */
  progress(): void {
    this.lastProgressAt = this.now();
  }

  /** Items the current stage will process. */
  setTotal(n: number): void {
    this.total = n;
    this.itemsTotal.set(this.labels(), n);
  }

  /** Items of the stage finished by the whole run (from the state store). */
  setDone(n: number): void {
    this.itemsDone.set(this.labels(), n);
  }

  /**
   * Moves to another stage: the state gauges start afresh under the new `stage` label (the old
   * stage's series disappear); counters of the old stage keep their final values.
   */
  setStage(stage: MetricStage): void {
    if (stage === this.stageName) return;
    this.accountThrottle();
    for (const g of [this.rateGauge, this.throttledGauge, this.sinceProgress, this.stalledGauge, this.consecutiveGauge, this.itemsTotal, this.itemsDone, this.runInfo]) g.reset();
    this.stageName = stage;
    this.rate = new RateEstimator({ windowMs: this.opts.rateWindowMs ?? 10_000, now: this.now });
    this.consecutive = 0;
    this.isStalled = false;
    this.total = null;
    this.counts = { processed: 0, failed: 0, committed: 0, chunks: 0 };
    this.lastProgressAt = this.now();
    this.initStage();
  }

  /** Sets `reprise_stalled` (the stall watch decides; see ./stall.ts). */
  stalled(on: boolean): void {
    this.isStalled = on;
  }

  snapshot(): RunMetricsSnapshot {
    return {
      stage: this.stageName,
      total: this.total,
      ...this.counts,
      ratePerSecond: this.rate.rate(),
      consecutiveErrors: this.consecutive,
      lastProgressAt: this.lastProgressAt,
      throttledBy: this.throttledProbe,
      stalled: this.isStalled,
    };
  }

  /** The Prometheus text exposition of this run's metrics. */
  async metrics(): Promise<string> {
    return await this.registry.metrics();
  }

  /** Content-Type of `metrics()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  private labels(): { run: string; stage: MetricStage } {
    return { run: this.opts.run, stage: this.stageName };
  }

  /** Every series of the stage exists (at zero) from the first scrape, so dashboards and alerts see the run at once. */
  private initStage(): void {
    const l = this.labels();
    this.runInfo.set({ ...l, plan: this.opts.plan, revision: String(this.opts.revision), manifest: this.opts.manifest }, 1);
    for (const c of [this.processed, this.failed, this.chunks, this.throttledSeconds]) c.inc(l, 0);
    for (const e of this.opts.effects ?? []) for (const status of STATUSES) this.effects.inc({ ...l, effect: e.name, policy: e.policy, status }, 0);
  }

  private accountThrottle(): void {
    const now = this.now();
    if (this.throttledProbe !== null && now > this.throttledAccountedAt) {
      this.throttledSeconds.inc(this.labels(), (now - this.throttledAccountedAt) / 1000);
    }
    this.throttledAccountedAt = now;
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
