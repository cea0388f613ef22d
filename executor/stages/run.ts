/**
 * Runs one stage of a plan, the way the runbook describes it:
 *   1. compile the plan from the files on disk (the manifest hash approvals bind)
 *   2. open the state store and the run (same manifest -> same run id -> resume)
 *   3. count the selection in a read-only snapshot and check the count guard
 *   4. fingerprint every target; run the preflight (approvals, go/no-go) — refuse on any failure
 *   5. dry-run: capture every effect; canary/full: cut chunks once, then workers lease, process
 *      and commit chunks until none is left
 *   6. canary: run the validation queries
 *   7. write the stage report (JSON, Markdown, HTML) and record it with its hash
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Report } from '../../schema/report.types.js';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { readFileSync } from 'node:fs';
import { parseManifestBytes } from '../../compiler/manifest.js';
import type { Policy } from '../../compiler/policy.js';
import { isConnectionError } from '../db/database.js';
import { DedupeUnavailableError } from '../effects/dedupe.js';
import { EffectsGate } from '../effects/gate.js';
import { SqlBatcher } from '../effects/batch.js';
import { emptyEffectCounts, finalizeReport, ThroughputRecorder, writeReportFiles, type ReportBody, type ReportPaths } from '../reports/index.js';
import type { ChunkBounds, ChunkStage, RunRow, Stage } from '../store/store.js';
import { actor } from '../store/store.js';
import type { Fingerprint } from '../targets.js';
import { sleep, type LiveGuard, type RateLimiter, type ThrottleState } from '../throttle/limiter.js';
import { createLiveGuard, createRateLimiter, throttleSection } from '../throttle/index.js';
import type { RunMetrics } from '../monitor/metrics.js';
import { createStageMonitor, runMetricsFor, stageTotal } from '../monitor/stage-monitor.js';
import { RunControl } from './control.js';
import { controlDirOf, takeControlRequest, writeStatusSnapshot, clearStatusSnapshot } from './control-file.js';
import { dryRun, logFor, reportFingerprints } from './dry-run.js';
import { silentEvents, type RunEvents } from './events.js';
import { openRun, type OpenedRun } from './open.js';
import { ChunkBoard, runWorker, type WorkerObserver } from './worker.js';

export interface PreflightContext {
  run: OpenedRun;
  stage: Stage;
  runRow: RunRow;
  count: number;
  fingerprints: Record<string, Fingerprint>;
}

export interface RunStageOptions {
  plan: string;
  stage: Stage;
  stateUrl: string;
  /** The organisation policy: a plan breaking it is refused (exit 2) while it compiles, before anything is opened. */
  policy?: Policy | undefined;
  /** A compiled manifest file to hold the plan to: its bytes must be canonical and its hash the plan's. */
  manifestFile?: string;
  /** Workers in this process. @defaultValue 1 */
  workers?: number;
  /** Where report files go. @defaultValue 'reports' */
  reportsDir?: string;
  env?: NodeJS.ProcessEnv;
  events?: RunEvents;
  /** Stops the stage cleanly (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Lease time-to-live; a dead worker's chunk is taken over after it. @defaultValue 30000 */
  leaseTtlMs?: number;
  /** How long the state store may stay unreachable before the stage stops. @defaultValue 60000 */
  outageTimeoutMs?: number;
  /** Approvals and the go/no-go checks; throws a RepriseError (exit 3) to refuse. */
  preflight?: (ctx: PreflightContext) => Promise<void>;
  /**
   * Shared rate limiter and live guard.
   * @defaultValue the run's GCRA bucket in Redis or the state store, and its protect probes (executor/throttle/index.ts)
   */
  limiter?: (run: OpenedRun) => Promise<RateLimiter>;
  guard?: (run: OpenedRun, control: RunControl) => Promise<LiveGuard>;
  /**
   * Hooks for metrics, stall detection and the error budget.
   * @defaultValue createStageMonitor (executor/monitor/stage-monitor.ts): metrics, the plan's error budget and stall watch
   */
  monitor?: (run: OpenedRun, stage: Stage, control: RunControl) => StageMonitor;
  /** Receives the stage's Prometheus metrics once the run is open (the CLI serves them on --metrics-port). Default monitor only. */
  metrics?: (metrics: RunMetrics) => void;
}

/**
 * Observes a canary or full stage in this process: metrics, stall detection, the error budget.
 * It may stop the stage (`control.stop('error-budget' | 'stall', …)`) or pause the run.
 */
export interface StageMonitor {
  /** Each item's final result (after retries). */
  itemDone?(ok: boolean, itemKey: string, error: string | undefined, attempts: number): void;
  /** Each gate decision. */
  effect?(effect: string, policy: string, status: string): void;
  chunkCommitted?(items: number, failed: number): void;
  /** The run's row, about once a second (counts from every process of the run). */
  progress?(row: RunRow): void;
  /** The run was paused (true) or resumed (false) by its control flag. */
  paused?(paused: boolean): void;
  /** This process's live guard, about once a second. */
  throttle?(state: ThrottleState): void;
  /** Parts of the stage report this process knows better than the state store (`base`: what the store says). */
  reportExtras?(base: Pick<ReportBody, 'errors' | 'throttle'>): Partial<Pick<ReportBody, 'errors' | 'throttle'>>;
  close?(): Promise<void> | void;
}

export interface StageOutcome {
  runId: string;
  stage: Stage;
  outcome: 'completed' | 'stopped' | 'validation-failed' | 'already-completed' | 'joined';
  exitCode: number;
  report?: Report;
  reportFiles?: ReportPaths;
  stop?: { reason: string; detail: string };
}

const STAGE_ORDER: Record<Stage, number> = { 'dry-run': 0, canary: 1, full: 2 };

export async function runStage(opts: RunStageOptions): Promise<StageOutcome> {
  const events = opts.events ?? silentEvents;
  const run = await openRun({ plan: opts.plan, stateUrl: opts.stateUrl, env: opts.env, policy: opts.policy });
  try {
    const { store, runId, plan, manifest } = run;
    if (opts.manifestFile) {
      const m = parseManifestBytes(readFileSync(opts.manifestFile, 'utf8'), opts.manifestFile);
      if (m.hash !== manifest.hash) {
        throw new RepriseError('MANIFEST_HASH_MISMATCH', `${opts.manifestFile} is ${m.hash}, but the plan and its files now compile to ${manifest.hash}`, {
          exit: ExitCode.refused,
          hint: 'the plan, its handler or a module changed since this manifest was compiled; recompile and get it approved',
        });
      }
    }
    let runRow = await store.ensureRun(runId, manifest);
    if (opts.stage !== 'dry-run' && STAGE_ORDER[runRow.stage] > STAGE_ORDER[opts.stage]) {
      throw new RepriseError('STAGE_ORDER', `run ${runId} is already at stage ${runRow.stage}; stage ${opts.stage} cannot run again`, {
        exit: ExitCode.refused,
        hint: runRow.stage === 'full' ? 'continue it with reprise run --stage full' : 'see reprise status',
      });
    }
    if (opts.stage !== 'dry-run' && runRow.stage === opts.stage && runRow.status === 'completed') {
      const latest = await store.latestReport<Report>(runId, opts.stage);
      events.event({ type: 'finished', run: runId, stage: opts.stage, outcome: 'already-completed', report: latest?.hash ?? null });
      return { runId, stage: opts.stage, outcome: 'already-completed', exitCode: ExitCode.ok, report: latest?.body };
    }

    const countedAt = new Date().toISOString();
    const count = await reachable('counting the selection', () => run.source.count(), isConnectionError);
    const outsideWindow = (run.source as { outsideWindow?: number }).outsideWindow ?? 0;
    const expect = (plan.selection ?? plan.source)!.expect;
    if (count < expect.min || count > expect.max) {
      await store.recordEvent(runId, actor(), 'refused', { stage: opts.stage, code: 'COUNT_GUARD', count, expect });
      throw new RepriseError('COUNT_GUARD', `the selection has ${count} items, outside the expected range [${expect.min}, ${expect.max}]`, {
        exit: ExitCode.refused,
        hint: 'check the window and the query; if the count is right, change expect in a new plan revision',
        details: { count, expect },
      });
    }
    const fingerprints = await reachable('fingerprinting the targets', () => run.targets.fingerprints(), () => true);
    if (opts.preflight) await opts.preflight({ run, stage: opts.stage, runRow, count, fingerprints });

    if (opts.stage === 'dry-run') {
      events.event({ type: 'start', run: runId, stage: 'dry-run', total: count, manifest: manifest.hash });
      if (runRow.stage === 'dry-run') await store.updateRun(runId, { status: 'running', total_items: count, started_at: new Date() });
      const { report } = await dryRun(run, { value: count, countedAt, outsideWindow }, fingerprints, events, opts.signal);
      const files = await saveReport(run, report, opts.reportsDir);
      const interrupted = report.outcome !== 'completed';
      if (runRow.stage === 'dry-run') await store.updateRun(runId, { status: interrupted ? 'aborted' : 'completed', finished_at: new Date() });
      await store.recordEvent(runId, actor(), 'dry-run', { report: report.hash, count, outcome: report.outcome });
      if (interrupted) {
        events.event({ type: 'aborted', run: runId, stage: 'dry-run', reason: 'signal', detail: 'interrupted', report: report.hash, files });
        return { runId, stage: 'dry-run', outcome: 'stopped', exitCode: ExitCode.stopped, report, reportFiles: files, stop: { reason: 'signal', detail: 'interrupted' } };
      }
      events.event({ type: 'finished', run: runId, stage: 'dry-run', outcome: 'completed', report: report.hash, files });
      return { runId, stage: 'dry-run', outcome: 'completed', exitCode: ExitCode.ok, report, reportFiles: files };
    }

    const stage: ChunkStage = opts.stage;
    if (runRow.stage !== stage) {
      await store.updateRun(runId, { stage, status: 'running', total_items: count, started_at: new Date(), finished_at: null });
    } else {
      await store.updateRun(runId, { status: 'running', total_items: count });
    }
    await planChunks(run, stage, events);
    runRow = (await store.getRun(runId))!;
    return await processStage(run, stage, opts, events, { value: count, countedAt, outsideWindow }, fingerprints);
  } finally {
    await run.close();
  }
}

/**
 * A target that cannot be reached before processing starts refuses the stage (exit 3, nothing
 * done) instead of surfacing as an internal error. `unreachable` says which errors mean that.
 */
async function reachable<T>(what: string, fn: () => Promise<T>, unreachable: (e: unknown) => boolean): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RepriseError || !unreachable(e)) throw e;
    throw new RepriseError('TARGET_UNREACHABLE', `${what} failed: ${(e as Error).message}`, {
      exit: ExitCode.refused,
      hint: 'check that the servers of the plan\'s connections are up and their environment variables point at them; nothing was processed',
      cause: e,
    });
  }
}

/** Cuts the run into chunks, once per run, under an advisory lock (several processes may start together). */
async function planChunks(run: OpenedRun, stage: ChunkStage, events: RunEvents): Promise<void> {
  const { store, runId, plan, manifest } = run;
  const existing = await store.getRun(runId);
  if (existing?.planned_at) return;
  await store.db.session(async (s) => {
    await s.query('select pg_advisory_lock(hashtext($1))', [`reprise.plan:${runId}`]);
    try {
      const again = await store.getRun(runId);
      if (again?.planned_at) return;
      await store.db.query('delete from reprise.chunks where run_id = $1', [runId]);
      let seq = 0;
      let fullChunks = 0;
      const started = Date.now();
      const result = await run.source.plan(
        plan.rate.chunkSize,
        stage === 'canary' ? { size: plan.canary.size, pick: plan.canary.pick, seed: manifest.hash } : undefined,
        async (chunks) => {
          await store.insertChunks(runId, 'full', seq, chunks);
          seq += chunks.length;
          fullChunks += chunks.length;
        },
      );
      await store.insertChunks(runId, 'canary', seq, result.canary);
      await store.updateRun(runId, { planned_at: new Date(), chunks_total: fullChunks + result.canary.length });
      await store.recordEvent(runId, actor(), 'planned', { chunks: fullChunks + result.canary.length, canaryChunks: result.canary.length, items: result.items, ms: Date.now() - started });
      events.log('info', `cut ${fullChunks + result.canary.length} chunks (${result.canary.length} canary) over ${result.items} items`);
    } finally {
      await s.query('select pg_advisory_unlock(hashtext($1))', [`reprise.plan:${runId}`]);
    }
  });
}

async function processStage(
  run: OpenedRun,
  stage: ChunkStage,
  opts: RunStageOptions,
  events: RunEvents,
  count: { value: number; countedAt: string; outsideWindow: number },
  fingerprints: Record<string, Fingerprint>,
): Promise<StageOutcome> {
  const { store, runId, plan } = run;
  const control = new RunControl();
  const processId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const onSignal = (): void => control.stop('signal', 'interrupted (SIGINT/SIGTERM)');
  opts.signal?.addEventListener('abort', onSignal, { once: true });
  if (opts.signal?.aborted) onSignal();

  const outageTimeoutMs = opts.outageTimeoutMs ?? Number(process.env.REPRISE_OUTAGE_TIMEOUT_MS ?? 60_000);
  const throttleCtx = { run, stage, control, events, owner: processId, env: opts.env, outageTimeoutMs };
  const limiter: RateLimiter = opts.limiter ? await opts.limiter(run) : await createRateLimiter(throttleCtx);
  const guard: LiveGuard = opts.guard ? await opts.guard(run, control) : await createLiveGuard(throttleCtx);
  let metrics: RunMetrics | undefined;
  if (opts.metrics && !opts.monitor) {
    metrics = runMetricsFor(run, stage);
    opts.metrics(metrics);
  }
  const monitor: StageMonitor = opts.monitor ? opts.monitor(run, stage, control) : createStageMonitor({ run, stage, control, metrics, events, env: opts.env });
  const unsubscribeGuard = guard.subscribe?.((s) => monitor.throttle?.(s));
  const gate = new EffectsGate({
    plan,
    runId,
    stage,
    appliers: run.appliers,
    dedupe: run.dedupe,
    transactionalConnection: plan.checkpoint.connection,
    onOutcome: (e, status) => monitor.effect?.(e.name, e.backfill, status),
  });

  // The full stage skips what a sampled canary already committed (a `first` canary is its own key range).
  const skipKeys = new Set<string>();
  if (stage === 'full') {
    for (const c of await store.getChunks(runId, 'canary')) {
      if (!c.keys) continue;
      for (const item of await run.source.fetch(c)) skipKeys.add(item.key);
    }
  }

  const startedAt = (await store.getRun(runId))?.started_at ?? new Date();
  const stageItems = stage === 'canary' ? await stageTotal(run, stage) : null;
  events.event({ type: 'start', run: runId, stage, total: count.value, manifest: run.manifest.hash, workers: opts.workers ?? 1, process: processId });
  await store.recordEvent(runId, processId, 'stage-start', { stage, workers: opts.workers ?? 1 });

  const observer: WorkerObserver = {
    itemDone: (r) => monitor.itemDone?.(r.ok, r.item.key, r.error, r.attempts),
    chunkCommitted: (chunk, items, failed) => {
      monitor.chunkCommitted?.(items, failed);
      events.event({ type: 'chunk', run: runId, stage, seq: chunk.seq, items, failed });
    },
    chunkReleased: (chunk, why) => events.log('warn', `chunk ${chunk.seq} released (${why}); it will be processed again`),
    fenced: (chunk) => events.log('warn', `chunk ${chunk.seq}: lease lost to another worker; results dropped (fencing)`),
    waiting: (why) => events.log('info', `waiting: ${why}`),
    log: logFor(events, ''),
  };

  // Control loop: the flag in the state store (and NOTIFY, and the embedded store's flag file),
  // progress snapshots, and this process's heartbeat.
  const controlDir = plan.checkpoint.connection ? undefined : controlDirOf(opts.stateUrl);
  let lastRow: RunRow | undefined;
  let lastSnapshotAt = Date.now();
  let rate = 0;
  const tick = async (): Promise<void> => {
    if (controlDir) {
      const req = takeControlRequest(controlDir, runId);
      if (req) await store.setControl(runId, req.control, req.actor, req.reason);
    }
    const row = await store.getRun(runId);
    if (!row) return;
    if (row.control === 'abort') control.stop('abort', 'aborted by reprise abort');
    else if (row.control === 'pause' && !control.paused) {
      control.pause();
      monitor.paused?.(true);
      await store.updateRun(runId, { status: 'paused' });
      events.event({ type: 'paused', run: runId, stage });
    } else if (row.control === 'run' && control.paused) {
      control.resume();
      monitor.paused?.(false);
      await store.updateRun(runId, { status: 'running' });
      events.event({ type: 'resumed', run: runId, stage });
    }
    const now = Date.now();
    if (lastRow) {
      const delta = row.items_done + row.items_failed - (lastRow.items_done + lastRow.items_failed);
      const instant = delta / Math.max(0.001, (now - lastSnapshotAt) / 1000);
      rate = rate === 0 ? instant : rate * 0.7 + instant * 0.3;
    }
    lastRow = row;
    lastSnapshotAt = now;
    monitor.progress?.(row);
    monitor.throttle?.(guard.state());
    const done = row.items_done + row.items_failed;
    const snapshot = {
      runId,
      stage,
      status: control.paused ? 'paused' : guard.state().throttled ? 'throttled' : 'running',
      done,
      total: stageItems ?? row.total_items ?? count.value,
      failed: row.items_failed,
      ratePerSecond: rate,
      etaSeconds: rate > 0 ? Math.max(0, ((stageItems ?? row.total_items ?? count.value) - done) / rate) : null,
      throttle: guard.state().throttled ? { probe: guard.state().probe ?? '', value: guard.state().value } : null,
    };
    events.progress(snapshot);
    if (controlDir) writeStatusSnapshot(controlDir, runId, { ...snapshot, control: row.control, lastProgressAt: row.last_progress_at, at: new Date().toISOString(), pid: process.pid });
    await store.workerHeartbeat(runId, processId);
  };
  let ticking = true;
  // Cut short when the workers are done, so the stage ends at its last commit, not up to a second later.
  const loopDone = new AbortController();
  const loop = (async () => {
    while (ticking) {
      await tick().catch(() => undefined);
      await sleep(1000, loopDone.signal).catch(() => undefined);
    }
  })();
  let unlisten: (() => Promise<void>) | undefined;
  if (store.db.listen) {
    unlisten = await store.db
      .listen('reprise_control', (payload) => { if (payload.includes(runId)) void tick().catch(() => undefined); })
      .catch(() => undefined);
  }

  const workers = Math.max(1, opts.workers ?? 1);
  const ctx = {
    store,
    runId,
    stage,
    plan,
    source: run.source,
    handler: run.handler,
    gate,
    limiter,
    guard,
    dedupe: run.dedupe,
    dedupeInStateDb: run.dedupeInStateDb,
    batcher: new SqlBatcher(),
    control,
    skipKeys,
    leaseTtlMs: opts.leaseTtlMs ?? Number(process.env.REPRISE_LEASE_TTL_MS ?? 30_000),
    outageTimeoutMs: opts.outageTimeoutMs ?? Number(process.env.REPRISE_OUTAGE_TIMEOUT_MS ?? 60_000),
    observer,
    board: new ChunkBoard(),
  };
  let failure: unknown;
  try {
    await Promise.all(Array.from({ length: workers }, (_, i) => runWorker(ctx, `${processId}/w${i}`).catch((e) => {
      failure ??= e;
      control.stop('failed', (e as Error).message);
    })));
  } finally {
    ticking = false;
    loopDone.abort();
    await loop;
    await unlisten?.();
    unsubscribeGuard?.();
    await limiter.close?.();
    await guard.close?.();
    await monitor.close?.();
    opts.signal?.removeEventListener('abort', onSignal);
    if (controlDir) clearStatusSnapshot(controlDir, runId);
  }
  if (failure && !(failure instanceof DedupeUnavailableError)) throw failure;

  // A stage that stopped because the store went away (fail-closed, store-unreachable) may find it
  // still unreachable here: it did not finish, and it stops as such (exit 4, resumable).
  const states = await store.chunkStates(runId, stage).catch((e: unknown) => {
    if (!isConnectionError(e)) throw e;
    control.stop('store-unreachable', (e as Error).message);
    return undefined;
  });
  const finished = states !== undefined && states.pending === 0 && states.leased === 0;
  if (!finished || control.stopped) {
    const stop = control.stopReason ?? { reason: 'paused', detail: 'paused' };
    const status = stop.reason === 'abort' || stop.reason === 'signal' || stop.reason === 'error-budget' || stop.reason === 'stall' ? 'aborted' : stop.reason === 'fail-closed' || stop.reason === 'store-unreachable' ? 'paused' : 'aborted';
    await store.updateRun(runId, { status }).catch(() => undefined);
    await store.recordEvent(runId, processId, 'stopped', { stage, ...stop }).catch(() => undefined);
    let report: Report | undefined;
    let files: ReportPaths | undefined;
    try {
      report = await stageReport(run, stage, startedAt, count, fingerprints, workers, [], { reason: stop.reason, detail: stop.detail }, 'aborted', monitor.reportExtras?.bind(monitor));
      files = await saveReport(run, report, opts.reportsDir);
    } catch {
      // the store may be the thing that is down; the stop itself is what matters
    }
    events.event({ type: 'aborted', run: runId, stage, reason: stop.reason, detail: stop.detail });
    return { runId, stage, outcome: 'stopped', exitCode: ExitCode.stopped, stop, report, reportFiles: files };
  }

  // Only the process that moves the stage to completed writes its report: one report per stage.
  const { rowCount } = await store.db.query(
    `update reprise.runs set status = 'completed', finished_at = now(), updated_at = now() where id = $1 and stage = $2 and status <> 'completed'`,
    [runId, stage],
  );
  if (rowCount === 0) {
    events.event({ type: 'finished', run: runId, stage, outcome: 'joined' });
    return { runId, stage, outcome: 'joined', exitCode: ExitCode.ok };
  }
  const validations = stage === 'canary' ? await validateCanary(run) : [];
  const failedValidation = validations.some((v) => !v.ok);
  const report = await stageReport(run, stage, startedAt, count, fingerprints, workers, validations, null, failedValidation ? 'validation-failed' : 'completed', monitor.reportExtras?.bind(monitor));
  const files = await saveReport(run, report, opts.reportsDir);
  await store.recordEvent(runId, processId, 'stage-completed', { stage, report: report.hash, validationsFailed: validations.filter((v) => !v.ok).map((v) => v.name) });
  events.event({ type: 'finished', run: runId, stage, outcome: report.outcome, report: report.hash, files });
  if (failedValidation) {
    return { runId, stage, outcome: 'validation-failed', exitCode: ExitCode.canaryFailed, report, reportFiles: files };
  }
  return { runId, stage, outcome: 'completed', exitCode: ExitCode.ok, report, reportFiles: files };
}

async function validateCanary(run: OpenedRun): Promise<Report['validations']> {
  const out: Report['validations'] = [];
  for (const v of run.plan.canary.validate) {
    try {
      const db = await run.targets.sql(v.connection);
      const r = await db.transaction((tx) => tx.query<{ ok: unknown }>(v.query), { readOnly: true });
      const ok = r.rows[0]?.ok;
      out.push({ name: v.name, ok: ok === true, detail: ok === true ? null : `returned ok = ${JSON.stringify(ok ?? null)}` });
    } catch (e) {
      out.push({ name: v.name, ok: false, detail: `query failed: ${(e as Error).message}` });
    }
  }
  return out;
}

async function stageReport(
  run: OpenedRun,
  stage: ChunkStage,
  startedAt: Date,
  count: { value: number; countedAt: string; outsideWindow: number },
  fingerprints: Record<string, Fingerprint>,
  workers: number,
  validations: Report['validations'],
  abort: { reason: string; detail: string } | null,
  outcome: Report['outcome'],
  extras?: (base: Pick<ReportBody, 'errors' | 'throttle'>) => Partial<Pick<ReportBody, 'errors' | 'throttle'>>,
): Promise<Report> {
  const { store, runId, plan } = run;
  const finished = Date.now();
  const summary = await store.ledgerSummary(runId, stage);
  const chunks = await store.getChunks(runId, stage);
  const throughput = new ThroughputRecorder({ startedAt: startedAt.getTime() });
  let processed = 0;
  let failed = 0;
  let planned = 0;
  for (const c of chunks) {
    planned += c.keys ? c.keys.length : c.items;
    if (c.state !== 'committed') continue;
    processed += c.items + c.errors;
    failed += c.errors;
    throughput.add(c.items + c.errors, c.committed_at!.getTime());
  }
  const failures = (await store.failures(runId, 200)).filter((f) => f.stage === stage);
  const row = await store.getRun(runId);
  const canaryKeys = stage === 'canary' ? chunks.flatMap((c) => (c.keys ?? []).map((k) => (Array.isArray(k) && k.length === 1 ? String(k[0]) : typeof k === 'number' ? String(k) : JSON.stringify(k)))).slice(0, 20) : [];
  const body: ReportBody = {
    kind: 'reprise/report@1',
    runId,
    plan: plan.name,
    revision: plan.revision,
    manifest: run.manifest.hash,
    stage,
    outcome,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - startedAt.getTime(),
    count: { value: count.value, expect: (plan.selection ?? plan.source)!.expect, countedAt: count.countedAt },
    counts: {
      selected: stage === 'canary' ? planned : count.value,
      processed,
      succeeded: processed - failed,
      failed,
      skippedOutsideWindow: count.outsideWindow,
      remaining: Math.max(0, (stage === 'canary' ? planned : count.value - (await canaryProcessed(run))) - processed),
    },
    effects: plan.sideEffects.map((e) => {
      const counts = emptyEffectCounts();
      for (const s of summary) if (s.effect === e.name && s.status in counts) counts[s.status as keyof typeof counts] += s.n;
      return { name: e.name, kind: e.kind, policy: e.backfill, delivery: e.delivery, live: e.live, counts };
    }),
    errors: { total: failed, samples: failures.slice(0, 20).map((f) => ({ itemKey: f.item_key, attempt: f.attempts, message: f.error, at: new Date(f.at).toISOString() })) },
    throttle: await throttleSection(store, runId, stage, startedAt),
    throughput: throughput.toJSON(finished),
    validations,
    fingerprints: reportFingerprints(fingerprints),
    canary: stage === 'canary' ? { size: plan.canary.size, pick: plan.canary.pick, keys: canaryKeys } : null,
    preview: [],
    abort,
    workers,
  };
  Object.assign(body, extras?.({ errors: body.errors, throttle: body.throttle }));
  return finalizeReport(body);
}

async function canaryProcessed(run: OpenedRun): Promise<number> {
  const chunks = await run.store.getChunks(run.runId, 'canary');
  return chunks.filter((c) => c.state === 'committed').reduce((n, c) => n + c.items + c.errors, 0);
}

async function saveReport(run: OpenedRun, report: Report, dir = 'reports'): Promise<ReportPaths> {
  await run.store.saveReport(run.runId, report.stage, report.hash, report);
  return writeReportFiles(dir, report);
}
