/**
 * The Redis holding the run's rate bucket dies mid-run. The run must not go unthrottled: no batch
 * is granted while Redis is down (items already granted may start: at most the batch a worker
 * holds plus the one it had reserved), and after the outage timeout the stage stops cleanly
 * (exit 4, `fail-closed`, status paused, resumable). Once Redis is back the run resumes and
 * completes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../schema/manifest.types.js';
import { runStage } from '../../executor/stages/run.js';
import { tokenBatch } from '../../executor/stages/worker.js';
import { createTestDatabase, withClient, type TestDatabase } from '../support/db.js';
import { waitUntil } from '../support/runs.js';
import { startRedis, type RedisServer } from '../support/servers.js';
import { seedThrottleDb, sinkRows, throttlePlan } from './fixture.js';

const N = 3_000;
const RATE = 200;
const CONCURRENCY = 4;

describe('the rate bucket in Redis becomes unreachable', () => {
  let server: RedisServer;
  let db: TestDatabase;
  beforeAll(async () => {
    server = await startRedis();
    db = await createTestDatabase('bucket_outage');
    await seedThrottleDb(db.url, N);
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('holds every worker (fail closed), stops after the outage timeout, and resumes once Redis is back', async () => {
    process.env.THROTTLE_DB_URL = db.url;
    const plan = throttlePlan('bucket-outage', { n: N, itemsPerSecond: RATE, concurrency: CONCURRENCY, chunkSize: 100, redis: true });
    const env = { ...process.env, THROTTLE_DB_URL: db.url, THROTTLE_REDIS_URL: server.url };
    const reportsDir = mkdtempSync(join(tmpdir(), 'reprise-bucket-outage-'));
    const logs: string[] = [];
    const events = { event: () => undefined, progress: () => undefined, log: (_l: string, m: string) => { logs.push(m); } };
    const run = runStage({ plan: plan.path, stage: 'full', stateUrl: 'unused://', env, reportsDir, outageTimeoutMs: 1500, events });
    const count = async (): Promise<number> => withClient(db.url, async (c) => Number((await c.query('select count(*) as n from sink')).rows[0].n));
    await waitUntil(async () => ((await count()) >= 100 ? true : undefined), '100 items', 90_000, 20);
    await server.stop();
    const stoppedAt = Date.now();
    const out = await run;
    expect(out.exitCode).toBe(4);
    expect(out.stop?.reason).toBe('fail-closed');
    expect(out.stop?.detail).toMatch(/rate bucket in Redis .* unreachable/);
    expect(logs.some((l) => /rate bucket .* unreachable .* no item starts until it answers \(fail closed\)/.test(l))).toBe(true);

    const rows = await sinkRows(db.url);
    const batch = tokenBatch({ rate: { itemsPerSecond: RATE, concurrency: CONCURRENCY } } as Plan);
    const after = rows.filter((r) => r.started > stoppedAt);
    // A worker may still hold the credits of its batch and one reservation made before the stop.
    expect(after.length).toBeLessThanOrEqual(2 * batch);
    expect(rows.length).toBeLessThan(N);
    const row = await withClient(db.url, async (c) => (await c.query('select status from reprise.runs')).rows[0]);
    expect(row.status).toBe('paused');

    await server.start();
    const again = await runStage({ plan: plan.path, stage: 'full', stateUrl: 'unused://', env, reportsDir });
    expect(again.exitCode, JSON.stringify(again.stop)).toBe(0);
    expect(new Set((await sinkRows(db.url)).map((r) => r.item)).size).toBe(N);
    await db.drop();
  });
});
