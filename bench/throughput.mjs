#!/usr/bin/env node
/**
 * Benchmarks 3 and 4 — what full safety costs, over the same N rows of one table:
 *
 *   raw     a hand-written loop at its best: keyset-read a page of B rows, upsert them with one
 *           `insert … select from unnest($1::bigint[], $2::bigint[]) on conflict … do update`,
 *           C pages in flight at once (C connections), no checkpoint, no ledger;
 *   full    reprise run --stage full, C workers, chunks of B: count guard, chunk planning,
 *           leases with fencing, the handler per item, a `replay` sql effect on the checkpoint
 *           connection (batched into the chunk's commit), ledger rows, checkpoints, the shared
 *           rate bucket (state store; the cap set far above what is reached);
 *   dedupe  the same plus a `dedupe` sql effect (an outbox insert), its key claimed in the
 *           postgres dedupe store inside the same commit;
 *   naive   the usual hand-written backfill: keyset pages, then per row one upsert and one
 *           `update checkpoint set last_id` (each its own transaction), one connection
 *           (run for NAIVE_SECONDS on the same rows, throughput measured).
 *
 * Prints full/raw (goal >= 0.8), dedupe/raw (goal >= 0.5) and full/naive (goal >= 10), all
 * measured in this one process run. Times are wall-clock: for `full` the whole runStage call
 * (compile, open, count, plan, process, report), for `raw` the loop.
 *
 *   npm run bench -- throughput       (REPRISE_BENCH_ROWS to change N)
 */
import pg from 'pg';
import { createDatabase, dropDatabase, fmt, machine, servers, startStage, withClient, writePlan } from './lib/common.mjs';

const N = Number(process.env.REPRISE_BENCH_ROWS ?? 200_000);
const B = 1000;
const C = 4;
const NAIVE_SECONDS = Number(process.env.REPRISE_BENCH_NAIVE_SECONDS ?? 10);

const HANDLER = `import { defineHandler } from 'reprise';
export default defineHandler(async (row, ctx) => {
  const v = Number(row.amount) * 3 + 1;
  await ctx.effects.upsert({ id: row.id, v });
  if ('emit' in ctx.effects) await ctx.effects.emit({ id: row.id, v });
});
`;

function plan(name, withDedupe) {
  return writePlan(`bench-${name}`, {
    reprise: 1, name, revision: 1, owner: 'platform', author: 'bench@example.com',
    reason: 'Benchmark: executor throughput with full safety.',
    connections: { db: { env: 'BENCH_DB_URL' } },
    selection: {
      connection: 'db', key: 'id',
      query: 'select id, amount from src where created_at >= :window_start and created_at < :window_end',
      window: { start: '2026-01-01T00:00:00Z', end: '2027-01-01T00:00:00Z' },
      expect: { min: N, max: N },
    },
    processing: { handler: './handler.ts', timeoutMs: 10_000, retries: { max: 0, backoffMs: 10 } },
    sideEffects: [
      { name: 'upsert', kind: 'sql', connection: 'db', statement: 'insert into dst (id, v) values (:id, :v) on conflict (id) do update set v = excluded.v', backfill: 'replay', live: 'apply' },
      ...(withDedupe ? [{ name: 'emit', kind: 'sql', connection: 'db', statement: 'insert into outbox (id, v) values (:id, :v)', idempotent: false, backfill: 'dedupe', live: 'dedupe', dedupeKey: 'emit:{id}', delivery: 'at-most-once' }] : []),
    ],
    ...(withDedupe ? { dedupe: { store: 'postgres', connection: 'db', namespace: `bench-${name}`, ttl: '1d' } } : {}),
    rate: { itemsPerSecond: 10_000_000, concurrency: 8, chunkSize: B, maxConnections: C + 4 },
    canary: { size: 1 },
    checkpoint: { connection: 'db' },
  }, { 'handler.ts': HANDLER });
}

async function raw(url) {
  const pool = new pg.Pool({ connectionString: url, max: C });
  let last = 0;
  let done = 0;
  let reading = Promise.resolve();
  // The keyset cursor is shared: a page is read under a lock, then upserted while the next is read.
  const nextPage = () => {
    const p = reading.then(async () => {
      const { rows } = await pool.query('select id, amount from src where id > $1 order by id limit $2', [last, B]);
      if (rows.length) last = rows[rows.length - 1].id;
      return rows;
    });
    reading = p.then(() => undefined, () => undefined);
    return p;
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: C }, async () => {
    for (;;) {
      const rows = await nextPage();
      if (!rows.length) return;
      await pool.query(
        'insert into dst (id, v) select * from unnest($1::bigint[], $2::bigint[]) on conflict (id) do update set v = excluded.v',
        [rows.map((r) => r.id), rows.map((r) => Number(r.amount) * 3 + 1)],
      );
      done += rows.length;
    }
  }));
  const ms = performance.now() - started;
  await pool.end();
  if (done !== N) throw new Error(`raw loop did ${done} of ${N}`);
  return { ms, perSecond: N / (ms / 1000) };
}

async function naive(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('insert into checkpoint (name, last_id) values ($1, 0) on conflict (name) do update set last_id = 0', ['naive']);
  let last = 0;
  let done = 0;
  const started = performance.now();
  const deadline = started + NAIVE_SECONDS * 1000;
  outer: for (;;) {
    const { rows } = await c.query('select id, amount from src where id > $1 order by id limit $2', [last, B]);
    if (!rows.length) break;
    for (const r of rows) {
      await c.query('insert into dst (id, v) values ($1, $2) on conflict (id) do update set v = excluded.v', [r.id, Number(r.amount) * 3 + 1]);
      await c.query('update checkpoint set last_id = $2 where name = $1', ['naive', r.id]);
      last = r.id;
      done++;
      if (performance.now() > deadline) break outer;
    }
  }
  const ms = performance.now() - started;
  await c.end();
  return { ms, done, perSecond: done / (ms / 1000) };
}

async function reset(url) {
  await withClient(url, (c) => c.query('truncate dst, outbox'));
}

async function full(url, name, withDedupe) {
  const p = plan(name, withDedupe);
  const out = await startStage(p.path, { ...process.env, BENCH_DB_URL: url }, { workers: C }).done;
  if (out.exitCode !== 0 || out.report?.processed !== N) throw new Error(`${name}: ${out.outcome} ${JSON.stringify(out.stop)} processed ${out.report?.processed}\n${out.stderr.slice(-2000)}`);
  const n = await withClient(url, async (c) => Number((await c.query('select count(*) as n from dst')).rows[0].n));
  if (n !== N) throw new Error(`${name}: dst has ${n} rows`);
  return { ms: out.ms, perSecond: N / (out.ms / 1000) };
}

async function main() {
  const srv = await servers();
  const db = await createDatabase(srv.pgUrl, 'reprise_bench_throughput');
  try {
    await withClient(db.url, async (c) => {
      await c.query(`create table src (id bigint primary key, amount bigint not null, created_at timestamptz not null);
                     create table dst (id bigint primary key, v bigint not null);
                     create table outbox (id bigint not null, v bigint not null);
                     create table checkpoint (name text primary key, last_id bigint not null)`);
      await c.query(`insert into src select g, (g * 7919) % 10000, timestamptz '2026-01-01' + g * interval '1 second' from generate_series(1, $1::int) g`, [N]);
      await c.query('vacuum analyze src');
    });
    console.log(`throughput: ${N} rows, batch ${B}, concurrency ${C} (raw: ${C} pages in flight; reprise: --workers ${C}, chunks of ${B})`);
    const r1 = await raw(db.url);
    await reset(db.url);
    const f = await full(db.url, 'bench-full', false);
    await reset(db.url);
    const d = await full(db.url, 'bench-full-dedupe', true);
    await reset(db.url);
    const r2 = await raw(db.url);
    await reset(db.url);
    const nv = await naive(db.url);
    const rawPerSecond = (r1.perSecond + r2.perSecond) / 2;
    console.log(`machine   ${machine()}`);
    console.log(`server    ${srv.note}`);
    console.log(`raw       ${fmt(r1.perSecond, 0)} and ${fmt(r2.perSecond, 0)} rows/s (before and after; mean ${fmt(rawPerSecond, 0)})`);
    console.log(`full      ${fmt(f.perSecond, 0)} items/s (${fmt(f.ms / 1000, 1)} s for the stage)`);
    console.log(`dedupe    ${fmt(d.perSecond, 0)} items/s (${fmt(d.ms / 1000, 1)} s)`);
    console.log(`naive     ${fmt(nv.perSecond, 0)} items/s (${nv.done} items in ${fmt(nv.ms / 1000, 1)} s, two commits per item)`);
    const a = f.perSecond / rawPerSecond;
    const b = d.perSecond / rawPerSecond;
    const c = f.perSecond / nv.perSecond;
    console.log(`RATIO full safety / raw loop = ${fmt(a, 3)} (goal >= 0.8)`);
    console.log(`RATIO full safety + dedupe / raw loop = ${fmt(b, 3)} (goal >= 0.5)`);
    console.log(`RATIO full safety / naive per-item checkpoint script = ${fmt(c, 1)} (goal >= 10)`);
    if (a < 0.8 || b < 0.5 || c < 10) process.exitCode = 1;
  } finally {
    await dropDatabase(srv.pgUrl, db.name);
    await srv.stop();
  }
}

await main();
