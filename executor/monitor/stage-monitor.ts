/**
 * The stage monitor: what watches a canary or full stage in one process, and stops it when it
 * must. It implements the stage driver's `StageMonitor` hooks (executor/stages/run.ts):
 *
 * - **metrics**: items, effects, chunks, the stage total, throttle state and stalls go into the
 *   run's `RunMetrics` (served on `--metrics-port`);
 * - **error budget**: every finished item is counted; when the plan's `abort` budget is exceeded
 *   the stage stops (`error-budget`, exit 4) and the failures sampled here go into the report;
 * - **stall watch**: a chunk committed by this process, or the run's `last_progress_at`
 *   advancing (another process committed), is progress; none for `abort.stallAfter` is a stall:
 *   log, `stalled` event, `reprise_stalled`, the plan's `onStall` (`pause` and `abort` set the
 *   run's control flag, so every worker of every process obeys and it is in `events`), and the
 *   alert webhook. A paused or throttled run is not judged;
 * - **throttle episodes** seen by this process's live guard, for the report and as
 *   `throttled` / `resumed` events.
 */
import type { ErrorSample, ReportErrors, ReportThrottle } from '../../schema/report.types.js';
import type { UrlRef } from '../../schema/manifest.types.js';
import { ThrottleRecorder } from '../reports/throughput.js';
import type { RunControl } from '../stages/control.js';
import type { RunEvents } from '../stages/events.js';
import type { OpenedRun } from '../stages/open.js';
import type { StageMonitor } from '../stages/run.js';
import type { ChunkStage, RunRow } from '../store/store.js';
import type { ThrottleState } from '../throttle/limiter.js';
import { sendAlert, stallAlertBody, type SendAlertOptions } from './alert.js';
import { ErrorBudget } from './error-budget.js';
import { RunMetrics, type MetricEffectStatus, type MetricPolicy, type MetricStage } from './metrics.js';
import { etaSeconds, RateEstimator } from './rate.js';
import { StallWatch, type StallInfo } from './stall.js';

/** Who the stall watch acts as in the run's events. */
export const STALL_WATCH_ACTOR = 'reprise:stall-watch';

/** Error samples in a report: the first half and the most recent half. */
const REPORT_SAMPLES = 20;

export interface StageMonitorOptions {
  run: OpenedRun;
  stage: ChunkStage;
  /** The stage's in-process control: the error budget and stall-abort stop it. */
  control: RunControl;
  /** The run's metrics (served by the CLI on --metrics-port); none: nothing is measured. */
  metrics?: RunMetrics;
  events: RunEvents;
  /** Resolves `abort.alert.webhook: { env }`. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Delivery of the stall webhook. @defaultValue 5 s timeout, 3 attempts */
  alert?: SendAlertOptions;
  /** How often the stall watch looks. @defaultValue stallAfter / 10, between 50 ms and 5 s */
  stallCheckEveryMs?: number;
  /** Clock (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/** A StageMonitor, plus what tests and callers may want to look at. */
export interface StageMonitorHandle extends Required<Pick<StageMonitor, 'itemDone' | 'effect' | 'chunkCommitted' | 'progress' | 'paused' | 'throttle' | 'reportExtras' | 'close'>> {
  readonly budget: ErrorBudget;
  readonly stall: StallWatch;
}

/** The metrics of a stage of an opened run, with its effects and probes present from the first scrape. */
export function runMetricsFor(run: OpenedRun, stage: MetricStage): RunMetrics {
  return new RunMetrics({
    run: run.runId,
    plan: run.plan.name,
    revision: run.plan.revision,
    manifest: run.manifest.hash,
    stage,
    probes: run.plan.rate.protect.map((p) => p.name),
    effects: run.plan.sideEffects.map((e) => ({ name: e.name, policy: e.backfill as MetricPolicy })),
  });
}

/**
 * Items the stage sets out to process: the planned canary items, or the whole selection (for
 * full, the canary's items are part of it and count as done).
 */
export async function stageTotal(run: OpenedRun, stage: ChunkStage): Promise<number | null> {
  if (stage === 'canary') {
    const chunks = await run.store.getChunks(run.runId, 'canary');
    return chunks.reduce((n, c) => n + (c.keys ? c.keys.length : c.state === 'committed' ? c.items + c.errors : c.items), 0);
  }
  return (await run.store.getRun(run.runId))?.total_items ?? null;
}

export function createStageMonitor(opts: StageMonitorOptions): StageMonitorHandle {
  const { run, stage, control, metrics, events } = opts;
  const { plan, runId, store } = run;
  const now = opts.now ?? Date.now;
  const env = opts.env ?? process.env;
  const abort = plan.abort;
  const budget = new ErrorBudget({
    maxErrorRate: abort.maxErrorRate,
    errorWindow: abort.errorWindow,
    maxConsecutiveErrors: abort.maxConsecutiveErrors,
    maxSamples: REPORT_SAMPLES,
    now,
  });
  const throttles = new ThrottleRecorder({ now });
  const rate = new RateEstimator({ now });
  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>): void => {
    const q = p.catch((e: unknown) => events.log('error', `stage monitor: ${(e as Error)?.message ?? String(e)}`)).finally(() => pending.delete(q));
    pending.add(q);
  };

  let total: number | null = null;
  let seenProgressAt: number | undefined;
  let paused = false;
  let throttledBy: { probe: string; since: number } | null = null;
  let stalledSince: number | undefined;
  let closed = false;

  const stall = new StallWatch({
    stallAfterMs: abort.stallAfter,
    checkEveryMs: opts.stallCheckEveryMs,
    now,
    onStall: (info) => { track(onStall(info)); },
    onRecover: (info) => {
      metrics?.stalled(false);
      const afterMs = stalledSince === undefined ? info.stalledForMs : now() - stalledSince;
      stalledSince = undefined;
      events.log('info', `progress again after ${Math.round(info.stalledForMs / 1000)}s without`);
      events.event({ type: 'resumed', run: runId, stage, from: 'stalled', afterMs });
    },
    onError: (e) => events.log('error', `stall watch: ${(e as Error)?.message ?? String(e)}`),
  });

  /** The stall watch judges only a run that is meant to move: not paused, not held by a probe. */
  const judge = (): void => {
    if (paused || throttledBy) stall.suspend();
    else {
      const wasStalled = stall.stalled;
      stall.resume();
      if (wasStalled) {
        metrics?.stalled(false);
        stalledSince = undefined;
      }
    }
  };

  async function onStall(info: StallInfo): Promise<void> {
    if (control.stopped || closed) return;
    stalledSince = now();
    metrics?.stalled(true);
    const action = abort.onStall;
    const seconds = Math.round(info.stalledForMs / 1000);
    const lastProgressAt = new Date(info.lastProgressAt).toISOString();
    const reason = `no committed progress for ${seconds}s (abort.stallAfter is ${Math.round(abort.stallAfter / 1000)}s; last progress ${lastProgressAt})`;
    events.log('warn', `stalled: ${reason}; onStall: ${action}`);

    let status = 'running';
    if (action === 'pause') {
      try {
        await store.setControl(runId, 'pause', STALL_WATCH_ACTOR, reason);
        status = 'paused';
      } catch (e) {
        events.log('error', `stalled: could not set the run's pause flag (${(e as Error).message}); it keeps running`);
      }
    } else if (action === 'abort') {
      // This process first (so its stop says why), then every process of the run through the flag.
      control.stop('stall', reason);
      status = 'aborting';
      try {
        await store.setControl(runId, 'abort', STALL_WATCH_ACTOR, reason);
      } catch (e) {
        events.log('error', `stalled: could not set the run's abort flag (${(e as Error).message}); only this process stops`);
      }
    }

    const webhook = resolveWebhook(abort.alert?.webhook, env);
    events.event({ type: 'stalled', run: runId, stage, lastProgressAt, stalledForSeconds: seconds, action, webhook: webhook.url !== undefined });
    if (webhook.problem) events.log('error', `stall alert not sent: ${webhook.problem}`);
    if (!webhook.url) return;
    const body = stallAlertBody({ run: runId, stage, plan: plan.name, revision: plan.revision, lastProgressAt: info.lastProgressAt, stalledForSeconds: seconds, onStall: action, status });
    const sent = await sendAlert(webhook.url, body, opts.alert);
    if (sent.ok) events.log('info', `stall alert delivered (HTTP ${sent.status})`);
    else events.log('error', `stall alert not delivered after ${sent.attempts} attempt(s): ${sent.error}`);
  }

  const snapshotOf = (row: RunRow): Parameters<RunEvents['progress']>[0] => {
    const done = row.items_done + row.items_failed;
    const t = total ?? row.total_items ?? done;
    const r = rate.rate();
    return {
      runId,
      stage,
      status: control.stopped ? 'aborting' : paused ? 'paused' : throttledBy ? 'throttled' : stall.stalled ? 'stalled' : 'running',
      done,
      total: t,
      failed: row.items_failed,
      ratePerSecond: r,
      etaSeconds: etaSeconds(t - done, r),
      throttle: throttledBy ? { probe: throttledBy.probe, value: null } : null,
    };
  };

  track(
    (async () => {
      total = await stageTotal(run, stage);
      if (total !== null) metrics?.setTotal(total);
    })(),
  );
  stall.start();

  return {
    budget,
    stall,

    itemDone(ok, itemKey, error, attempts) {
      metrics?.itemDone(ok);
      rate.add(1);
      if (!ok) events.event({ type: 'error', run: runId, stage, itemKey, attempt: attempts, final: true, message: error ?? 'failed' });
      const already = budget.tripped;
      const trip = budget.record(ok, ok ? undefined : { itemKey, attempt: attempts, message: error });
      if (trip && !already && !control.stopped) {
        events.log('error', `error budget exceeded (${trip.reason}): ${trip.detail}`);
        control.stop('error-budget', `${trip.reason}: ${trip.detail}`);
      }
    },

    effect(effect, policy, status) {
      metrics?.effect(effect, policy as MetricPolicy, status as MetricEffectStatus);
    },

    chunkCommitted(items, failed) {
      metrics?.chunkCommitted(items + failed);
      stall.progress();
    },

    progress(row) {
      metrics?.setDone(row.items_done + row.items_failed);
      if (stage === 'full' && row.total_items !== null && row.total_items !== total) {
        total = row.total_items;
        metrics?.setTotal(total);
      }
      const at = row.last_progress_at ? new Date(row.last_progress_at).getTime() : undefined;
      if (at !== undefined) {
        if (seenProgressAt !== undefined && at > seenProgressAt) {
          stall.progress();
          metrics?.progress();
        }
        seenProgressAt = Math.max(seenProgressAt ?? at, at);
      }
    },

    paused(on) {
      paused = on;
      judge();
    },

    throttle(s: ThrottleState) {
      const probe = s.throttled ? s.probe ?? 'unknown' : null;
      const max = probe === null ? null : plan.rate.protect.find((p) => p.name === probe)?.max ?? null;
      if (probe !== null) throttles.throttled(probe, s.value ?? max ?? 0, max ?? s.value ?? 0);
      if (probe === (throttledBy?.probe ?? null)) return;
      metrics?.throttled(probe);
      const was = throttledBy;
      if (probe === null) {
        throttles.clear();
        throttledBy = null;
        events.event({ type: 'resumed', run: runId, stage, from: 'throttled', afterMs: was ? now() - was.since : 0 });
      } else {
        throttledBy = { probe, since: was?.since ?? now() };
        events.event({ type: 'throttled', run: runId, stage, probe, value: s.value, max });
        events.log('warn', `throttled: ${probe}${s.value === null ? '' : ` = ${s.value}`}${max === null ? '' : ` over its limit ${max}`}${s.reason ? ` (${s.reason})` : ''}; holding at zero items per second`);
      }
      judge();
    },

    reportExtras(base) {
      const out: { errors?: ReportErrors; throttle?: ReportThrottle } = {};
      const mine = budget.errors();
      if (mine.total > 0) out.errors = mergeErrors(mine, base?.errors);
      const seen = throttles.toJSON();
      if (seen.episodes.length) out.throttle = { throttledMs: Math.max(seen.throttledMs, base?.throttle.throttledMs ?? 0), episodes: seen.episodes };
      return out;
    },

    async close() {
      if (closed) return;
      closed = true;
      stall.stop();
      if (throttledBy) throttles.clear();
      while (pending.size) await Promise.all([...pending]);
      const row = await store.getRun(runId).catch(() => undefined);
      if (row) events.progress(snapshotOf(row));
    },
  };
}

/**
 * This process's failures (the budget saw every failed attempt, also in chunks that were given
 * back and never committed) merged with those the state store holds (committed by any process):
 * one sample per item, the first and the most recent kept.
 */
export function mergeErrors(mine: ReportErrors, stored: ReportErrors | undefined): ReportErrors {
  const byItem = new Map<string, ErrorSample>();
  for (const s of [...(stored?.samples ?? []), ...mine.samples]) {
    const had = byItem.get(s.itemKey);
    if (!had || had.at <= s.at) byItem.set(s.itemKey, s);
  }
  const all = [...byItem.values()].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const half = REPORT_SAMPLES / 2;
  const samples = all.length <= REPORT_SAMPLES ? all : [...all.slice(0, half), ...all.slice(-half)];
  return { total: Math.max(mine.total, stored?.total ?? 0), samples };
}

function resolveWebhook(ref: UrlRef | undefined, env: NodeJS.ProcessEnv): { url?: string; problem?: string } {
  if (ref === undefined) return {};
  if (typeof ref === 'string') return { url: ref };
  const v = env[ref.env];
  return v ? { url: v } : { problem: `abort.alert.webhook reads environment variable ${ref.env}, which is not set` };
}
