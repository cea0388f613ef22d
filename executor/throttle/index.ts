/**
 * The stage driver's default rate limiter and live guard (executor/stages/run.ts), and the
 * one-off probe check the go/no-go preflight runs.
 *
 * - Rate: one GCRA bucket per run shared by every worker of every process (bucket.ts): in Redis
 *   when the plan has a Redis connection (its dedupe store's, else the first by name), else in the
 *   state store. Unreachable: fail closed (hold), then stop the stage after the outage timeout.
 * - Live: a ProbeGuard over `rate.protect[]` (probes.ts) whose state is journaled in the run's
 *   row and events (journal.ts); no probes: always healthy.
 */
import type { Plan } from '../../schema/manifest.types.js';
import type { RunControl } from '../stages/control.js';
import type { RunEvents } from '../stages/events.js';
import type { OpenedRun } from '../stages/open.js';
import { SharedBucket } from './bucket.js';
import { ThrottleJournal } from './journal.js';
import { alwaysHealthy, type LiveGuard, type RateLimiter } from './limiter.js';
import { openProbes, ProbeGuard, readProbes, type ProbeReading } from './probes.js';
import { RedisBucketBackend } from './redis-bucket.js';
import { StateBucketBackend } from './state-bucket.js';

export { SharedBucket, type BucketBackend, type SharedBucketOptions } from './bucket.js';
export { RedisBucketBackend, REDIS_BUCKET_PREFIX } from './redis-bucket.js';
export { StateBucketBackend } from './state-bucket.js';
export { ProbeGuard, HEALTHY_STREAK, openProbes, readProbes, type ProbeReading, type ProbeRunner, type ProbeGuardOptions } from './probes.js';
export { ThrottleJournal } from './journal.js';
export { throttleSection } from './episodes.js';
export { alwaysHealthy, LocalTokenBucket, sleep, type LiveGuard, type RateLimiter, type ThrottleState } from './limiter.js';

export interface ThrottleContext {
  run: OpenedRun;
  stage: string;
  control: RunControl;
  events: RunEvents;
  /** This process (`host:pid:random`): the actor of journaled events. */
  owner: string;
  /** Resolves probes' `http.url: { env }`. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** How long the rate bucket may stay unreachable before the stage stops (exit 4). @defaultValue 60000 */
  outageTimeoutMs?: number;
}

/** Each run's live guard pace (ProbeGuard.pace), read by its rate limiter at every reservation. */
const paces = new WeakMap<OpenedRun, () => number>();

/** The Redis connection holding the rate bucket: the dedupe store's when it is Redis, else the first Redis connection by name; null: the state store. */
export function bucketRedisConnection(plan: Plan): string | null {
  if (plan.dedupe?.store === 'redis') return plan.dedupe.connection;
  const names = Object.entries(plan.connections).filter(([, c]) => c?.kind === 'redis').map(([n]) => n).sort();
  return names[0] ?? null;
}

/** The run's shared rate bucket (see bucket.ts). */
export async function createRateLimiter(ctx: ThrottleContext): Promise<SharedBucket> {
  const { run, control, events } = ctx;
  const { plan, runId } = run;
  const conn = bucketRedisConnection(plan);
  const backend = conn
    ? new RedisBucketBackend(await run.targets.redis(conn), runId, `Redis ${run.targets.describe(conn)}`)
    : new StateBucketBackend(run.store.db, runId, `the state store (${run.store.label})`);
  const outageTimeoutMs = ctx.outageTimeoutMs ?? 60_000;
  return new SharedBucket(backend, {
    itemsPerSecond: plan.rate.itemsPerSecond,
    outageTimeoutMs,
    pace: () => paces.get(run)?.() ?? 1,
    onUnreachable: (e) => events.log('warn', `rate bucket in ${backend.label} unreachable (${e.message}); no item starts until it answers (fail closed)`),
    onReachable: (ms) => events.log('info', `rate bucket in ${backend.label} answers again after ${Math.round(ms)} ms`),
    onOutage: (e) => {
      const detail = `the rate bucket in ${backend.label} has been unreachable for ${Math.round(outageTimeoutMs / 1000)} s (${e.message}); the run cannot be held to its rate`;
      events.log('error', `${detail}; stopping this process (resume with reprise run once it is back)`);
      control.stop('fail-closed', detail);
    },
  });
}

/** The run's live guard: the plan's protect probes, checked every `rate.checkEvery` (see probes.ts). Reads them once before returning. */
export async function createLiveGuard(ctx: ThrottleContext): Promise<LiveGuard> {
  const { run, events } = ctx;
  const { plan } = run;
  if (plan.rate.protect.length === 0) return alwaysHealthy;
  const runners = openProbes(plan, run.targets, ctx.env ?? process.env);
  const journal = new ThrottleJournal({
    store: run.store,
    runId: run.runId,
    stage: ctx.stage,
    owner: ctx.owner,
    maxOf: (probe) => plan.rate.protect.find((p) => p.name === probe)?.max ?? null,
    checkEveryMs: plan.rate.checkEvery,
    onError: (e) => events.log('warn', `could not record the throttle state in the state store: ${e.message}`),
  });
  journal.adoptLeftover();
  const guard: ProbeGuard = new ProbeGuard(runners, {
    checkEveryMs: plan.rate.checkEvery,
    onCheck: (_readings, state) => { void journal.record(state, guard.since ?? Date.now()); },
  });
  await guard.start();
  paces.set(run, () => guard.pace());
  return {
    waitUntilHealthy: (signal) => guard.waitUntilHealthy(signal),
    state: () => guard.state(),
    subscribe: (listener) => guard.subscribe(listener),
    async close() {
      paces.delete(run);
      await guard.close();
      await journal.close();
    },
  };
}

export interface CheckProbesOptions {
  /** Resolves `http.url: { env }`. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
}

/**
 * Reads every protect probe of the plan once (the go/no-go "protect probes" check): one row per
 * probe, `ok` false when it is over its max, errors or times out. No probes: no rows.
 */
export async function checkProbesOnce(run: Pick<OpenedRun, 'plan' | 'targets'>, opts: CheckProbesOptions = {}): Promise<ProbeReading[]> {
  const runners = openProbes(run.plan, run.targets, opts.env ?? process.env);
  try {
    return await readProbes(runners);
  } finally {
    for (const r of runners) await r.close().catch(() => undefined);
  }
}


/** A row of the go/no-go table (the shape executor/stages/preflight.ts prints). */
export interface ProbesCheck {
  ok: boolean;
  status: 'go' | 'no-go' | 'n/a';
  detail: string;
  code?: string;
  hint?: string;
  extra?: Record<string, unknown>;
}

/**
 * The go/no-go "protect probes" row: every probe read once. No-go when any is over its max
 * (PROBE_UNHEALTHY: live traffic suffers now; starting would only hold the run at zero) or
 * cannot be read (PROBE_FAILED: a wrong URL or query would hold the run forever).
 */
export async function protectProbesCheck(run: Pick<OpenedRun, 'plan' | 'targets'>, opts: CheckProbesOptions = {}): Promise<ProbesCheck> {
  if (run.plan.rate.protect.length === 0) return { ok: true, status: 'n/a', detail: 'none declared' };
  const rows = await checkProbesOnce(run, opts);
  const show = (r: ProbeReading): string => `${r.probe} ${r.value === null ? '?' : r.value} (max ${r.max})${r.reason && r.value === null ? `: ${r.reason}` : ''}`;
  const extra = { probes: rows.map((r) => ({ probe: r.probe, ok: r.ok, value: r.value, max: r.max, reason: r.reason, ms: r.ms })) };
  const failed = rows.filter((r) => !r.ok && r.value === null);
  const over = rows.filter((r) => !r.ok && r.value !== null);
  if (failed.length) {
    return { ok: false, status: 'no-go', code: 'PROBE_FAILED', detail: failed.map(show).join('; '), hint: 'a probe that cannot be read holds the run at zero (fail closed): fix its query, URL or connection', extra };
  }
  if (over.length) {
    return { ok: false, status: 'no-go', code: 'PROBE_UNHEALTHY', detail: over.map(show).join('; '), hint: 'live traffic is suffering now; start when the probes are healthy', extra };
  }
  return { ok: true, status: 'go', detail: rows.map(show).join(', '), extra };
}
