#!/usr/bin/env node
/**
 * Benchmark 2 — live-traffic protection.
 *
 * A live workload sends requests at a fixed arrival rate (open loop: request i is due at
 * t0 + i / LIVE_RATE whether or not earlier ones finished, and its latency is measured from that
 * scheduled time, so queueing is counted) against a table of accounts: each request updates one
 * random account (`update … returning`, its own transaction). It serves its own health at
 * /health: the p99 latency of the last second, counting requests still in flight at their
 * current age (a request stuck behind a lock is late before it completes).
 *
 * The backfill rewrites every account (a `replay` sql effect on the same table, batched into each
 * chunk's commit: row locks, WAL, CPU on the same server) at up to BACKFILL_RATE items/s. Phases of PHASE_S
 * seconds each: off (live alone), on unprotected (no probe), on protected (a `protect` probe on
 * the live workload's /health, max = PROBE_FACTOR × p99(off): the operator's latency objective),
 * off again. The baseline p99(off) is over both off phases together.
 *
 * Prints p50/p99 per phase and p99(on, protected) / p99(off) (goal <= 1.2).
 *
 *   npm run bench -- live
 */
import { createServer } from 'node:http';
import pg from 'pg';
import { createDatabase, dropDatabase, fmt, machine, quantile, servers, sorted, startStage, withClient, writePlan } from './lib/common.mjs';

const ACCOUNTS = Number(process.env.REPRISE_BENCH_ACCOUNTS ?? 300_000);
/** The backfill's cap: high enough to hurt, low enough to last through a phase. */
const BACKFILL_RATE = Number(process.env.REPRISE_BENCH_BACKFILL_RATE ?? 10_000);
const LIVE_RATE = Number(process.env.REPRISE_BENCH_LIVE_RATE ?? 300);
const PHASE_S = Number(process.env.REPRISE_BENCH_PHASE_S ?? 20);
const PROBE_FACTOR = Number(process.env.REPRISE_BENCH_PROBE_FACTOR ?? 1.2);
const CHECK_EVERY = process.env.REPRISE_BENCH_CHECK_EVERY ?? '250ms';

/** The live workload: open loop, latency from the scheduled time, and its own health endpoint. */
class LiveLoad {
  constructor(url) {
    // Commits are asynchronous: the latency measures contention with the backfill (CPU, locks,
    // WAL insertion), not the fsync jitter of a shared disk, which dominated the baseline.
    this.pool = new pg.Pool({ connectionString: url, max: 48, application_name: 'live', options: '-c synchronous_commit=off' });
    this.pool.on('error', () => undefined);
    this.done = []; // [completedAt, latencyMs]
    this.inflight = new Map(); // id -> scheduled time
    this.running = false;
    this.errors = 0;
  }

  start() {
    this.running = true;
    const t0 = performance.now();
    let i = 0;
    const tick = () => {
      if (!this.running) return;
      const now = performance.now();
      while (t0 + (i * 1000) / LIVE_RATE <= now) {
        const scheduled = t0 + (i * 1000) / LIVE_RATE;
        const id = i++;
        this.inflight.set(id, scheduled);
        this.pool.query('update accounts set balance = balance + 1, updated_at = now() where id = $1 returning balance', [1 + Math.floor(Math.random() * ACCOUNTS)])
          .catch(() => { this.errors++; })
          .finally(() => {
            this.inflight.delete(id);
            const end = performance.now();
            this.done.push([end, end - scheduled]);
          });
      }
      setTimeout(tick, Math.max(0, t0 + (i * 1000) / LIVE_RATE - performance.now()));
    };
    tick();
  }

  /** Latencies of requests scheduled in [from, to). */
  between(from, to) {
    return this.done.filter(([end, lat]) => end - lat >= from && end - lat < to).map(([, lat]) => lat);
  }

  /** p99 over the last second: completions, and requests in flight at their current age. */
  health() {
    const now = performance.now();
    const recent = [];
    for (let k = this.done.length - 1; k >= 0 && this.done[k][0] >= now - 1000; k--) recent.push(this.done[k][1]);
    for (const scheduled of this.inflight.values()) recent.push(now - scheduled);
    return { p99: quantile(sorted(recent), 0.99) || 0, n: recent.length };
  }

  async stop() {
    this.running = false;
    while (this.inflight.size) await new Promise((r) => setTimeout(r, 20));
    await this.pool.end();
  }
}

const HANDLER = `import { defineHandler } from 'reprise';
export default defineHandler(async (row, ctx) => { await ctx.effects.rewrite({ id: row.id }); });
`;

function plan(name, protect) {
  return writePlan(`bench-${name}`, {
    reprise: 1, name, revision: 1, owner: 'platform', author: 'bench@example.com',
    reason: 'Benchmark: a backfill that competes with live traffic.',
    connections: { db: { env: 'BENCH_DB_URL' } },
    selection: {
      connection: 'db', key: 'id',
      query: 'select id from accounts where created_at >= :window_start and created_at < :window_end',
      window: { start: '2026-01-01T00:00:00Z', end: '2027-01-01T00:00:00Z' },
      expect: { min: ACCOUNTS, max: ACCOUNTS },
    },
    processing: { handler: './handler.ts', timeoutMs: 30_000, retries: { max: 2, backoffMs: 50 } },
    sideEffects: [
      { name: 'rewrite', kind: 'sql', connection: 'db', statement: "update accounts set pad = (select md5(string_agg(md5(pad || g), '')) from generate_series(1, 40) g) || substr(pad, 33), note = 'backfilled' where id = :id", backfill: 'replay', live: 'apply' },
    ],
    rate: {
      itemsPerSecond: BACKFILL_RATE, concurrency: 8, chunkSize: 1000, maxConnections: 8,
      ...(protect ? { checkEvery: CHECK_EVERY, protect: [protect] } : {}),
    },
    canary: { size: 1 },
    checkpoint: { connection: 'db' },
  }, { 'handler.ts': HANDLER });
}

function stats(lat) {
  const s = sorted(lat);
  return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s.at(-1) };
}

async function main() {
  const srv = await servers();
  const db = await createDatabase(srv.pgUrl, 'reprise_bench_live');
  const live = new LiveLoad(db.url);
  const health = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(live.health()));
  });
  await new Promise((r) => health.listen(0, '127.0.0.1', r));
  const healthUrl = `http://127.0.0.1:${health.address().port}/health`;
  const env = { ...process.env, BENCH_DB_URL: db.url };
  const committed = async () => withClient(db.url, async (c) => Number((await c.query(`select count(*) as n from reprise.chunks where state = 'committed'`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n));
  const results = {};
  try {
    await withClient(db.url, async (c) => {
      await c.query(`create table accounts (id int primary key, balance bigint not null, note text, pad text not null, created_at timestamptz not null, updated_at timestamptz)`);
      await c.query(`insert into accounts select g, 0, null, repeat(md5(g::text), 6), timestamptz '2026-01-01' + g * interval '1 second', null from generate_series(1, $1::int) g`, [ACCOUNTS]);
      // No autovacuum during the phases: its runs after the backfill's updates would blur them.
      await c.query('alter table accounts set (autovacuum_enabled = off)');
      await c.query('vacuum analyze accounts');
    });
    live.start();
    await new Promise((r) => setTimeout(r, 3000)); // warm up

    const latencies = {};
    const measure = async (label) => {
      await withClient(db.url, (c) => c.query('checkpoint'));
      const from = performance.now();
      await new Promise((r) => setTimeout(r, PHASE_S * 1000));
      latencies[label] = live.between(from, performance.now());
      results[label] = stats(latencies[label]);
      if (process.env.REPRISE_BENCH_DEBUG) {
        const per = [];
        for (let t = from; t < performance.now() - 100; t += 500) { const st = stats(live.between(t, t + 500)); per.push(`${((t - from) / 1000).toFixed(1)}:${fmt(st.p99, 0)}/${fmt(st.max, 0)}`); }
        console.log(label, 'epoch', Date.now() - (performance.now() - from), per.join(' '));
      }
    };

    await measure('off');
    const backfill = async (label, name, protect) => {
      const before = await committed();
      // niced: on this machine the backfill's own process shares the cores with the live client;
      // in production it runs elsewhere and only the database is shared.
      const worker = startStage(plan(name, protect).path, env, { workers: 2, nice: 10 });
      // Measure once the backfill is processing (its first chunk committed), or held by its probe.
      const deadline = Date.now() + 60_000;
      while ((await committed()) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await measure(label);
      worker.child.kill('SIGTERM');
      const out = await worker.done;
      if (process.env.REPRISE_BENCH_DEBUG) console.log(label, JSON.stringify(out.report?.throttle));
      results[label].backfill = { items: out.report?.processed ?? null, throttledMs: out.report?.throttle?.throttledMs ?? null, episodes: out.report?.throttle?.episodes?.length ?? null, outcome: out.outcome };
    };
    await backfill('on, unprotected', 'bench-live-unprotected', null);
    const max = Math.max(1, results.off.p99 * PROBE_FACTOR);
    await backfill('on, protected', 'bench-live-protected', { name: 'live-p99', http: { url: healthUrl, field: 'p99' }, max: Number(max.toFixed(2)), timeoutMs: 1000 });
    await measure('off again');

    console.log(`machine   ${machine()}`);
    console.log(`server    ${srv.note}`);
    console.log(`live      ${LIVE_RATE} requests/s open loop (update of one random row of ${ACCOUNTS}), ${PHASE_S} s per phase; ${live.errors} errors`);
    console.log(`probe     live p99 over the last second (in-flight requests at their age), max ${fmt(max, 2)} ms = ${PROBE_FACTOR} × p99(off), checkEvery ${CHECK_EVERY}`);
    for (const [label, s] of Object.entries(results)) {
      const b = s.backfill ? ` — backfill: ${s.backfill.items ?? '?'} items done before it was stopped${s.backfill.throttledMs !== null ? `, throttled ${fmt(s.backfill.throttledMs / 1000, 1)} s in ${s.backfill.episodes} episodes` : ''}` : '';
      console.log(`${label.padEnd(16)} p50 ${fmt(s.p50, 2)} ms  p99 ${fmt(s.p99, 2)} ms  max ${fmt(s.max, 1)} ms  (${s.n} requests)${b}`);
    }
    // The baseline is both off phases together (before and after the backfills), so a quiet or a
    // noisy spell of the machine in one of them does not decide the ratio.
    const off = stats([...latencies.off, ...latencies['off again']]);
    console.log(`${'off (both)'.padEnd(16)} p50 ${fmt(off.p50, 2)} ms  p99 ${fmt(off.p99, 2)} ms  (${off.n} requests): the baseline`);
    const ratio = results['on, protected'].p99 / off.p99;
    console.log(`RATIO p99(on, unprotected) / p99(off) = ${fmt(results['on, unprotected'].p99 / off.p99, 2)}`);
    console.log(`RATIO p99(on, protected) / p99(off) = ${fmt(ratio, 2)} (goal <= 1.2)`);
    if (!(ratio <= 1.2)) process.exitCode = 1;
  } finally {
    await live.stop();
    health.close();
    await dropDatabase(srv.pgUrl, db.name);
    await srv.stop();
  }
}

await main();
