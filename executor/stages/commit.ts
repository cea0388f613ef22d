/**
 * The chunk commit: one transaction on the state database holding, atomically,
 *   - the fencing check (this worker still holds the newest lease of the chunk),
 *   - the deferred sql effects (those on checkpoint.connection), batched per effect, with their
 *     dedupe claims when the dedupe store is that same database (claim and effect commit
 *     together: exactly once),
 *   - the chunk's ledger rows and item failures,
 *   - the checkpoint (chunk committed) and the run's counters.
 * A crash before COMMIT leaves none of it; after COMMIT the chunk is never processed again.
 *
 * Deferred effects deduped in another store (Redis) are claimed just before the transaction and
 * confirmed just after it; a crash in between leaves an own, unconfirmed claim, and since the
 * chunk did not commit the effect was certainly not applied, so the next attempt applies it.
 */
import type { Item } from '../source/types.js';
import type { ChunkRow, ChunkStage, LedgerEntry, StateStore } from '../store/store.js';
import type { SqlRunner } from '../db/database.js';
import { toParam } from '../effects/appliers.js';
import type { SqlBatcher } from '../effects/batch.js';
import type { ClaimOutcome, DedupeStore } from '../effects/dedupe.js';
import { PostgresDedupeStore } from '../effects/dedupe.js';
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
  /** The dedupe store is the state database: deferred effects claim inside the commit transaction. */
  dedupeInStateDb: boolean;
  batcher: SqlBatcher;
  /** `ordering: key` or `partitionBy`: deferred statements keep their exact order across items. */
  ordered: boolean;
}

export type CommitOutcome = { committed: true; items: number; failed: number } | { committed: false; reason: 'fenced' };

class Fenced extends Error {}

interface Pending {
  call: RecordedCall;
  result: ItemResult;
  /** Position among the item's deferred calls. */
  level: number;
  /** Set once the claim is decided: apply it, or not. */
  apply: boolean;
}

export async function commitChunk(opts: CommitOptions): Promise<CommitOutcome> {
  const { store, runId, chunk, owner } = opts;
  failpoint('before-commit');

  const pending: Pending[] = [];
  for (const r of opts.results) {
    if (!r.ok) continue;
    let level = 0;
    for (const c of r.calls) if (c.deferred) pending.push({ call: c, result: r, level: level++, apply: true });
  }

  // Claims outside the state database are taken before the transaction (see the header).
  const outside = opts.dedupe && !opts.dedupeInStateDb ? pending.filter((p) => p.call.entry.dedupe_key) : [];
  if (outside.length) {
    const outcomes = await opts.dedupe!.claimMany(outside.map((p) => ({ key: p.call.entry.dedupe_key!, itemKey: p.result.item.key })), runId);
    outside.forEach((p, i) => decide(p, outcomes[i]!));
  }

  const attempt = async (isolate: boolean): Promise<CommitOutcome> =>
    store.db.transaction(async (tx) => {
      if (!(await store.fence(tx, runId, chunk.seq, owner, chunk.generation))) throw new Fenced();
      if (!isolate) {
        await applyDeferred(tx, pending, opts);
      } else {
        for (const r of opts.results) {
          const mine = pending.filter((p) => p.result === r);
          if (!mine.length) continue;
          await tx.query('savepoint reprise_item');
          try {
            await applyDeferred(tx, mine, opts);
            await tx.query('release savepoint reprise_item');
          } catch (e) {
            await tx.query('rollback to savepoint reprise_item');
            r.ok = false;
            r.error = `at commit: ${(e as Error).message}`;
          }
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

  let out: CommitOutcome;
  try {
    try {
      out = await attempt(false);
    } catch (e) {
      if (e instanceof Fenced || !pending.length) throw e;
      // A deferred statement failed: commit again, each item in a savepoint of its own.
      for (const p of pending) if (p.call.entry.status !== 'skipped-dup') p.apply = true;
      out = await attempt(true);
    }
  } catch (e) {
    if (e instanceof Fenced) return { committed: false, reason: 'fenced' };
    throw e;
  }
  failpoint('after-commit');
  if (outside.length) {
    // Best effort: the chunk never re-runs, and an unconfirmed claim still keeps live away.
    const applied = outside.filter((p) => p.result.ok && p.apply).map((p) => p.call.entry.dedupe_key!);
    await opts.dedupe!.confirmMany(applied, runId).catch(() => undefined);
    for (const p of outside) if (!p.result.ok && p.apply) await opts.dedupe!.release(p.call.entry.dedupe_key!, runId).catch(() => undefined);
  }
  return out;
}

/** Sets whether a deferred call is applied, and its ledger status, from its claim. */
function decide(p: Pending, claim: ClaimOutcome): void {
  if (claim.outcome === 'taken') {
    p.apply = false;
    p.call.entry.status = 'skipped-dup';
  } else if (claim.outcome === 'own' && claim.state === 'applied') {
    p.apply = false; // confirmed, hence committed, by an earlier attempt
  }
}

async function applyDeferred(tx: SqlRunner, pending: Pending[], opts: CommitOptions): Promise<void> {
  if (!pending.length) return;
  if (opts.dedupeInStateDb && opts.dedupe instanceof PostgresDedupeStore) {
    const deduped = pending.filter((p) => p.call.entry.dedupe_key && p.apply);
    if (deduped.length) {
      const outcomes = await opts.dedupe.claimMany(deduped.map((p) => ({ key: p.call.entry.dedupe_key!, itemKey: p.result.item.key })), opts.runId, tx, 'applied');
      const ownClaimed: string[] = [];
      deduped.forEach((p, i) => {
        const o = outcomes[i]!;
        decide(p, o);
        if (o.outcome === 'own' && o.state === 'claimed') ownClaimed.push(p.call.entry.dedupe_key!);
      });
      await opts.dedupe.confirmMany(ownClaimed, opts.runId, tx);
    }
  }
  for (const group of groups(pending.filter((p) => p.apply), opts.ordered)) {
    const applier = group[0]!.call.deferred!.applier;
    const sql = applier.sql!;
    const argsList = group.map((p) => p.call.deferred!.args);
    if (applier.needsBefore && sql.preview) {
      const rows = await opts.batcher.firstRows(tx, sql.preview, argsList, toParam);
      group.forEach((p, i) => { p.call.entry.before = rows[i] ?? null; });
    }
    await opts.batcher.execute(tx, sql.statement, argsList, toParam);
  }
}

/**
 * Batches of deferred calls applied with one statement each. Unordered runs group the k-th
 * deferred call of every item by effect (each item's own calls keep their order); ordered runs
 * only merge consecutive calls of the same effect, keeping the exact order across items.
 */
function groups(pending: Pending[], ordered: boolean): Pending[][] {
  const out: Pending[][] = [];
  if (ordered) {
    for (const p of pending) {
      const last = out[out.length - 1];
      if (last && last[0]!.call.entry.effect === p.call.entry.effect) last.push(p);
      else out.push([p]);
    }
    return out;
  }
  const byKey = new Map<string, Pending[]>();
  for (const p of [...pending].sort((a, b) => a.level - b.level)) {
    const k = `${p.level}\u0000${p.call.entry.effect}`;
    let g = byKey.get(k);
    if (!g) { g = []; byKey.set(k, g); out.push(g); }
    g.push(p);
  }
  return out;
}
