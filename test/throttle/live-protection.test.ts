/**
 * A protect probe goes unhealthy mid-run, twice: first over its max, then erroring (HTTP 500).
 * While it is unhealthy no item starts; processing resumes after it recovers; the run's row, its
 * events and the report say so.
 *
 * How "while it is unhealthy" is pinned down without timing anything:
 * - The guard's transitions are observed as they happen (its subscribe() calls back in the same
 *   synchronous step that flips it): throttled at T1, resumed at T2.
 * - The probe endpoint logs every answer it sends. Because the guard checks one round at a time
 *   (the next request is sent only after the previous answer was acted on), T1 must follow the
 *   *first* unhealthy answer and precede the next request, and T2 must follow exactly
 *   `healthyStreak` (2) healthy answers after the last unhealthy one — the check interval and
 *   the streak, accounted for exactly.
 * - Every sink row carries `started`, read by the handler in the same synchronous step in which
 *   the worker passed the guard (and took its rate token), so no row may have T1 < started < T2.
 *   Rows applied after T1 must have started before it (in flight when the probe tripped), and
 *   there can be at most `concurrency` × workers of them.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStage } from '../../executor/stages/run.js';
import type { RunEvent, RunEvents } from '../../executor/stages/events.js';
import { createLiveGuard } from '../../executor/throttle/index.js';
import type { ThrottleState } from '../../executor/throttle/limiter.js';
import { FLAP_WINDOW, HEALTHY_STREAK } from '../../executor/throttle/probes.js';
import { createTestDatabase, withClient, type TestDatabase } from '../support/db.js';
import { startHttpServer, type TestHttpServer } from '../support/http.js';
import { waitUntil } from '../support/runs.js';
import { seedThrottleDb, sinkRows, throttlePlan } from './fixture.js';

const N = 600;
const CONCURRENCY = 4;
const WORKERS = 2;

type Mode = 'ok' | 'over' | 'error';

describe('a protect probe goes unhealthy mid-run', () => {
  let db: TestDatabase;
  let http: TestHttpServer;
  let mode: Mode = 'ok';
  const answers: Array<{ at: number; mode: Mode }> = [];

  beforeAll(async () => {
    db = await createTestDatabase('live_protect');
    await seedThrottleDb(db.url, N);
    http = await startHttpServer();
    http.respond = (_req, res) => {
      const m = mode;
      answers.push({ at: Date.now(), mode: m });
      if (m === 'error') { res.writeHead(500); res.end('overloaded'); return; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ latency: { p99: m === 'over' ? 480 : 12 } }));
    };
  });

  afterAll(async () => {
    await http?.close();
  });

  it('starts no item while unhealthy (over max, then erroring), resumes after a healthy streak, and says so', async () => {
    process.env.THROTTLE_DB_URL = db.url;
    const plan = throttlePlan('live-protect', {
      n: N, itemsPerSecond: 150, concurrency: CONCURRENCY, chunkSize: 40, checkEvery: '150ms',
      protect: [{ name: 'live-p99', http: { url: `${http.url}/health`, field: 'latency.p99' }, max: 100, timeoutMs: 1000 }],
    });
    const env = { ...process.env, THROTTLE_DB_URL: db.url };
    const transitions: Array<ThrottleState & { at: number }> = [];
    const jsonEvents: RunEvent[] = [];
    const events: RunEvents = { event: (e) => jsonEvents.push(e), progress: () => undefined, log: () => undefined };
    const run = runStage({
      plan: plan.path, stage: 'full', stateUrl: 'unused://', env, workers: WORKERS, events,
      reportsDir: mkdtempSync(join(tmpdir(), 'reprise-live-')),
      // The default guard, observed: transitions are timestamped in the step that makes them.
      guard: async (opened, control) => {
        const g = await createLiveGuard({ run: opened, stage: 'full', control, events, owner: 'test-process' });
        g.subscribe!((s) => transitions.push({ ...s, at: Date.now() }));
        return g;
      },
    });
    const count = async (): Promise<number> => withClient(db.url, async (c) => Number((await c.query('select count(*) as n from sink')).rows[0].n));
    const runRow = async () => withClient(db.url, async (c) => (await c.query(`select status, throttle, throttled_ms from reprise.runs`)).rows[0]);

    const episode = async (bad: Mode, afterItems: number): Promise<{ t1: number; t2: number; flippedAt: number; healedAt: number }> => {
      await waitUntil(async () => ((await count()) >= afterItems ? true : undefined), `${afterItems} items in the sink`, 90_000, 20);
      const seen = transitions.length;
      const flippedAt = Date.now();
      mode = bad;
      const t1 = await waitUntil(async () => transitions.slice(seen).find((t) => t.throttled)?.at, 'the guard to throttle', 30_000, 10);
      // The row says throttled, with the probe, while it is.
      const row = await waitUntil(async () => { const r = await runRow(); return r.status === 'throttled' ? r : undefined; }, 'runs.status = throttled', 30_000, 20);
      expect(row.throttle).toMatchObject({ probe: 'live-p99', max: 100 });
      expect(row.throttle.since).toBeTruthy();
      if (bad === 'over') expect(row.throttle).toMatchObject({ value: 480, reason: 'value 480 over max 100' });
      else expect(row.throttle).toMatchObject({ value: null, reason: 'error: HTTP 500' });
      // Stay unhealthy for a few more checks while workers wait.
      const mark = answers.length;
      await waitUntil(async () => (answers.length >= mark + 4 ? true : undefined), 'four more unhealthy answers', 30_000, 10);
      const healedAt = Date.now();
      mode = 'ok';
      const t2 = await waitUntil(async () => transitions.slice(seen).find((t) => !t.throttled)?.at, 'the guard to resume', 30_000, 10);
      return { t1, t2, flippedAt, healedAt };
    };

    const e1 = await episode('over', 120);
    // The second trip comes after the flap window, so it needs the plain streak again (a quick
    // re-trip would double it: tested in probes.test.ts).
    await waitUntil(async () => (answers.filter((a) => a.at > e1.t2).length > FLAP_WINDOW ? true : undefined), 'the flap window to pass', 30_000, 10);
    const e2 = await episode('error', (await count()) + 20);
    const out = await run;
    expect(out.exitCode, JSON.stringify(out.stop)).toBe(0);
    expect(out.outcome).toBe('completed');

    const rows = await sinkRows(db.url);
    expect(rows).toHaveLength(N);
    expect(new Set(rows.map((r) => r.item)).size).toBe(N);

    for (const [e, bad] of [[e1, 'over'], [e2, 'error']] as const) {
      // The guard tripped on the first unhealthy answer, and before the next request.
      const unhealthy = answers.filter((a) => a.mode === bad);
      const firstBad = unhealthy[0]!;
      expect(firstBad.at).toBeGreaterThanOrEqual(e.flippedAt);
      expect(firstBad.at).toBeLessThanOrEqual(e.t1);
      expect(answers.filter((a) => a.mode === bad && a.at <= e.t1)).toHaveLength(1);
      // It resumed on exactly the second healthy answer after the last unhealthy one.
      const lastBad = unhealthy.at(-1)!;
      expect(lastBad.at).toBeLessThan(e.healedAt + 1);
      const healthyBefore = answers.filter((a) => a.mode === 'ok' && a.at > lastBad.at && a.at <= e.t2);
      expect(healthyBefore).toHaveLength(HEALTHY_STREAK);
      expect(e.t2).toBeGreaterThan(e.healedAt - 1);

      // No item started while the guard held the run.
      const startedWhileHeld = rows.filter((r) => r.started > e.t1 && r.started < e.t2);
      expect(startedWhileHeld, `items started during [${e.t1}, ${e.t2}]`).toEqual([]);
      // Items applied after the trip were already in flight, and there are at most concurrency × workers of them.
      const inFlight = rows.filter((r) => r.at > e.t1 && r.started <= e.t1);
      expect(rows.filter((r) => r.at > e.t1 && r.at < e.t2 && r.started > e.t1)).toEqual([]);
      expect(inFlight.length).toBeLessThanOrEqual(CONCURRENCY * WORKERS);
      // And processing went on after it recovered.
      expect(rows.filter((r) => r.started >= e.t2).length).toBeGreaterThan(0);
      console.log(`episode ${bad}: held ${e.t2 - e.t1} ms; ${inFlight.length} items were in flight at the trip; ${answers.filter((a) => a.mode === bad).length} unhealthy answers`);
      answers.splice(0, answers.indexOf(lastBad) + 1); // the next episode's bookkeeping starts after this one
    }

    // The journal: one throttled/resumed pair per episode in reprise.events, time accumulated, status back to completed.
    const journal = await withClient(db.url, async (c) => (await c.query(`select action, detail from reprise.events where action in ('throttled', 'resumed') order by id`)).rows);
    expect(journal.map((j) => j.action)).toEqual(['throttled', 'resumed', 'throttled', 'resumed']);
    expect(journal[0].detail).toMatchObject({ stage: 'full', probe: 'live-p99', value: 480, max: 100, reason: 'value 480 over max 100' });
    expect(journal[2].detail).toMatchObject({ stage: 'full', probe: 'live-p99', value: null, reason: 'error: HTTP 500' });
    expect(journal[1].detail.throttledMs).toBeGreaterThan(0);
    const final = await runRow();
    expect(final.status).toBe('completed');
    expect(final.throttle).toBeNull();
    expect(Number(final.throttled_ms)).toBe(Number(journal[1].detail.throttledMs) + Number(journal[3].detail.throttledMs));

    // JSON events (the stage monitor's) and the report.
    expect(jsonEvents.filter((e) => e.type === 'throttled').map((e) => e.probe)).toEqual(['live-p99', 'live-p99']);
    expect(jsonEvents.filter((e) => e.type === 'resumed' && e.from === 'throttled')).toHaveLength(2);
    const throttle = out.report!.throttle;
    expect(throttle.episodes.map((e) => e.probe)).toEqual(['live-p99', 'live-p99']);
    expect(throttle.episodes.every((e) => e.to !== null)).toBe(true);
    expect(throttle.throttledMs).toBeGreaterThan(0);
    await db.drop();
  });
});
