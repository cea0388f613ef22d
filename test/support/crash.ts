/**
 * The crash scenario shared by the crash test and the chaos harness: a table of items in a
 * window, a sink table with no unique constraint, and a plan with every policy — a transactional
 * non-idempotent sql effect, an idempotent sql upsert, a suppressed effect, and dedupe effects
 * with both deliveries — whose effects all write to the sink.
 */
import { copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { repoTempDir, writePlan, type PlanCopy } from './plans.js';

const fixtures = resolve(import.meta.dirname, '..', 'fixtures', 'crash');

export async function seedCrashDb(url: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`
      create table items (id bigint primary key, grp int not null, amount numeric not null, created_at timestamptz not null);
      create table totals (id bigint primary key, amount numeric not null);
      create table sink (effect text not null, item text not null, dedupe_key text, at timestamptz not null default clock_timestamp(), writer text not null default current_setting('application_name'), started timestamptz, generation int);
      create index sink_effect_item on sink (effect, item);`);
    await c.query(
      `insert into items select g, g % 50, (g * 31) % 1000, timestamptz '2026-01-01' + (g % 2000000) * interval '1 second' from generate_series(1, $1::int) g`,
      [n],
    );
    // Outside the window: must never be touched.
    await c.query(`insert into items values (-1, 0, 1, '2025-12-31T23:59:59Z'), (-2, 0, 1, '2026-02-01T00:00:00Z')`);
  } finally {
    await c.end();
  }
}

export interface CrashPlanOptions {
  n: number;
  namespace: string;
  chunkSize?: number;
  concurrency?: number;
  itemsPerSecond?: number;
  dedupeStore?: 'postgres' | 'redis';
  /** Item retries. @defaultValue { max: 2, backoffMs: 20 } */
  retries?: { max: number; backoffMs: number };
  /** Folder holding `crash.handler.ts` and `sink.ts` (the chaos harness has a sink that rides out outages). @defaultValue test/fixtures/crash */
  fixturesDir?: string;
}

export function crashPlan(o: CrashPlanOptions): PlanCopy {
  const plan = writePlan('crash-test', {
    reprise: 1,
    name: 'crash-test',
    revision: 1,
    owner: 'reliability',
    author: 'tester@example.com',
    reason: 'Fault-injection scenario: every policy, a sink without unique constraints.',
    connections: { db: { env: 'CRASH_DB_URL' }, ...(o.dedupeStore === 'redis' ? { cache: { env: 'CRASH_REDIS_URL' } } : {}) },
    selection: {
      connection: 'db',
      query: 'select id, grp, amount from items where created_at >= :window_start and created_at < :window_end',
      key: 'id',
      window: { start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' },
      expect: { min: o.n, max: o.n },
    },
    processing: { handler: './crash.handler.ts', timeoutMs: 15_000, retries: o.retries ?? { max: 2, backoffMs: 20 } },
    sideEffects: [
      { name: 'write_result', kind: 'sql', connection: 'db', statement: "insert into sink (effect, item) values ('write_result', :id)", idempotent: false, backfill: 'replay', live: 'none' },
      { name: 'upsert_total', kind: 'sql', connection: 'db', statement: 'insert into totals (id, amount) values (:id, :amount) on conflict (id) do update set amount = excluded.amount', backfill: 'replay', live: 'apply' },
      { name: 'notify', kind: 'module', module: './sink.ts', export: 'notify', args: ['id'], backfill: 'suppress', live: 'apply' },
      { name: 'publish_alo', kind: 'module', module: './sink.ts', export: 'publishAlo', args: ['id'], backfill: 'dedupe', live: 'dedupe', dedupeKey: 'alo:{id}', delivery: 'at-least-once' },
      { name: 'publish_amo', kind: 'module', module: './sink.ts', export: 'publishAmo', args: ['id'], backfill: 'dedupe', live: 'dedupe', dedupeKey: 'amo:{id}', delivery: 'at-most-once' },
    ],
    dedupe: { store: o.dedupeStore ?? 'postgres', connection: o.dedupeStore === 'redis' ? 'cache' : 'db', namespace: o.namespace, ttl: '1d' },
    rate: { itemsPerSecond: o.itemsPerSecond ?? 100_000, concurrency: o.concurrency ?? 8, chunkSize: o.chunkSize ?? 200, maxConnections: (o.concurrency ?? 8) + 2 },
    canary: { size: 10, pick: 'first' },
    checkpoint: { connection: 'db' },
  }, {}, repoTempDir('crash-plan'));
  copyFileSync(join(o.fixturesDir ?? fixtures, 'crash.handler.ts'), join(plan.dir, 'crash.handler.ts'));
  copyFileSync(join(o.fixturesDir ?? fixtures, 'sink.ts'), join(plan.dir, 'sink.ts'));
  return plan;
}

/**
 * A plan over the seeded `items` (all `n` in the window) whose handler (source given) may call
 * one `replay` sql effect, `write`, inserting into `totals` (or the `sideEffects` given); the
 * database URL comes from `env`.
 * For tests of how the worker treats a handler (timeouts, signals, leases).
 */
export function handlerPlan(o: {
  name: string; n: number; env: string; handler: string; timeoutMs: number; concurrency: number; chunkSize: number;
  /** Instead of the one `write` effect. */
  sideEffects?: Array<Record<string, unknown>>;
  /** More files beside the plan (effect modules). */
  files?: Record<string, string>;
}): PlanCopy {
  return writePlan(o.name, {
    reprise: 1, name: o.name, revision: 1, owner: 'reliability', author: 'tester@example.com',
    reason: `Handler behaviour under test: ${o.name}.`,
    connections: { db: { env: o.env } },
    selection: {
      connection: 'db', key: 'id',
      query: 'select id from items where created_at >= :window_start and created_at < :window_end',
      window: { start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' },
      expect: { min: o.n, max: o.n },
    },
    processing: { handler: './handler.ts', timeoutMs: o.timeoutMs, retries: { max: 0, backoffMs: 10 } },
    sideEffects: o.sideEffects ?? [{ name: 'write', kind: 'sql', connection: 'db', statement: 'insert into totals (id, amount) values (:id, 1)', backfill: 'replay', live: 'apply' }],
    rate: { itemsPerSecond: 1000, concurrency: o.concurrency, chunkSize: o.chunkSize, maxConnections: 4 },
    canary: { size: 1 },
    checkpoint: { connection: 'db' },
  }, { ...o.files, 'handler.ts': o.handler });
}

export interface Invariants {
  items: number;
  itemsProcessed: number;
  itemsLost: number;
  outsideWindow: number;
  suppressApplied: number;
  transactionalDuplicates: number;
  amoDuplicates: number;
  amoLost: number;
  aloMissing: number;
  aloRedelivered: number;
  aloRedeliveredWithoutUnconfirmedClaim: number;
  amoLostWithoutUnconfirmedClaim: number;
  committedChunksRerun: number;
  /**
   * Dedupe effects that landed after their chunk committed from a call started before the commit
   * under an earlier lease generation: a call that outlived its worker's lease, as in a process frozen (SIGSTOP) mid-call or a call
   * stuck in its own connection retries while the database restarted (docs/reliability.md, known
   * limits). Counted apart from re-runs, which must not happen.
   */
  lateLandings: number;
  ledgerWithoutSink: number;
  sinkWithoutLedger: number;
}

/** Counts every invariant of the crash scenario. `unconfirmed` = dedupe keys seen unconfirmed at a kill. */
export async function checkInvariants(url: string, runId: string, n: number, unconfirmed: Set<string>): Promise<Invariants> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const one = async (sql: string, params: unknown[] = []): Promise<number> => Number((await c.query(sql, params)).rows[0].n);
  try {
    // The ledger view unnests per-chunk batches: materialize this run's calls once, indexed.
    await c.query('create temp table lg as select * from reprise.ledger where run_id = $1', [runId]);
    await c.query('create index on lg (effect, item_key)');
    await c.query('analyze lg');
    const aloDup = (await c.query(`select item from sink where effect = 'publish_alo' group by item having count(*) > 1`)).rows.map((r) => `alo:${r.item}`);
    // Dedupe effects that landed after their chunk committed. A late landing of a call that
    // outlived its lease (a frozen process, or a call stuck in its own retries while the database
    // restarted) started before the commit, under an earlier lease generation than the one that
    // committed; anything else is a re-run of committed work, or a commit that did not wait for
    // its own call. A sink that does not record start and generation counts every such row as a re-run.
    const afterCommit = async (): Promise<{ committedChunksRerun: number; lateLandings: number }> => {
      const { rows } = await c.query(
        `select count(*) filter (where not coalesce(s.started < ch.committed_at and s.generation < ch.generation, false))::int as rerun,
                count(*) filter (where s.started < ch.committed_at and s.generation < ch.generation)::int as late
           from sink s
           join lg l on l.item_key = s.item and l.effect = s.effect
           join reprise.chunks ch on ch.run_id = $1 and ch.seq = l.chunk_seq
          where s.effect in ('publish_alo', 'publish_amo') and ch.committed_at is not null and s.at > ch.committed_at`,
        [runId],
      );
      return { committedChunksRerun: Number(rows[0].rerun), lateLandings: Number(rows[0].late) };
    };
    const amoMissing = (await c.query(`select i.id::text as item from items i where i.id > 0 and not exists (select 1 from sink s where s.effect = 'publish_amo' and s.item = i.id::text)`)).rows.map((r) => `amo:${r.item}`);
    return {
      items: n,
      itemsProcessed: await one(`select count(distinct item_key)::int as n from lg where effect = 'write_result' and status = 'applied'`),
      itemsLost: await one(`select count(*)::int as n from items i where i.id > 0 and not exists (select 1 from sink s where s.effect = 'write_result' and s.item = i.id::text)`),
      outsideWindow: await one(`select count(*)::int as n from sink where item::bigint < 0`),
      suppressApplied: await one(`select count(*)::int as n from sink where effect = 'notify'`),
      transactionalDuplicates: await one(`select count(*)::int as n from (select item from sink where effect = 'write_result' group by item having count(*) > 1) d`),
      amoDuplicates: await one(`select count(*)::int as n from (select item from sink where effect = 'publish_amo' group by item having count(*) > 1) d`),
      amoLost: amoMissing.length,
      aloMissing: await one(`select count(*)::int as n from items i where i.id > 0 and not exists (select 1 from sink s where s.effect = 'publish_alo' and s.item = i.id::text)`),
      aloRedelivered: aloDup.length,
      aloRedeliveredWithoutUnconfirmedClaim: aloDup.filter((k) => !unconfirmed.has(k)).length,
      amoLostWithoutUnconfirmedClaim: amoMissing.filter((k) => !unconfirmed.has(k)).length,
      ...(await afterCommit()),
      ledgerWithoutSink: await one(
        `select count(*)::int as n from lg l where l.status = 'applied' and l.effect in ('write_result', 'publish_alo', 'publish_amo')
           and not exists (select 1 from sink s where s.effect = l.effect and s.item = l.item_key)`,
      ),
      sinkWithoutLedger: await one(
        `select count(*)::int as n from (select distinct effect, item from sink) s
          where not exists (select 1 from lg l where l.effect = s.effect and l.item_key = s.item and l.status in ('applied', 'claimed'))`,
      ),
    };
  } finally {
    await c.end();
  }
}

/** Dedupe keys currently claimed but not confirmed (call right after a kill). */
export async function unconfirmedClaims(url: string, namespace: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(`select key from reprise.dedupe_keys where namespace = $1 and state = 'claimed'`, [namespace])).rows.map((r) => r.key);
  } catch {
    return [];
  } finally {
    await c.end();
  }
}

/** Dedupe keys claimed but not confirmed in a Redis dedupe store (call right after a fault). */
export async function unconfirmedRedisClaims(redisUrl: string, namespace: string): Promise<string[]> {
  const { Redis } = await import('ioredis');
  const { redisDedupeKey } = await import('../../executor/effects/dedupe.js');
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => null });
  redis.on('error', () => undefined);
  const prefix = redisDedupeKey(namespace, '');
  const out: string[] = [];
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (!keys.length) continue;
      const values = await redis.mget(keys);
      keys.forEach((k, i) => {
        try {
          if ((JSON.parse(values[i] ?? '{}') as { s?: string }).s === 'claimed') out.push(k.slice(prefix.length));
        } catch {
          // not a claim written by reprise
        }
      });
    } while (cursor !== '0');
    return out;
  } catch {
    return out;
  } finally {
    redis.disconnect();
  }
}
