/**
 * The monitoring scenario: a table of items in a window, a sink with no unique constraint (a
 * duplicate or a lost write shows in a count), and a plan whose sql effect writes the sink in
 * the chunk commit (checkpoint on the same database). Its handler reads environment variables to
 * misbehave — block after some id, fail every k-th item, go slowly — so a test breaks a run and
 * the next run, with the same plan and the same manifest hash, behaves.
 */
import pg from 'pg';
import { writePlan, type PlanCopy } from '../support/plans.js';

export async function seedItems(url: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`
      create table items (id bigint primary key, created_at timestamptz not null);
      create table sink (id bigint not null, at timestamptz not null default clock_timestamp());`);
    await c.query(`insert into items select g, timestamptz '2026-01-01' + g * interval '1 minute' from generate_series(1, $1::int) g`, [n]);
  } finally {
    await c.end();
  }
}

export const HANDLER = `
import { defineHandler } from 'reprise';

/** Items after MON_BLOCK_AFTER wait forever (or on the test's gate, in process); every MON_FAIL_EVERY-th item throws. */
export default defineHandler(async (item: { id: string | number }, ctx) => {
  const id = Number(item.id);
  const blockAfter = process.env.MON_BLOCK_AFTER;
  if (blockAfter && id > Number(blockAfter)) {
    const gate = (globalThis as { __monitorTestGate?: Promise<void> }).__monitorTestGate;
    await (gate ?? new Promise<void>(() => {}));
  }
  const failEvery = process.env.MON_FAIL_EVERY;
  if (failEvery && id % Number(failEvery) === 0) throw new Error(\`item \${id} refused: MON_FAIL_EVERY=\${failEvery}\`);
  const delay = process.env.MON_DELAY_MS;
  if (delay) await new Promise((r) => setTimeout(r, Number(delay)));
  await ctx.effects.write_sink({ id });
});
`;

export interface ScenarioPlanOptions {
  n: number;
  abort?: Record<string, unknown>;
  itemsPerSecond?: number;
  chunkSize?: number;
  concurrency?: number;
  /**
   * The state in the embedded store (no checkpoint.connection): the sink write is then applied
   * when called, so it is written idempotently.
   */
  embedded?: boolean;
}

export function scenarioPlan(o: ScenarioPlanOptions): PlanCopy {
  return writePlan(
    'monitor-test',
    {
      reprise: 1,
      name: 'monitor-test',
      revision: 1,
      owner: 'operations',
      author: 'tester@example.com',
      reason: 'Monitoring scenario: stalls, error budgets, metrics.',
      connections: { db: { env: 'MON_DB_URL' } },
      selection: {
        connection: 'db',
        query: 'select id from items where created_at >= :window_start and created_at < :window_end',
        key: 'id',
        window: { start: '2026-01-01T00:00:00Z', end: '2026-12-01T00:00:00Z' },
        expect: { min: o.n, max: o.n },
      },
      processing: { handler: './monitor.handler.ts', timeoutMs: 600_000, retries: { max: 0, backoffMs: 10 } },
      sideEffects: [
        o.embedded
          ? { name: 'write_sink', kind: 'sql', connection: 'db', statement: 'insert into sink (id) select :id where not exists (select 1 from sink where id = :id)', backfill: 'replay', live: 'none' }
          : { name: 'write_sink', kind: 'sql', connection: 'db', statement: 'insert into sink (id) values (:id)', idempotent: false, backfill: 'replay', live: 'none' },
      ],
      rate: {
        itemsPerSecond: o.itemsPerSecond ?? 100_000,
        concurrency: o.concurrency ?? 2,
        chunkSize: o.chunkSize ?? 10,
        maxConnections: 4,
        protect: [{ name: 'replica-lag', connection: 'db', query: 'select 0 as value', max: 5 }],
      },
      canary: { size: 5, pick: 'first' },
      abort: o.abort ?? {},
      ...(o.embedded ? {} : { checkpoint: { connection: 'db' } }),
    },
    { 'monitor.handler.ts': HANDLER },
  );
}

export interface StateCheck {
  chunks: Record<'pending' | 'leased' | 'committed' | 'failed', number>;
  /** Chunks still leased with a lease that has not expired. */
  liveLeases: number;
  /** Committed chunks whose ledger rows or failures do not match their item counts. */
  incompleteCommitted: number[];
  /** Ledger rows or failures that belong to a chunk that is not committed. */
  rowsOfUncommitted: number;
  committedItems: number;
  committedFailures: number;
  sinkRows: number;
  sinkDistinct: number;
  /** Sink rows without an applied ledger row, and applied ledger rows without a sink row. */
  sinkWithoutLedger: number;
  ledgerWithoutSink: number;
}

/** The state of a run of the scenario, and whether every committed chunk is whole. */
export async function checkState(url: string, runId: string): Promise<StateCheck> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const one = async (sql: string): Promise<number> => Number((await c.query(sql, [runId])).rows[0].n);
  try {
    const chunks = { pending: 0, leased: 0, committed: 0, failed: 0 };
    for (const r of (await c.query(`select state, count(*)::int as n from reprise.chunks where run_id = $1 and stage = 'full' group by state`, [runId])).rows) chunks[r.state as keyof typeof chunks] = r.n;
    const incomplete = await c.query(
      `select ch.seq from reprise.chunks ch
        where ch.run_id = $1 and ch.state = 'committed'
          and (ch.items <> (select count(*) from reprise.ledger l where l.run_id = ch.run_id and l.chunk_seq = ch.seq and l.effect = 'write_sink' and l.status = 'applied')
            or ch.errors <> (select count(*) from reprise.item_failures f where f.run_id = ch.run_id and f.chunk_seq = ch.seq))
        order by ch.seq`,
      [runId],
    );
    return {
      chunks,
      liveLeases: await one(`select count(*)::int as n from reprise.chunks where run_id = $1 and state = 'leased' and lease_expires_at > now()`),
      incompleteCommitted: incomplete.rows.map((r) => Number(r.seq)),
      rowsOfUncommitted: await one(
        `select (select count(*) from reprise.ledger l join reprise.chunks ch on ch.run_id = l.run_id and ch.seq = l.chunk_seq where l.run_id = $1 and ch.state <> 'committed')
              + (select count(*) from reprise.item_failures f join reprise.chunks ch on ch.run_id = f.run_id and ch.seq = f.chunk_seq where f.run_id = $1 and ch.state <> 'committed') as n`,
      ),
      committedItems: await one(`select coalesce(sum(items), 0)::int as n from reprise.chunks where run_id = $1 and state = 'committed'`),
      committedFailures: await one(`select coalesce(sum(errors), 0)::int as n from reprise.chunks where run_id = $1 and state = 'committed'`),
      sinkRows: Number((await c.query('select count(*)::int as n from sink')).rows[0].n),
      sinkDistinct: Number((await c.query('select count(distinct id)::int as n from sink')).rows[0].n),
      sinkWithoutLedger: await one(`select count(*)::int as n from sink s where not exists (select 1 from reprise.ledger l where l.run_id = $1 and l.effect = 'write_sink' and l.status = 'applied' and l.item_key = s.id::text)`),
      ledgerWithoutSink: await one(`select count(*)::int as n from reprise.ledger l where l.run_id = $1 and l.effect = 'write_sink' and l.status = 'applied' and not exists (select 1 from sink s where s.id::text = l.item_key)`),
    };
  } finally {
    await c.end();
  }
}

/** Polls `fn` until it returns a truthy value, or fails after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The run row, read with a short-lived client. */
export async function runRow(url: string, runId: string): Promise<Record<string, any> | undefined> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query('select * from reprise.runs where id = $1', [runId])).rows[0];
  } catch {
    return undefined;
  } finally {
    await c.end();
  }
}
