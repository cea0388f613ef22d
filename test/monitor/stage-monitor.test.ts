/**
 * The stage monitor's hooks on their own: a fake run (plan, state store calls recorded), a clock
 * the test moves, a real webhook receiver. The real-run tests are stall-run, error-budget-run
 * and cli-run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RunMetrics } from '../../executor/monitor/metrics.js';
import { createStageMonitor, mergeErrors, STALL_WATCH_ACTOR } from '../../executor/monitor/stage-monitor.js';
import { RunControl } from '../../executor/stages/control.js';
import type { ProgressSnapshot, RunEvent, RunEvents } from '../../executor/stages/events.js';
import type { OpenedRun } from '../../executor/stages/open.js';
import type { RunRow } from '../../executor/store/store.js';
import { startHttpServer, type TestHttpServer } from '../support/http.js';

const RUN = 'orders.r1.0123abcd';
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

function fakeRun(abort: Partial<OpenedRun['plan']['abort']> = {}) {
  const controls: Array<{ control: string; who: string; reason?: string }> = [];
  const row = { id: RUN, total_items: 1000, items_done: 0, items_failed: 0, last_progress_at: null as Date | null, control: 'run' } as unknown as RunRow;
  const run = {
    runId: RUN,
    manifest: { hash: `sha256:${'0123abcd'.repeat(8)}` },
    plan: {
      name: 'orders',
      revision: 1,
      abort: { maxErrorRate: 0.01, errorWindow: 1000, maxConsecutiveErrors: 3, stallAfter: 60_000, onStall: 'alert', alert: null, ...abort },
      rate: { protect: [{ name: 'replica-lag', max: 5 }] },
      sideEffects: [{ name: 'write_invoice', backfill: 'replay' }],
    },
    store: {
      async setControl(_id: string, control: string, who: string, reason?: string) {
        controls.push({ control, who, reason });
        return row;
      },
      async getRun() {
        return row;
      },
      async getChunks() {
        return [];
      },
    },
  } as unknown as OpenedRun;
  return { run, row, controls };
}

function recorder(): RunEvents & { events: RunEvent[]; logs: string[]; snapshots: ProgressSnapshot[] } {
  const events: RunEvent[] = [];
  const logs: string[] = [];
  const snapshots: ProgressSnapshot[] = [];
  return { events, logs, snapshots, event: (e) => void events.push(e), log: (level, m) => void logs.push(`${level}: ${m}`), progress: (p) => void snapshots.push(p) };
}

function setup(abort: Partial<OpenedRun['plan']['abort']> = {}, env: NodeJS.ProcessEnv = {}) {
  let t = Date.parse('2026-11-13T09:00:00Z');
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const { run, row, controls } = fakeRun(abort);
  const control = new RunControl();
  const events = recorder();
  const metrics = new RunMetrics({ run: RUN, plan: 'orders', revision: 1, manifest: run.manifest.hash, stage: 'full', probes: ['replica-lag'], now: clock.now });
  const m = createStageMonitor({ run, stage: 'full', control, metrics, events, env, now: clock.now, stallCheckEveryMs: 1_000_000, alert: { attempts: 1, timeoutMs: 2_000 } });
  closers.push(async () => { await m.close(); });
  return { m, run, row, controls, control, events, metrics, clock };
}

const gauge = async (metrics: RunMetrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> => {
  const all = await metrics.registry.getMetricsAsJSON();
  const metric = all.find((x) => x.name === name) as { values: Array<{ value: number; labels: Record<string, string> }> } | undefined;
  return metric?.values.find((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val))?.value;
};

describe('stage monitor: error budget', () => {
  it('stops the stage on the first trip, with error events and the failures for the report', async () => {
    const { m, control, events, metrics } = setup({ maxConsecutiveErrors: 3 });
    m.itemDone(true, '1', undefined, 1);
    m.itemDone(false, '2', 'boom 2', 2);
    m.itemDone(false, '3', 'boom 3', 1);
    expect(control.stopped).toBe(false);
    m.itemDone(false, '4', 'boom 4', 1);
    expect(control.stopReason).toEqual({ reason: 'error-budget', detail: expect.stringMatching(/^consecutive-errors: 3 items failed in a row \(abort\.maxConsecutiveErrors is 3\); last error: boom 4$/) });
    expect(events.events.filter((e) => e.type === 'error').map((e) => [e.itemKey, e.attempt, e.message, e.final])).toEqual([
      ['2', 2, 'boom 2', true],
      ['3', 1, 'boom 3', true],
      ['4', 1, 'boom 4', true],
    ]);
    expect(events.logs.filter((l) => l.includes('error budget exceeded'))).toHaveLength(1);
    expect(await gauge(metrics, 'reprise_errors_consecutive')).toBe(3);
    expect(await gauge(metrics, 'reprise_items_failed_total')).toBe(3);

    const stored = { total: 1, samples: [{ itemKey: '9', attempt: 1, message: 'from another process', at: '2026-11-13T08:59:00.000Z' }] };
    const extras = m.reportExtras({ errors: stored, throttle: { throttledMs: 0, episodes: [] } });
    expect(extras.throttle).toBeUndefined();
    expect(extras.errors!.total).toBe(3);
    expect(extras.errors!.samples.map((s) => s.itemKey)).toEqual(['9', '2', '3', '4']);
  });

  it('leaves the stored failures alone when this process saw none', () => {
    const { m } = setup();
    m.itemDone(true, '1', undefined, 1);
    expect(m.reportExtras({ errors: { total: 4, samples: [] }, throttle: { throttledMs: 0, episodes: [] } })).toEqual({});
  });

  it('merges samples one per item, oldest and newest kept', () => {
    const at = (i: number): string => new Date(Date.UTC(2026, 10, 13, 9, 0, i)).toISOString();
    const mine = { total: 30, samples: Array.from({ length: 30 }, (_, i) => ({ itemKey: String(i), attempt: 1, message: 'x', at: at(i) })) };
    const merged = mergeErrors(mine, { total: 2, samples: [{ itemKey: '0', attempt: 3, message: 'stored, later', at: at(59) }] });
    expect(merged.total).toBe(30);
    expect(merged.samples).toHaveLength(20);
    expect(merged.samples[0]!.itemKey).toBe('1');
    expect(merged.samples.at(-1)).toMatchObject({ itemKey: '0', message: 'stored, later' });
  });
});

describe('stage monitor: stalls', () => {
  async function hook(): Promise<TestHttpServer> {
    const h = await startHttpServer();
    closers.push(() => h.close());
    return h;
  }

  it('alert: metric, log, event and webhook once per episode; progress from any process ends it', async () => {
    const h = await hook();
    const { m, row, controls, control, events, metrics, clock } = setup({ onStall: 'alert', alert: { webhook: { env: 'HOOK' } } }, { HOOK: `${h.url}/alert` });
    m.progress(row);
    clock.advance(59_999);
    expect(m.stall.check()).toBe(false);
    clock.advance(1);
    expect(m.stall.check()).toBe(true);
    expect(m.stall.check()).toBe(true);
    await m.close();
    expect(h.requests).toHaveLength(1);
    expect(h.requests[0]!.json).toMatchObject({ type: 'reprise.stall', run: RUN, stage: 'full', onStall: 'alert', status: 'running', stalledForSeconds: 60, lastProgressAt: '2026-11-13T09:00:00.000Z' });
    expect(events.events.find((e) => e.type === 'stalled')).toMatchObject({ action: 'alert', webhook: true, stalledForSeconds: 60, lastProgressAt: '2026-11-13T09:00:00.000Z' });
    expect(events.logs).toContainEqual(expect.stringMatching(/^warn: stalled: no committed progress for 60s .*onStall: alert$/));
    expect(events.logs).toContainEqual('info: stall alert delivered (HTTP 200)');
    expect(controls).toEqual([]);
    expect(control.stopped).toBe(false);
    expect(await gauge(metrics, 'reprise_stalled')).toBe(1);
  });

  it('counts another process\'s commit (last_progress_at advancing) as progress', async () => {
    const { m, row, events, metrics, clock } = setup({ onStall: 'alert' });
    row.last_progress_at = new Date('2026-11-13T08:00:00Z');
    m.progress(row);
    clock.advance(60_000);
    expect(m.stall.check()).toBe(true);
    await Promise.resolve();
    expect(await gauge(metrics, 'reprise_stalled')).toBe(1);
    clock.advance(5_000);
    row.last_progress_at = new Date('2026-11-13T09:01:04Z');
    m.progress(row);
    expect(m.stall.stalled).toBe(false);
    expect(await gauge(metrics, 'reprise_stalled')).toBe(0);
    expect(events.events.at(-1)).toMatchObject({ type: 'resumed', from: 'stalled' });
    clock.advance(59_000);
    expect(m.stall.check()).toBe(false);
  });

  it('pause: sets the run\'s pause flag, as the stall watch, with the reason', async () => {
    const { m, controls, control, events, clock } = setup({ onStall: 'pause' });
    clock.advance(60_000);
    m.stall.check();
    await m.close();
    expect(controls).toEqual([{ control: 'pause', who: STALL_WATCH_ACTOR, reason: expect.stringMatching(/^no committed progress for 60s/) }]);
    expect(control.stopped).toBe(false);
    expect(events.events.filter((e) => e.type === 'stalled')).toHaveLength(1);
    expect(events.logs).not.toContainEqual(expect.stringMatching(/webhook|alert/));
  });

  it('a paused run is not judged; resumed and still stuck, it alerts again', () => {
    const { m, events, clock } = setup({ onStall: 'alert' });
    clock.advance(60_000);
    m.stall.check();
    m.paused(true);
    clock.advance(600_000);
    m.stall.check();
    expect(events.events.filter((e) => e.type === 'stalled')).toHaveLength(1);
    m.paused(false);
    clock.advance(59_000);
    expect(m.stall.check()).toBe(false);
    clock.advance(1_000);
    expect(m.stall.check()).toBe(true);
    expect(events.events.filter((e) => e.type === 'stalled')).toHaveLength(2);
  });

  it('abort: stops this process (reason stall) and sets the abort flag for every other', async () => {
    const { m, controls, control, clock } = setup({ onStall: 'abort' });
    clock.advance(60_000);
    m.stall.check();
    expect(control.stopReason).toEqual({ reason: 'stall', detail: expect.stringMatching(/^no committed progress for 60s/) });
    await m.close();
    expect(controls).toEqual([{ control: 'abort', who: STALL_WATCH_ACTOR, reason: expect.any(String) }]);
  });

  it('a webhook env var that is not set is logged, never thrown', async () => {
    const { m, events, clock } = setup({ onStall: 'alert', alert: { webhook: { env: 'NOT_SET_ANYWHERE' } } });
    clock.advance(60_000);
    m.stall.check();
    await m.close();
    expect(events.events.find((e) => e.type === 'stalled')).toMatchObject({ webhook: false });
    expect(events.logs).toContainEqual('error: stall alert not sent: abort.alert.webhook reads environment variable NOT_SET_ANYWHERE, which is not set');
  });
});

describe('stage monitor: throttling', () => {
  it('records episodes, emits throttled/resumed, sets the gauge, and does not count a throttled run as stalled', async () => {
    const { m, events, metrics, clock } = setup({ onStall: 'abort' });
    m.throttle({ throttled: true, probe: 'replica-lag', value: 7.5, reason: null });
    m.throttle({ throttled: true, probe: 'replica-lag', value: 9, reason: null });
    expect(await gauge(metrics, 'reprise_throttled', { probe: 'replica-lag' })).toBe(1);
    clock.advance(120_000);
    expect(m.stall.check()).toBe(false);
    m.throttle({ throttled: false, probe: null, value: null, reason: null });
    expect(await gauge(metrics, 'reprise_throttled', { probe: 'replica-lag' })).toBe(0);
    expect(events.events.map((e) => e.type)).toEqual(['throttled', 'resumed']);
    expect(events.events[0]).toMatchObject({ probe: 'replica-lag', value: 7.5, max: 5 });
    expect(events.events[1]).toMatchObject({ from: 'throttled', afterMs: 120_000 });
    const extras = m.reportExtras({ errors: { total: 0, samples: [] }, throttle: { throttledMs: 0, episodes: [] } });
    expect(extras.throttle).toEqual({ throttledMs: 120_000, episodes: [{ probe: 'replica-lag', value: 9, max: 5, from: '2026-11-13T09:00:00.000Z', to: '2026-11-13T09:02:00.000Z' }] });
    expect(await gauge(metrics, 'reprise_throttled_seconds_total')).toBe(120);
  });

  it('emits a final progress snapshot of the run on close', async () => {
    const { m, row, events } = setup();
    (row as { items_done: number }).items_done = 990;
    (row as { items_failed: number }).items_failed = 10;
    await m.close();
    expect(events.snapshots.at(-1)).toMatchObject({ runId: RUN, stage: 'full', done: 1000, total: 1000, failed: 10 });
  });
});
