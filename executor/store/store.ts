/**
 * The state store: every durable fact of a run (runs, chunks and their leases, the ledger of
 * effects, item failures, reports, the audit log of control actions, approval uses). PostgreSQL
 * and embedded PGlite run the same SQL. Invariants live in constraints (see the migrations);
 * this module is the only place that writes these tables.
 */
import { hostname, userInfo } from 'node:os';
import type { Manifest } from '../../schema/manifest.types.js';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { openDatabase, type Database, type SqlRunner, type OpenOptions, isConnectionError, redact } from '../db/database.js';
import { migrate } from './migrate.js';

export type Stage = 'dry-run' | 'canary' | 'full';
export type ChunkStage = 'canary' | 'full';
export type RunStatus = 'pending' | 'running' | 'throttled' | 'paused' | 'aborted' | 'failed' | 'completed';
export type Control = 'run' | 'pause' | 'abort';
export type LedgerStatus = 'applied' | 'suppressed' | 'skipped-dup' | 'claimed' | 'failed' | 'reversed';

export interface RunRow {
  id: string;
  plan: string;
  revision: number;
  manifest_hash: string;
  manifest: Manifest;
  stage: Stage;
  status: RunStatus;
  control: Control;
  total_items: number | null;
  items_done: number;
  items_failed: number;
  planned_at: Date | null;
  chunks_total: number;
  chunks_committed: number;
  throttle: { probe: string; value: number | null; since: string; reason?: string } | null;
  throttled_ms: number;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  last_progress_at: Date | null;
}

/** A chunk's key range: `lo` exclusive, `hi` inclusive (null = open); or explicit `keys`. */
export interface ChunkBounds {
  lo: unknown;
  hi: unknown;
  keys: unknown[] | null;
}

export interface ChunkRow extends ChunkBounds {
  run_id: string;
  seq: number;
  stage: ChunkStage;
  state: 'pending' | 'leased' | 'committed' | 'failed';
  lease_owner: string | null;
  lease_expires_at: Date | null;
  generation: number;
  attempts: number;
  items: number;
  errors: number;
  committed_at: Date | null;
}

export interface LedgerEntry {
  item_key: string;
  effect: string;
  call_index: number;
  policy: 'replay' | 'suppress' | 'dedupe';
  status: LedgerStatus;
  dedupe_key: string | null;
  payload: unknown;
  before: unknown;
  error: string | null;
}

export interface LedgerRow extends LedgerEntry {
  id: number;
  run_id: string;
  stage: ChunkStage;
  chunk_seq: number;
  at: Date;
  reversed_at: Date | null;
  reversed_by: string | null;
}

export interface ItemFailure {
  item_key: string;
  attempts: number;
  error: string;
}

/** Who is acting, for the audit log: `user@host`. */
export function actor(): string {
  let user = process.env.REPRISE_ACTOR ?? '';
  if (!user) {
    try { user = userInfo().username; } catch { user = 'unknown'; }
  }
  return user.includes('@') ? user : `${user}@${hostname()}`;
}

const NUMERIC_RUN_FIELDS = ['total_items', 'items_done', 'items_failed', 'throttled_ms'] as const;

function runFromRow(r: Record<string, unknown>): RunRow {
  const out = { ...r } as unknown as RunRow;
  for (const f of NUMERIC_RUN_FIELDS) {
    const v = r[f];
    (out as unknown as Record<string, unknown>)[f] = v === null || v === undefined ? null : Number(v);
  }
  return out;
}

export const CONTROL_CHANNEL = 'reprise_control';

export class StateStore {
  private constructor(readonly db: Database, private readonly ownsDb: boolean) {}

  /** Opens (and migrates) the state store at `url`. */
  static async open(url: string, opts: OpenOptions = {}): Promise<StateStore> {
    let db: Database;
    try {
      db = await openDatabase(url, { max: 6, applicationName: 'reprise-state', ...opts });
    } catch (e) {
      if (e instanceof RepriseError) throw e;
      throw unavailable(url, e);
    }
    try {
      await migrate(db);
    } catch (e) {
      await db.close().catch(() => undefined);
      if (e instanceof RepriseError) throw e;
      throw unavailable(url, e);
    }
    return new StateStore(db, true);
  }

  /** Uses an already open database (the plan's checkpoint connection) as the state store. */
  static async on(db: Database): Promise<StateStore> {
    try {
      await migrate(db);
    } catch (e) {
      // The plan's checkpoint database down at start refuses the stage (exit 3), like --state does.
      if (e instanceof RepriseError) throw e;
      throw unavailable(db.label, e);
    }
    return new StateStore(db, false);
  }

  get label(): string {
    return this.db.label;
  }

  async close(): Promise<void> {
    if (this.ownsDb) await this.db.close();
  }

  // ---- runs -------------------------------------------------------------------------------

  /**
   * Creates the run of a manifest if it does not exist yet; returns it either way. Several
   * processes may start the same manifest at the same moment: the insert arbitrates on every
   * unique index (id and manifest_hash), since naming only `id` lets the loser of a concurrent
   * insert fail on `runs_manifest_hash_key` instead of doing nothing.
   */
  async ensureRun(runId: string, manifest: Manifest): Promise<RunRow> {
    await this.db.query(
      `insert into reprise.runs (id, plan, revision, manifest_hash, manifest, stage, status)
       values ($1, $2, $3, $4, $5::jsonb, 'dry-run', 'pending')
       on conflict do nothing`,
      [runId, manifest.plan.name, manifest.plan.revision, manifest.hash, JSON.stringify(manifest)],
    );
    const run = await this.getRun(runId);
    if (!run) throw new Error(`run ${runId} vanished`);
    if (run.manifest_hash !== manifest.hash) {
      throw new RepriseError('RUN_ID_COLLISION', `run ${runId} exists with another manifest (${run.manifest_hash})`, {
        exit: ExitCode.refused,
        hint: 'two manifests share the first 8 hex digits of their hash; bump the plan revision',
      });
    }
    return run;
  }

  async getRun(runId: string): Promise<RunRow | undefined> {
    const { rows } = await this.db.query('select * from reprise.runs where id = $1', [runId]);
    return rows[0] ? runFromRow(rows[0]) : undefined;
  }

  async listRuns(): Promise<RunRow[]> {
    const { rows } = await this.db.query('select * from reprise.runs order by created_at desc, id');
    return rows.map(runFromRow);
  }

  async updateRun(runId: string, patch: Partial<Pick<RunRow, 'stage' | 'status' | 'total_items' | 'chunks_total' | 'planned_at' | 'throttle' | 'started_at' | 'finished_at'>>, runner: SqlRunner = this.db): Promise<void> {
    const sets: string[] = [];
    const values: unknown[] = [runId];
    for (const [k, v] of Object.entries(patch)) {
      values.push(k === 'throttle' && v !== null ? JSON.stringify(v) : v);
      sets.push(`${k} = $${values.length}${k === 'throttle' ? '::jsonb' : ''}`);
    }
    if (!sets.length) return;
    await runner.query(`update reprise.runs set ${sets.join(', ')}, updated_at = now() where id = $1`, values);
  }

  async addThrottledMs(runId: string, ms: number): Promise<void> {
    await this.db.query('update reprise.runs set throttled_ms = throttled_ms + $2 where id = $1', [runId, Math.round(ms)]);
  }

  /** Sets the control flag (pause/resume/abort), records who did it, and notifies workers. */
  async setControl(runId: string, control: Control, who = actor(), reason?: string): Promise<RunRow> {
    return this.db.transaction(async (tx) => {
      const { rowCount } = await tx.query('update reprise.runs set control = $2, updated_at = now() where id = $1', [runId, control]);
      if (rowCount === 0) throw runNotFound(runId);
      await this.recordEvent(runId, who, control === 'run' ? 'resume' : control, reason ? { reason } : {}, tx);
      await tx.query('select pg_notify($1, $2)', [CONTROL_CHANNEL, JSON.stringify({ run: runId, control })]);
      const { rows } = await tx.query('select * from reprise.runs where id = $1', [runId]);
      return runFromRow(rows[0]!);
    });
  }

  async getControl(runId: string): Promise<Control> {
    const { rows } = await this.db.query<{ control: Control }>('select control from reprise.runs where id = $1', [runId]);
    if (!rows[0]) throw runNotFound(runId);
    return rows[0].control;
  }

  // ---- events -----------------------------------------------------------------------------

  async recordEvent(runId: string | null, who: string, action: string, detail: Record<string, unknown> = {}, runner: SqlRunner = this.db): Promise<void> {
    await runner.query('insert into reprise.events (run_id, actor, action, detail) values ($1, $2, $3, $4::jsonb)', [runId, who, action, JSON.stringify(detail)]);
  }

  async events(runId: string, limit = 100): Promise<Array<{ id: number; at: Date; actor: string; action: string; detail: Record<string, unknown> }>> {
    const { rows } = await this.db.query<{ id: string; at: Date; actor: string; action: string; detail: Record<string, unknown> }>(
      'select id, at, actor, action, detail from reprise.events where run_id = $1 order by id desc limit $2',
      [runId, limit],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) })).reverse();
  }

  // ---- chunks and leases ------------------------------------------------------------------

  async insertChunks(runId: string, stage: ChunkStage, firstSeq: number, chunks: Array<ChunkBounds & { items?: number }>, runner: SqlRunner = this.db): Promise<void> {
    if (!chunks.length) return;
    await runner.query(
      `insert into reprise.chunks (run_id, seq, stage, lo, hi, keys, items)
       select $1, $2::int + (x.i - 1), $3, x.c->'lo', x.c->'hi', x.c->'keys', coalesce((x.c->>'items')::int, 0)
       from jsonb_array_elements($4::jsonb) with ordinality as x(c, i)`,
      [runId, firstSeq, stage, JSON.stringify(chunks.map((c) => ({ lo: c.lo ?? null, hi: c.hi ?? null, keys: c.keys ?? null, items: c.items ?? 0 })))],
    );
  }

  async chunkCount(runId: string, stage?: ChunkStage): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `select count(*)::int as n from reprise.chunks where run_id = $1 and ($2::text is null or stage = $2)`,
      [runId, stage ?? null],
    );
    return rows[0]?.n ?? 0;
  }

  async chunkStates(runId: string, stage?: ChunkStage): Promise<Record<ChunkRow['state'], number>> {
    const { rows } = await this.db.query<{ state: ChunkRow['state']; n: number }>(
      `select state, count(*)::int as n from reprise.chunks where run_id = $1 and ($2::text is null or stage = $2) group by state`,
      [runId, stage ?? null],
    );
    const out = { pending: 0, leased: 0, committed: 0, failed: 0 };
    for (const r of rows) out[r.state] = r.n;
    return out;
  }

  async getChunks(runId: string, stage?: ChunkStage): Promise<ChunkRow[]> {
    const { rows } = await this.db.query<ChunkRow>(
      `select * from reprise.chunks where run_id = $1 and ($2::text is null or stage = $2) order by seq`,
      [runId, stage ?? null],
    );
    return rows;
  }

  /**
   * Leases the next chunk of a stage that is pending, or whose lease expired (its worker died).
   * Each lease increments the chunk's generation: the fencing token checked at commit.
   */
  async leaseChunk(runId: string, stage: ChunkStage, owner: string, ttlMs: number, inOrder = false): Promise<ChunkRow | undefined> {
    // In order: only the first chunk not yet committed may be leased (ordering: key / partitionBy).
    const { rows } = await this.db.query<ChunkRow>(
      `with next as (
         select seq from reprise.chunks
         where run_id = $1 and stage = $2
           and (state = 'pending' or (state = 'leased' and lease_expires_at < now()))
           and (not $5::boolean or seq = (select min(seq) from reprise.chunks where run_id = $1 and stage = $2 and state in ('pending', 'leased')))
         order by seq
         limit 1
         for update skip locked
       )
       update reprise.chunks c
          set state = 'leased', lease_owner = $3,
              lease_expires_at = now() + ($4::int * interval '1 millisecond'),
              generation = c.generation + 1, attempts = c.attempts + 1
         from next
        where c.run_id = $1 and c.seq = next.seq
      returning c.*`,
      [runId, stage, owner, Math.round(ttlMs), inOrder],
    );
    return rows[0];
  }

  /** Extends a lease; false when the lease was lost (expired and taken by another worker). */
  async heartbeat(runId: string, seq: number, owner: string, generation: number, ttlMs: number): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `update reprise.chunks set lease_expires_at = now() + ($5::int * interval '1 millisecond')
        where run_id = $1 and seq = $2 and lease_owner = $3 and generation = $4 and state = 'leased'`,
      [runId, seq, owner, generation, Math.round(ttlMs)],
    );
    return rowCount > 0;
  }

  /** Gives a chunk back untouched (pause, abort, store outage): it will be processed again from scratch. */
  async releaseChunk(runId: string, seq: number, owner: string, generation: number): Promise<void> {
    await this.db.query(
      `update reprise.chunks set state = 'pending', lease_owner = null, lease_expires_at = null
        where run_id = $1 and seq = $2 and lease_owner = $3 and generation = $4 and state = 'leased'`,
      [runId, seq, owner, generation],
    );
  }

  /**
   * Inside the commit transaction: locks the chunk row and checks the fencing token. False means
   * another worker holds a newer lease (or committed it): this worker's results must be dropped.
   */
  async fence(tx: SqlRunner, runId: string, seq: number, owner: string, generation: number): Promise<boolean> {
    const { rows } = await tx.query<{ state: string; lease_owner: string | null; generation: number }>(
      'select state, lease_owner, generation from reprise.chunks where run_id = $1 and seq = $2 for update',
      [runId, seq],
    );
    const c = rows[0];
    return Boolean(c && c.state === 'leased' && c.lease_owner === owner && c.generation === generation);
  }

  /** Inside the commit transaction: marks the chunk committed and advances the run's counters. */
  async markCommitted(tx: SqlRunner, runId: string, seq: number, items: number, errors: number): Promise<void> {
    await tx.query(
      `update reprise.chunks
          set state = 'committed', lease_owner = null, lease_expires_at = null, committed_at = now(), items = $3, errors = $4
        where run_id = $1 and seq = $2`,
      [runId, seq, items, errors],
    );
    await tx.query(
      `update reprise.runs
          set items_done = items_done + $2, items_failed = items_failed + $3, chunks_committed = chunks_committed + 1,
              last_progress_at = now(), updated_at = now()
        where id = $1`,
      [runId, items, errors],
    );
  }

  async markChunkFailed(runId: string, seq: number, owner: string, generation: number): Promise<void> {
    await this.db.query(
      `update reprise.chunks set state = 'failed', lease_owner = null, lease_expires_at = null
        where run_id = $1 and seq = $2 and lease_owner = $3 and generation = $4`,
      [runId, seq, owner, generation],
    );
  }

  /** Keys of every item in committed canary chunks, for the full stage to skip. */
  async canaryKeys(runId: string): Promise<unknown[]> {
    const { rows } = await this.db.query<{ keys: unknown[] | null }>(
      `select keys from reprise.chunks where run_id = $1 and stage = 'canary' and keys is not null order by seq`,
      [runId],
    );
    return rows.flatMap((r) => r.keys ?? []);
  }

  // ---- ledger and failures ----------------------------------------------------------------

  /** Inside the commit transaction: the chunk's ledger, one batch row per effect. */
  async insertLedger(tx: SqlRunner, runId: string, stage: ChunkStage, chunkSeq: number, entries: LedgerEntry[]): Promise<void> {
    if (!entries.length) return;
    const byEffect = new Map<string, LedgerEntry[]>();
    for (const e of entries) {
      const list = byEffect.get(e.effect);
      if (list) list.push(e);
      else byEffect.set(e.effect, [e]);
    }
    const batches = [...byEffect.values()].map((list) => {
      const counts: Record<string, number> = {};
      for (const e of list) counts[e.status] = (counts[e.status] ?? 0) + 1;
      const hasBefore = list.some((e) => e.before !== null && e.before !== undefined);
      return {
        e: list[0]!.effect,
        p: list[0]!.policy,
        k: list.map((e) => e.item_key),
        c: list.map((e) => e.call_index),
        s: list.map((e) => e.status),
        d: list.map((e) => e.dedupe_key),
        pl: list.map((e) => e.payload ?? null),
        b: hasBefore ? list.map((e) => e.before ?? null) : null,
        er: list.map((e) => e.error),
        n: counts,
      };
    });
    await tx.query(
      `insert into reprise.ledger_batches (run_id, stage, chunk_seq, effect, policy, item_keys, call_indexes, statuses, dedupe_keys, payloads, befores, errors, counts)
       select $1, $2, $3, b->>'e', b->>'p',
              array(select x from jsonb_array_elements_text(b->'k') with ordinality t(x, i) order by i),
              array(select x::int from jsonb_array_elements_text(b->'c') with ordinality t(x, i) order by i),
              array(select x from jsonb_array_elements_text(b->'s') with ordinality t(x, i) order by i),
              array(select x from jsonb_array_elements_text(b->'d') with ordinality t(x, i) order by i),
              b->'pl', nullif(b->'b', 'null'::jsonb),
              array(select x from jsonb_array_elements_text(b->'er') with ordinality t(x, i) order by i),
              b->'n'
         from jsonb_array_elements($4::jsonb) as b`,
      [runId, stage, chunkSeq, JSON.stringify(batches, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))],
    );
  }

  async insertFailures(tx: SqlRunner, runId: string, stage: ChunkStage, chunkSeq: number, failures: ItemFailure[]): Promise<void> {
    if (!failures.length) return;
    await tx.query(
      `insert into reprise.item_failures (run_id, stage, chunk_seq, item_key, attempts, error)
       select $1, $2, $3, x.item_key, x.attempts, x.error
       from jsonb_to_recordset($4::jsonb) as x(item_key text, attempts int, error text)
       on conflict (run_id, item_key) do update set attempts = excluded.attempts, error = excluded.error, at = now(), chunk_seq = excluded.chunk_seq`,
      [runId, stage, chunkSeq, JSON.stringify(failures)],
    );
  }

  async failures(runId: string, limit = 50): Promise<Array<ItemFailure & { at: Date; stage: string }>> {
    const { rows } = await this.db.query<ItemFailure & { at: Date; stage: string }>(
      'select item_key, attempts, error, at, stage from reprise.item_failures where run_id = $1 order by at desc limit $2',
      [runId, limit],
    );
    return rows;
  }

  async ledger(runId: string, filter: { effect?: string; items?: string[]; status?: string; stage?: string; limit?: number; afterId?: number } = {}): Promise<LedgerRow[]> {
    const { rows } = await this.db.query<LedgerRow>(
      `select * from reprise.ledger
        where run_id = $1
          and ($2::text is null or effect = $2)
          and ($3::text[] is null or item_key = any($3::text[]))
          and ($4::text is null or status = $4)
          and ($5::text is null or stage = $5)
          and id > $6
        order by id
        limit $7`,
      [runId, filter.effect ?? null, filter.items ?? null, filter.status ?? null, filter.stage ?? null, filter.afterId ?? 0, filter.limit ?? 1_000_000],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  async ledgerSummary(runId: string, stage?: string): Promise<Array<{ effect: string; policy: string; status: string; n: number }>> {
    const { rows } = await this.db.query<{ effect: string; policy: string; status: string; n: number }>(
      `with counted as (
         select b.effect, b.policy, c.key as status, sum(c.value::int)::int as n
           from reprise.ledger_batches b, jsonb_each_text(b.counts) c
          where b.run_id = $1 and ($2::text is null or b.stage = $2)
          group by b.effect, b.policy, c.key
       ), reversed as (
         select r.effect, count(*)::int as n
           from reprise.reversals r
          where r.run_id = $1 and ($2::text is null or exists (
                  select 1 from reprise.ledger_batches b where b.run_id = r.run_id and b.effect = r.effect and b.stage = $2 and r.item_key = any(b.item_keys)))
          group by r.effect
       )
       select c.effect, c.policy, c.status,
              (c.n - case when c.status = 'applied' then coalesce((select n from reversed where reversed.effect = c.effect), 0) else 0 end)::int as n
         from counted c
       union all
       select r.effect, (select policy from counted where counted.effect = r.effect limit 1), 'reversed', r.n from reversed r
       order by 1, 3`,
      [runId, stage ?? null],
    );
    return rows.filter((r) => r.n > 0);
  }

  /**
   * Marks applied ledger calls reversed (ids from reprise.ledger); `runner` lets a compensation on
   * the state database share its transaction. Calls already reversed are left alone.
   */
  async markReversed(runId: string, ids: number[], who: string, runner: SqlRunner = this.db): Promise<number> {
    const { rowCount } = await runner.query(
      `insert into reprise.reversals (run_id, item_key, effect, call_index, reversed_by)
       select l.run_id, l.item_key, l.effect, l.call_index, $3
         from reprise.ledger l
        where l.run_id = $1 and l.id = any($2::bigint[]) and l.status = 'applied'
       on conflict do nothing`,
      [runId, ids, who],
    );
    return rowCount;
  }

  // ---- reports ----------------------------------------------------------------------------

  async saveReport(runId: string, stage: string, hash: string, body: unknown): Promise<void> {
    await this.db.query(
      `insert into reprise.reports (run_id, stage, hash, body) values ($1, $2, $3, $4::jsonb) on conflict do nothing`,
      [runId, stage, hash, JSON.stringify(body)],
    );
  }

  async latestReport<T = Record<string, unknown>>(runId: string, stage: string): Promise<{ hash: string; body: T; created_at: Date } | undefined> {
    const { rows } = await this.db.query<{ hash: string; body: T; created_at: Date }>(
      'select hash, body, created_at from reprise.reports where run_id = $1 and stage = $2 order by created_at desc limit 1',
      [runId, stage],
    );
    return rows[0];
  }

  async reportByHash<T = Record<string, unknown>>(runId: string, hash: string): Promise<{ stage: string; body: T } | undefined> {
    const { rows } = await this.db.query<{ stage: string; body: T }>('select stage, body from reprise.reports where run_id = $1 and hash = $2', [runId, hash]);
    return rows[0];
  }

  // ---- approvals --------------------------------------------------------------------------

  /**
   * Records that an approval was used by a run. Returns the run that used it first: the
   * caller refuses when that is another run (an approval is good for one run only).
   */
  async recordApprovalUse(approvalId: string, runId: string, stage: string, approver: string): Promise<string> {
    await this.db.query(
      `insert into reprise.approval_uses (approval_id, run_id, stage, approver) values ($1, $2, $3, $4) on conflict (approval_id) do nothing`,
      [approvalId, runId, stage, approver],
    );
    const { rows } = await this.db.query<{ run_id: string }>('select run_id from reprise.approval_uses where approval_id = $1', [approvalId]);
    return rows[0]!.run_id;
  }

  /** The recorded uses of these approvals: approval id -> the run that used it, and when it first did. */
  async approvalUses(approvalIds: readonly string[]): Promise<Map<string, { runId: string; stage: string; usedAt: Date }>> {
    const out = new Map<string, { runId: string; stage: string; usedAt: Date }>();
    if (!approvalIds.length) return out;
    const { rows } = await this.db.query<{ approval_id: string; run_id: string; stage: string; used_at: Date }>(
      'select approval_id, run_id, stage, used_at from reprise.approval_uses where approval_id = any($1::text[])',
      [approvalIds],
    );
    for (const r of rows) out.set(r.approval_id, { runId: r.run_id, stage: r.stage, usedAt: new Date(r.used_at) });
    return out;
  }

  async approvalUsedBy(approvalId: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ run_id: string }>('select run_id from reprise.approval_uses where approval_id = $1', [approvalId]);
    return rows[0]?.run_id;
  }

  // ---- workers ----------------------------------------------------------------------------

  async workerHeartbeat(runId: string, workerId: string): Promise<void> {
    await this.db.query(
      `insert into reprise.workers (run_id, worker_id, host, pid) values ($1, $2, $3, $4)
       on conflict (run_id, worker_id) do update set heartbeat_at = now()`,
      [runId, workerId, hostname(), process.pid],
    );
  }

  async activeWorkers(runId: string, withinMs = 30_000): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `select count(*)::int as n from reprise.workers where run_id = $1 and heartbeat_at > now() - ($2::int * interval '1 millisecond')`,
      [runId, withinMs],
    );
    return rows[0]?.n ?? 0;
  }
}

export function runNotFound(runId: string): RepriseError {
  return new RepriseError('RUN_NOT_FOUND', `no run ${runId} in this state store`, {
    exit: ExitCode.invalidInput,
    hint: 'list runs with reprise status; check --state (or REPRISE_STATE) points at the store the run used',
  });
}

function unavailable(url: string, cause: unknown): RepriseError {
  return new RepriseError('STATE_UNAVAILABLE', `cannot reach the state store ${redact(url)}: ${(cause as Error).message}`, {
    exit: isConnectionError(cause) ? ExitCode.refused : ExitCode.internal,
    hint: 'check --state / REPRISE_STATE and that the server is up',
    cause,
  });
}
