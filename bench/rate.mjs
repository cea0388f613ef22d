#!/usr/bin/env node
/**
 * Benchmark 1 — the shared rate cap: achieved rate / configured rate, 3 worker processes sharing
 * one Redis bucket, over at least 30 s, and the worst 1-second burst.
 *
 * A table of N items; a plan capped at RATE items per second whose module effect writes one sink
 * row per item with the database's clock_timestamp() at apply time. Three processes run the full
 * stage together. From the sink: achieved = items applied in the 30 s after the first second,
 * / 30 / RATE (goal 0.97–1.03); burst = the most items in any 1-second window / RATE, by apply
 * time and by start time (the handler's clock as it began, right after its token): the bucket
 * bounds starts by (RATE + one batch) / RATE; applies add the jitter of the effect's own write.
 *
 *   npm run bench -- rate        (REPRISE_BENCH_PG_URL / REPRISE_BENCH_REDIS_URL to use servers of your own)
 */
import { createDatabase, dropDatabase, fmt, machine, maxInWindow, servers, startStage, withClient, writePlan } from './lib/common.mjs';

const RATE = Number(process.env.REPRISE_BENCH_RATE ?? 1000);
const SECONDS = 30;
const N = RATE * (SECONDS + 4);
const CONCURRENCY = 8;
const CHUNK = 500;
const PROCESSES = 3;
const BATCH = Math.max(1, Math.min(100, Math.max(CONCURRENCY, Math.floor(RATE / 20)))); // executor/stages/worker.ts tokenBatch

const HANDLER = `import { defineHandler } from 'reprise';
export default defineHandler(async (row, ctx) => { await ctx.effects.record({ id: row.id, started: Date.now() }); });
`;
const SINK = `import pg from 'pg';
const pool = new pg.Pool({ connectionString: process.env.BENCH_DB_URL, max: ${CONCURRENCY}, application_name: 'bench-sink' });
pool.on('error', () => undefined);
export async function record(args) {
  await pool.query('insert into sink (item, pid, started, at) values ($1, $2, $3, clock_timestamp())', [args.id, process.pid, args.started]);
}
`;

async function main() {
  const srv = await servers({ redis: true });
  const db = await createDatabase(srv.pgUrl, 'reprise_bench_rate');
  try {
    await withClient(db.url, async (c) => {
      await c.query(`create table items (id bigint primary key, created_at timestamptz not null);
                     create table sink (item bigint not null, pid int not null, started bigint not null, at timestamptz not null)`);
      await c.query(`insert into items select g, timestamptz '2026-01-01' + g * interval '1 second' from generate_series(1, $1::int) g`, [N]);
    });
    const plan = writePlan('bench-rate', {
      reprise: 1, name: 'bench-rate', revision: 1, owner: 'platform', author: 'bench@example.com',
      reason: 'Benchmark: the shared rate cap across processes.',
      connections: { db: { env: 'BENCH_DB_URL' }, cache: { env: 'BENCH_REDIS_URL' } },
      selection: {
        connection: 'db', key: 'id',
        query: 'select id from items where created_at >= :window_start and created_at < :window_end',
        window: { start: '2026-01-01T00:00:00Z', end: '2027-01-01T00:00:00Z' },
        expect: { min: N, max: N },
      },
      processing: { handler: './handler.ts', timeoutMs: 10_000, retries: { max: 0, backoffMs: 10 } },
      sideEffects: [
        { name: 'record', kind: 'module', module: './sink.ts', export: 'record', args: ['id', 'started'], backfill: 'replay', live: 'none' },
        // Makes the plan's Redis connection: the rate bucket lives there.
        { name: 'announce', kind: 'redis-stream', connection: 'cache', stream: 'bench', backfill: 'suppress', live: 'apply' },
      ],
      rate: { itemsPerSecond: RATE, concurrency: CONCURRENCY, chunkSize: CHUNK, maxConnections: CONCURRENCY + 2 },
      canary: { size: 1 },
      checkpoint: { connection: 'db' },
    }, { 'handler.ts': HANDLER, 'sink.ts': SINK });
    const env = { ...process.env, BENCH_DB_URL: db.url, BENCH_REDIS_URL: srv.redisUrl };

    console.log(`rate: ${PROCESSES} processes, cap ${RATE} items/s in one Redis bucket, ${N} items, concurrency ${CONCURRENCY}, batch ${BATCH}`);
    const procs = Array.from({ length: PROCESSES }, () => startStage(plan.path, env));
    const outs = await Promise.all(procs.map((p) => p.done));
    for (const o of outs) if (o.exitCode !== 0) throw new Error(`a worker ended ${o.outcome} (${JSON.stringify(o.stop)}):\n${o.stderr.slice(-2000)}`);

    const rows = await withClient(db.url, async (c) => (await c.query(`select pid, started::float8 as started, extract(epoch from at)::float8 * 1000 as at from sink order by at`)).rows);
    const at = rows.map((r) => Number(r.at));
    const t0 = at[0];
    const from = t0 + 1000;
    const to = from + SECONDS * 1000;
    const inWindow = at.filter((t) => t >= from && t < to).length;
    const achieved = inWindow / SECONDS;
    const burst = maxInWindow(at, 1000);
    const starts = rows.map((r) => Number(r.started)).sort((a, b) => a - b);
    const startBurst = maxInWindow(starts, 1000);
    const byProcess = new Map();
    for (const r of rows) byProcess.set(r.pid, (byProcess.get(r.pid) ?? 0) + 1);
    const ratio = achieved / RATE;
    console.log(`machine   ${machine()}`);
    console.log(`server    ${srv.note}`);
    console.log(`items     ${rows.length} applied over ${fmt((at.at(-1) - t0) / 1000, 1)} s by ${byProcess.size} processes (${[...byProcess.values()].join(' / ')})`);
    console.log(`achieved  ${fmt(achieved, 1)} items/s over ${SECONDS} s (after the first second), configured ${RATE}/s`);
    console.log(`RATIO achieved/configured = ${fmt(ratio, 3)} (goal 0.97–1.03)`);
    console.log(`BURST worst 1-second window = ${burst} items applied = ${fmt(burst / RATE, 3)} × the rate; ${startBurst} items started = ${fmt(startBurst / RATE, 3)} × (the bucket's bound: ${fmt((RATE + BATCH) / RATE, 3)}, rate + one batch of ${BATCH}; applies add their own jitter)`);
    if (ratio < 0.97 || ratio > 1.03) process.exitCode = 1;
  } finally {
    await dropDatabase(srv.pgUrl, db.name);
    await srv.stop();
  }
}

await main();
