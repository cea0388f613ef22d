/**
 * What the executor tests read back after a run: the chunk table against the ledger (a chunk is
 * committed with all of its ledger rows or with none), the chunk commits a CLI process reported,
 * and waiting on the state store instead of sleeping.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import type { PlanCopy } from './plans.js';

export interface ChunkLedger {
  chunks: number;
  committed: number;
  leased: number;
  pending: number;
  /** Committed chunks whose ledger rows are not exactly `callsPerItem` per committed item. */
  committedIncomplete: number;
  /** Ledger rows of chunks that are not committed (a partial commit). */
  ledgerOfUncommitted: number;
  /** runs.chunks_committed (incremented once per commit) and runs.items_done. */
  runChunksCommitted: number;
  runChunksTotal: number;
  itemsDone: number;
}

type Query = (sql: string, params: unknown[]) => Promise<{ rows: Array<Record<string, any>> }>;

/**
 * Checks every chunk of a run against its ledger rows; `callsPerItem` = effect calls per item
 * (for runs without item failures).
 */
export async function chunkLedger(url: string, runId: string, callsPerItem: number, stage = 'full'): Promise<ChunkLedger> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await chunkLedgerOf((sql, p) => c.query(sql, p), runId, callsPerItem, stage);
  } finally {
    await c.end();
  }
}

/** chunkLedger over any state store (PGlite too): `query` runs SQL on it. */
export async function chunkLedgerOf(query: Query, runId: string, callsPerItem: number, stage = 'full'): Promise<ChunkLedger> {
  const chunks = (await query(`select seq, state, items from reprise.chunks where run_id = $1 and stage = $2`, [runId, stage])).rows as Array<{ seq: number; state: string; items: number }>;
  // One pass over the run's ledger, counted per chunk.
  const perChunk = new Map<number, number>();
  for (const r of (await query(`select chunk_seq, count(*)::int as n from reprise.ledger where run_id = $1 and stage = $2 group by chunk_seq`, [runId, stage])).rows) perChunk.set(r.chunk_seq, r.n);
  const n = (s: string): number => chunks.filter((ch) => ch.state === s).length;
  const run = (await query(`select chunks_committed, chunks_total, items_done from reprise.runs where id = $1`, [runId])).rows[0];
  return {
    chunks: chunks.length,
    committed: n('committed'),
    leased: n('leased'),
    pending: n('pending'),
    committedIncomplete: chunks.filter((ch) => ch.state === 'committed' && (perChunk.get(ch.seq) ?? 0) !== ch.items * callsPerItem).length,
    ledgerOfUncommitted: chunks.filter((ch) => ch.state !== 'committed').reduce((sum, ch) => sum + (perChunk.get(ch.seq) ?? 0), 0),
    runChunksCommitted: run?.chunks_committed ?? 0,
    runChunksTotal: run?.chunks_total ?? 0,
    itemsDone: Number(run?.items_done ?? 0),
  };
}

/** JSON event lines of a `reprise --json run` output. */
export function jsonLines(stdout: string): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a partial line of a killed process
    }
  }
  return out;
}

/** Sequence numbers of the chunks a `reprise --json run` process reports it committed. */
export function committedSeqs(stdout: string): number[] {
  return jsonLines(stdout).filter((e) => e.type === 'chunk').map((e) => Number(e.seq));
}

/** The run id a `reprise --json run` process announced. */
export function runIdOf(stdout: string): string | undefined {
  return jsonLines(stdout).find((e) => e.type === 'start')?.run;
}

/** Polls `check` until it returns a value other than undefined (no fixed sleeps in assertions). */
export async function waitUntil<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 90_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Counts of committed chunks of a run, straight from the state store. */
export async function committedChunks(url: string, runId: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(`select count(*)::int as n from reprise.chunks where run_id = $1 and state = 'committed'`, [runId])).rows[0].n;
  } finally {
    await c.end();
  }
}

/**
 * Adds to a crash-scenario plan (test/support/crash.ts) a dedupe effect applied in the chunk's
 * commit transaction — `record_sql`, sql on the checkpoint connection, key `sql:{id}`,
 * appending to `sink` — and a handler that calls it after the scenario's five effects. Its key
 * is claimed at commit: inside the commit transaction with a PostgreSQL store in the state
 * database, just before it with Redis.
 */
export function addDeferredDedupeEffect(plan: PlanCopy, delivery: 'at-most-once' | 'at-least-once' = 'at-most-once'): void {
  const data = plan.data as Record<string, any>;
  data.sideEffects.push({
    name: 'record_sql', kind: 'sql', connection: 'db', idempotent: false,
    statement: "insert into sink (effect, item, dedupe_key, at) values ('record_sql', :id, 'sql:' || :id, clock_timestamp())",
    backfill: 'dedupe', live: 'dedupe', dedupeKey: 'sql:{id}', delivery,
  });
  writeFileSync(plan.path, stringify(data));
  writeFileSync(join(plan.dir, 'crash.handler.ts'), [
    "import { defineHandler } from 'reprise';",
    "export default defineHandler<{ id: string; amount: string }, 'write_result' | 'upsert_total' | 'notify' | 'publish_alo' | 'publish_amo' | 'record_sql'>(async (row, ctx) => {",
    '  await ctx.effects.write_result({ id: row.id });',
    '  await ctx.effects.upsert_total({ id: row.id, amount: row.amount });',
    '  await ctx.effects.notify({ id: row.id });',
    '  await ctx.effects.publish_alo({ id: row.id });',
    '  await ctx.effects.publish_amo({ id: row.id });',
    '  await ctx.effects.record_sql({ id: row.id });',
    '});',
    '',
  ].join('\n'));
}
