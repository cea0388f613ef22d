/**
 * The throttle tests' scenario: `items` in a window, and a `sink` (no constraints) where a module
 * effect writes one row per item as it is applied: the item, when its handler started
 * (`started`, epoch ms of the worker's clock, taken in the same synchronous step as the guard
 * and rate checks that let it start) and when the row was written (`at`, the database's
 * `clock_timestamp()`: the effect's apply time).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { repoTempDir, writePlan, type PlanCopy } from '../support/plans.js';

export async function seedThrottleDb(url: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`
      create table items (id bigint primary key, created_at timestamptz not null);
      create table sink (item text not null, started bigint not null, pid int not null, at timestamptz not null default clock_timestamp());
      create table totals (id bigint primary key, n int not null);`);
    await c.query(`insert into items select g, timestamptz '2026-01-01' + g * interval '1 second' from generate_series(1, $1::int) g`, [n]);
  } finally {
    await c.end();
  }
}

export interface ThrottlePlanOptions {
  n: number;
  itemsPerSecond: number;
  concurrency: number;
  chunkSize: number;
  maxConnections?: number;
  checkEvery?: string;
  protect?: Array<Record<string, unknown>>;
  /** Add a Redis connection (a suppressed stream effect): the rate bucket then lives in Redis. */
  redis?: boolean;
  /** Also upsert into `totals` with a sql effect (deferred to the chunk commit). */
  sqlEffect?: boolean;
  /** A second database for a sql effect applied by the worker (not the checkpoint connection). */
  otherDb?: boolean;
}

const HANDLER = `import { defineHandler } from 'reprise';

export default defineHandler<{ id: string }>(async (row, ctx) => {
  const started = Date.now();
  await ctx.effects.record({ id: row.id, started, pid: process.pid });
  if ('upsert_total' in ctx.effects) await (ctx.effects as any).upsert_total({ id: row.id });
  if ('touch_other' in ctx.effects) await (ctx.effects as any).touch_other({ id: row.id });
  if ('announce' in ctx.effects) await (ctx.effects as any).announce({ id: row.id });
});
`;

const SINK = `import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.THROTTLE_DB_URL, max: 8, application_name: 'throttle-test-sink' });
pool.on('error', () => undefined);

export async function record(args: { id: string; started: number; pid: number }): Promise<void> {
  await pool.query('insert into sink (item, started, pid, at) values ($1, $2, $3, clock_timestamp())', [args.id, args.started, args.pid]);
}
`;

/** A plan over the scenario; env: THROTTLE_DB_URL (and THROTTLE_REDIS_URL, THROTTLE_OTHER_DB_URL). */
export function throttlePlan(name: string, o: ThrottlePlanOptions): PlanCopy {
  const effects: Array<Record<string, unknown>> = [
    { name: 'record', kind: 'module', module: './sink.ts', export: 'record', args: ['id', 'started', 'pid'], backfill: 'replay', live: 'none' },
  ];
  if (o.sqlEffect) effects.push({ name: 'upsert_total', kind: 'sql', connection: 'db', statement: 'insert into totals (id, n) values (:id, 1) on conflict (id) do update set n = totals.n + 1', backfill: 'replay', live: 'apply' });
  if (o.otherDb) effects.push({ name: 'touch_other', kind: 'sql', connection: 'other', statement: 'insert into touched (id) values (:id) on conflict do nothing', backfill: 'replay', live: 'apply' });
  if (o.redis) effects.push({ name: 'announce', kind: 'redis-stream', connection: 'cache', stream: 'throttle-test', backfill: 'suppress', live: 'apply' });
  const plan = writePlan(name, {
    reprise: 1,
    name,
    revision: 1,
    owner: 'reliability',
    author: 'tester@example.com',
    reason: 'Throttle and live-protection scenario.',
    connections: {
      db: { env: 'THROTTLE_DB_URL' },
      ...(o.redis ? { cache: { env: 'THROTTLE_REDIS_URL' } } : {}),
      ...(o.otherDb ? { other: { env: 'THROTTLE_OTHER_DB_URL' } } : {}),
    },
    selection: {
      connection: 'db',
      query: 'select id from items where created_at >= :window_start and created_at < :window_end',
      key: 'id',
      window: { start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' },
      expect: { min: o.n, max: o.n },
    },
    processing: { handler: './handler.ts', timeoutMs: 30_000, retries: { max: 0, backoffMs: 10 } },
    sideEffects: effects,
    rate: {
      itemsPerSecond: o.itemsPerSecond,
      concurrency: o.concurrency,
      chunkSize: o.chunkSize,
      maxConnections: o.maxConnections ?? o.concurrency + 1,
      ...(o.checkEvery ? { checkEvery: o.checkEvery } : {}),
      ...(o.protect ? { protect: o.protect } : {}),
    },
    canary: { size: 1, pick: 'first' },
    abort: { maxErrorRate: 1, maxConsecutiveErrors: 1_000_000, stallAfter: '10m', onStall: 'alert' },
    checkpoint: { connection: 'db' },
  }, {}, repoTempDir('throttle-plan'));
  writeFileSync(join(plan.dir, 'handler.ts'), HANDLER);
  writeFileSync(join(plan.dir, 'sink.ts'), SINK);
  return plan;
}

export interface SinkRow {
  item: string;
  started: number;
  pid: number;
  /** Apply time, epoch ms (microsecond fraction kept). */
  at: number;
}

export async function sinkRows(url: string): Promise<SinkRow[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query(`select item, started::float8 as started, pid, extract(epoch from at)::float8 * 1000 as at from sink order by at`);
    return rows.map((r) => ({ item: r.item, started: Number(r.started), pid: r.pid, at: Number(r.at) }));
  } finally {
    await c.end();
  }
}

/** The most items whose times fall in any closed window of `windowMs` (times sorted ascending). */
export function maxInWindow(sortedTimes: number[], windowMs: number): { count: number; from: number } {
  let best = { count: 0, from: sortedTimes[0] ?? 0 };
  let j = 0;
  for (let i = 0; i < sortedTimes.length; i++) {
    while (j < sortedTimes.length && sortedTimes[j]! <= sortedTimes[i]! + windowMs) j++;
    if (j - i > best.count) best = { count: j - i, from: sortedTimes[i]! };
  }
  return best;
}
