/**
 * The executor's own connections, as PostgreSQL sees them (pg_stat_activity, by application_name)
 * while a run works two workers × concurrency 3 against two databases (the checkpoint database:
 * selection, deferred sql effect, state; another database: a sql effect applied by the workers)
 * with a SQL protect probe: the pools never hold more than rate.maxConnections connections in
 * total; the probes have one connection of their own per probed database; the control channel
 * one LISTEN connection. The sampler polls as fast as it can for the whole run; the assertions
 * are on the maximum it saw, which can only under-count — except for a backend on its way out:
 * a pool making room closes another pool's idle connection and opens its own once the socket
 * has closed, and PostgreSQL may still list the closing backend for a moment. A sample over the
 * budget is therefore checked again 50 ms later: backends that have left by then were exiting,
 * and only those still there count.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runStage } from '../../executor/stages/run.js';
import { createTestDatabase, withClient } from '../support/db.js';
import { seedThrottleDb, throttlePlan } from './fixture.js';

const N = 1_500;
const MAX_CONNECTIONS = 3;

describe('connections of a run, seen by PostgreSQL', () => {
  it('the pools stay within maxConnections in total, plus one probe and one LISTEN connection', async () => {
    const db = await createTestDatabase('conns');
    const other = await createTestDatabase('conns_other');
    await seedThrottleDb(db.url, N);
    await withClient(other.url, (c) => c.query('create table touched (id bigint primary key)'));
    const plan = throttlePlan('conn-test', {
      n: N, itemsPerSecond: 100_000, concurrency: 3, chunkSize: 50, maxConnections: MAX_CONNECTIONS, sqlEffect: true, otherDb: true,
      checkEvery: '50ms',
      protect: [{ name: 'backends', connection: 'db', query: "select count(*) as value from pg_stat_activity where state = 'active'", max: 1000 }],
    });
    const env = { ...process.env, THROTTLE_DB_URL: db.url, THROTTLE_OTHER_DB_URL: other.url };
    process.env.THROTTLE_DB_URL = db.url;

    const sampler = new pg.Client({ connectionString: db.url, application_name: 'conn-sampler' });
    await sampler.connect();
    const max = new Map<string, number>();
    let samples = 0;
    let busySamples = 0;
    let exitingSeen = 0;
    let sampling = true;
    const loop = (async () => {
      while (sampling) {
        const { rows } = await sampler.query<{ app: string; n: number; pids: number[] }>(
          `select application_name as app, count(*)::int as n, array_agg(pid) as pids from pg_stat_activity where application_name like 'reprise:conn-test%' group by 1`,
        );
        samples++;
        if (rows.some((r) => r.app === 'reprise:conn-test' && r.n > 0)) busySamples++;
        for (const r of rows) {
          let n = r.n;
          if (r.app === 'reprise:conn-test' && n > MAX_CONNECTIONS) {
            await new Promise((res) => setTimeout(res, 50));
            const still = (await sampler.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where pid = any($1)', [r.pids])).rows[0]!.n;
            if (still < n) exitingSeen++;
            n = still;
          }
          max.set(r.app, Math.max(max.get(r.app) ?? 0, n));
        }
      }
    })();
    try {
      const out = await runStage({ plan: plan.path, stage: 'full', stateUrl: 'unused://', env, workers: 2, reportsDir: mkdtempSync(join(tmpdir(), 'reprise-conns-')) });
      expect(out.exitCode, JSON.stringify(out.stop)).toBe(0);
    } finally {
      sampling = false;
      await loop;
      await sampler.end();
    }
    console.log(`connections: ${samples} samples (${busySamples} with pool connections open, ${exitingSeen} over the budget with a backend exiting); most seen:`, Object.fromEntries(max));
    expect(busySamples).toBeGreaterThan(10);
    expect(max.get('reprise:conn-test') ?? 0).toBeGreaterThan(0);
    expect(max.get('reprise:conn-test')).toBeLessThanOrEqual(MAX_CONNECTIONS);
    expect(max.get('reprise:conn-test:probe') ?? 0).toBeLessThanOrEqual(1);
    expect(max.get('reprise:conn-test-listen') ?? 0).toBeLessThanOrEqual(1);
    const apps = [...max.keys()].sort();
    expect(apps.every((a) => ['reprise:conn-test', 'reprise:conn-test:probe', 'reprise:conn-test-listen'].includes(a)), apps.join(', ')).toBe(true);
    expect(await withClient(other.url, async (c) => Number((await c.query('select count(*) as n from touched')).rows[0].n))).toBe(N);
    await db.drop();
    await other.drop();
  });
});
