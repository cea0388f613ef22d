/**
 * The chunk commit: one transaction on the state database holding, atomically,
 *   - the fencing check (this worker still holds the newest lease of the chunk),
 *   - the deferred sql effects (those on checkpoint.connection) and, when the dedupe store is
 *     that database, the confirmation of their claims,
 *   - the chunk's ledger rows and item failures,
 *   - the checkpoint (chunk committed) and the run's counters.
 * A crash before COMMIT leaves none of it; after COMMIT the chunk is never processed again.
 */
import type { Item } from '../source/types.js';
import type { ChunkRow, ChunkStage, LedgerEntry, StateStore } from '../store/store.js';
import type { SqlRunner } from '../db/database.js';
import type { DedupeStore } from '../effects/dedupe.js';
import type { RecordedCall } from '../effects/gate.js';
import { failpoint } from '../failpoints.js';

export interface ItemResult {
  item: Item;
  ok: boolean;
  attempts: number;
  /** The effect calls of the item's last attempt. */
  calls: RecordedCall[];
  error?: string;
}

export interface CommitOptions {
  store: StateStore;
  runId: string;
  stage: ChunkStage;
  chunk: ChunkRow;
  owner: string;
  results: ItemResult[];
  dedupe: DedupeStore | undefined;
}

export type CommitOutcome = { committed: true; items: number; failed: number } | { committed: false; reason: 'fenced' };

class Fenced extends Error {}

export async function commitChunk(opts: CommitOptions): Promise<CommitOutcome> {
  const { store, runId, chunk, owner } = opts;
  const attempt = async (isolate: boolean): Promise<CommitOutcome> =>
    store.db.transaction(async (tx) => {
      if (!(await store.fence(tx, runId, chunk.seq, owner, chunk.generation))) throw new Fenced();
      for (const r of opts.results) {
        if (!r.ok) continue;
        const deferred = r.calls.filter((c) => c.deferred);
        if (!deferred.length) continue;
        if (!isolate) {
          await applyDeferred(tx, deferred, opts);
          continue;
        }
        await tx.query('savepoint reprise_item');
        try {
          await applyDeferred(tx, deferred, opts);
          await tx.query('release savepoint reprise_item');
        } catch (e) {
          await tx.query('rollback to savepoint reprise_item');
          r.ok = false;
          r.error = `at commit: ${(e as Error).message}`;
        }
      }
      const entries: LedgerEntry[] = [];
      for (const r of opts.results) {
        for (const c of r.calls) {
          // A deferred effect of an item that failed was never applied: nothing to ledger.
          if (c.deferred && !r.ok) continue;
          entries.push(c.entry);
        }
      }
      await store.insertLedger(tx, runId, opts.stage, chunk.seq, entries);
      const failed = opts.results.filter((r) => !r.ok);
      await store.insertFailures(tx, runId, opts.stage, chunk.seq, failed.map((r) => ({ item_key: r.item.key, attempts: r.attempts, error: r.error ?? 'failed' })));
      await store.markCommitted(tx, runId, chunk.seq, opts.results.length - failed.length, failed.length);
      failpoint('in-commit');
      return { committed: true as const, items: opts.results.length - failed.length, failed: failed.length };
    });
  try {
    failpoint('before-commit');
    let out: CommitOutcome;
    try {
      out = await attempt(false);
    } catch (e) {
      if (e instanceof Fenced || !opts.results.some((r) => r.calls.some((c) => c.deferred))) throw e;
      // A deferred statement failed: commit again, isolating each item in a savepoint.
      out = await attempt(true);
    }
    failpoint('after-commit');
    await confirmAfterCommit(opts);
    return out;
  } catch (e) {
    if (e instanceof Fenced) return { committed: false, reason: 'fenced' };
    throw e;
  }
}

async function applyDeferred(tx: SqlRunner, calls: RecordedCall[], opts: CommitOptions): Promise<void> {
  for (const c of calls) {
    const d = c.deferred!;
    if (d.applier.needsBefore && d.applier.readBefore) c.entry.before = await d.applier.readBefore(d.args, tx);
    await d.applier.apply(d.args, {
      signal: AbortSignal.timeout(60_000),
      runId: opts.runId,
      itemKey: c.entry.item_key,
      dedupeKey: c.entry.dedupe_key ?? undefined,
      idempotencyKey: c.entry.dedupe_key ?? `${opts.runId}:${c.entry.item_key}:${c.entry.effect}:${c.entry.call_index}`,
      runner: tx,
    });
    if (d.confirmClaim && c.entry.dedupe_key) await opts.dedupe!.confirm(c.entry.dedupe_key, opts.runId, tx);
  }
}

/**
 * After COMMIT: Redis claims of deferred effects are confirmed (best effort: the chunk never
 * re-runs, and an unconfirmed claim still blocks live); claims of deferred effects whose item
 * failed are released, since those effects were certainly not applied.
 */
async function confirmAfterCommit(opts: CommitOptions): Promise<void> {
  if (!opts.dedupe) return;
  for (const r of opts.results) {
    for (const c of r.calls) {
      const key = c.entry.dedupe_key;
      if (!key || !c.deferred) continue;
      if (r.ok && c.confirmAfterCommit) await opts.dedupe.confirm(key, opts.runId).catch(() => undefined);
      if (!r.ok) await opts.dedupe.release(key, opts.runId).catch(() => undefined);
    }
  }
}
