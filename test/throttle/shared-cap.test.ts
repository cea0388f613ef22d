/**
 * Three `reprise run` processes join one run and share its rate cap — through Redis, and through
 * the state store. The sink's apply times (the database's clock_timestamp() as each effect was
 * applied) show that in any 5-second window the run applied at most cap × 5 + one batch items.
 *
 * Why that bound holds exactly and what margin the test has: the bucket hands out reservations of
 * one batch (here every reservation is a full batch of 10: chunks of 50, no retries), spaced
 * exactly batch / cap apart on the bucket's clock while it is busy (GCRA, no stored tokens). A
 * window of W seconds can therefore meet at most W × cap / batch + 1 reservations' items, i.e.
 * cap × W + batch, if every item is applied a constant time after its reservation. Items are
 * applied a little after their slot (timer, round trips); a window could meet one more
 * reservation only if one item's lag exceeded another's by a whole slot spacing (batch / cap =
 * 333 ms here), which is the margin — far more than the jitter of a loaded machine, so the test
 * is not timing-sensitive.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { tokenBatch } from '../../executor/stages/worker.js';
import type { Plan } from '../../schema/manifest.types.js';
import { startCli } from '../support/cli.js';
import { createTestDatabase, withClient } from '../support/db.js';
import { jsonLines } from '../support/runs.js';
import { maxInWindow, seedThrottleDb, sinkRows, throttlePlan } from './fixture.js';

const N = 450;
const CAP = 30;
const CONCURRENCY = 10;
const CHUNK = 50;

describe.each([
  ['Redis', true],
  ['the state store', false],
] as const)('three processes share one rate cap through %s', (_label, redis) => {
  it('never applies more than cap × 5 + one batch items in any 5-second window', async () => {
    const db = await createTestDatabase('shared_cap');
    await seedThrottleDb(db.url, N);
    const plan = throttlePlan(redis ? 'shared-cap-redis' : 'shared-cap-state', { n: N, itemsPerSecond: CAP, concurrency: CONCURRENCY, chunkSize: CHUNK, redis });
    const batch = tokenBatch({ rate: { itemsPerSecond: CAP, concurrency: CONCURRENCY } } as Plan);
    expect(batch).toBe(10);
    const env = { ...process.env, THROTTLE_DB_URL: db.url, THROTTLE_REDIS_URL: inject('redisUrl') };
    const reports = mkdtempSync(join(tmpdir(), 'reprise-cap-'));
    const procs = [0, 1, 2].map(() => startCli(['--json', 'run', plan.path, '--stage', 'full', '--reports', reports], env));
    const results = await Promise.all(procs.map((p) => p.done));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const outcomes = results.map((r) => jsonLines(r.stdout).find((e) => e.type === 'finished')?.outcome).sort();
    expect(outcomes).toEqual(['completed', 'joined', 'joined']);

    const rows = await sinkRows(db.url);
    expect(rows).toHaveLength(N);
    expect(new Set(rows.map((r) => r.item)).size).toBe(N);
    // All three took part: the cap makes the run last (N - batch) / cap ≈ 15 s, far longer than a start.
    expect(new Set(rows.map((r) => r.pid)).size).toBe(3);

    const at = rows.map((r) => r.at).sort((a, b) => a - b);
    const w5 = maxInWindow(at, 5000);
    const w1 = maxInWindow(at, 1000);
    const span = (at.at(-1)! - at[0]!) / 1000;
    console.log(`${_label}: ${N} items in ${span.toFixed(1)} s (${(N / span).toFixed(1)}/s, cap ${CAP}/s); most in 5 s: ${w5.count} (bound ${CAP * 5 + batch}); most in 1 s: ${w1.count} (bound ${CAP + batch})`);
    expect(w5.count).toBeLessThanOrEqual(CAP * 5 + batch);
    expect(w1.count).toBeLessThanOrEqual(CAP + batch);

    if (!redis) {
      const bucket = await withClient(db.url, async (c) => (await c.query('select key from reprise.rate_buckets')).rows);
      expect(bucket.map((b) => b.key)).toEqual([jsonLines(results[0]!.stdout).find((e) => e.type === 'start')?.run]);
    }
    await db.drop();
  });
});
