/**
 * A worker: lease a chunk, process its items, commit it — until the stage has no chunk left.
 * Several workers (in one process with --workers, or in several processes on several machines)
 * share a run through the state store's leases.
 *
 * Within a chunk, items run `rate.concurrency` at a time, taking rate tokens per batch and
 * waiting while a live-health probe throttles the run. `ordering: key` processes one item at a
 * time and chunks strictly in order; `ordering: { partitionBy }` keeps each partition in order
 * (partitions run concurrently) and also takes chunks in order, so a partition spanning two
 * chunks stays ordered.
 */
import type { Plan } from '../../schema/manifest.types.js';
import { isConnectionError } from '../db/database.js';
import type { DedupeStore } from '../effects/dedupe.js';
import type { SqlBatcher } from '../effects/batch.js';
import { DedupeUnavailableError } from '../effects/dedupe.js';
import type { AttemptLease, AttemptSignal, EffectsGate, RecordedCall } from '../effects/gate.js';
import type { Handler, HandlerLogger } from '../handler-api.js';
import type { Item, ItemSource } from '../source/types.js';
import type { ChunkRow, ChunkStage, StateStore } from '../store/store.js';
import { sleep, type LiveGuard, type RateLimiter } from '../throttle/limiter.js';
import { commitChunk, type ItemResult } from './commit.js';
import type { RunControl } from './control.js';

export interface WorkerObserver {
  itemDone(result: ItemResult): void;
  chunkCommitted(chunk: ChunkRow, items: number, failed: number): void;
  chunkReleased(chunk: ChunkRow, why: string): void;
  fenced(chunk: ChunkRow): void;
  waiting(why: string): void;
  log: HandlerLogger;
}

export interface WorkerContext {
  store: StateStore;
  runId: string;
  stage: ChunkStage;
  plan: Plan;
  source: ItemSource;
  handler: Handler;
  gate: EffectsGate;
  limiter: RateLimiter;
  guard: LiveGuard;
  dedupe: DedupeStore | undefined;
  dedupeInStateDb: boolean;
  batcher: SqlBatcher;
  control: RunControl;
  /** Keys the full stage skips (committed by the canary). */
  skipKeys: ReadonlySet<string>;
  leaseTtlMs: number;
  /** How long the state store may stay unreachable before the run stops (exit 4). */
  outageTimeoutMs: number;
  observer: WorkerObserver;
  /** Shared by the workers of this process: wakes those waiting on chunks the others hold. */
  board: ChunkBoard;
}

class Interrupted extends Error {}

/**
 * Wakes this process's workers that wait for chunks other workers hold, as soon as one of this
 * process's chunks is committed or given back: the last chunks of a stage no longer leave the
 * idle workers (and the stage's end) asleep for up to a second. Chunks held by other processes
 * are still polled.
 */
export class ChunkBoard {
  version = 0;
  private waiters = new Set<() => void>();

  changed(): void {
    this.version++;
    const w = [...this.waiters];
    this.waiters.clear();
    for (const f of w) f();
  }

  /** Resolves after `ms`, on abort, or once the board changed since `since` (at once if it has). */
  wait(ms: number, since: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
      if (signal.aborted || this.version !== since) done();
    });
  }
}

export async function runWorker(ctx: WorkerContext, workerId: string): Promise<void> {
  const inOrder = orderingOf(ctx.plan) !== 'none';
  let outageSince: number | undefined;
  let backoff = 250;
  // One commit may be in flight while the next chunk is fetched and processed; commits
  // themselves stay one at a time and in order.
  let pending: Promise<void> | undefined;
  const settle = async (): Promise<void> => {
    const p = pending;
    pending = undefined;
    if (p) await p;
  };
  try {
    while (!ctx.control.stopped) {
      await ctx.control.waitWhilePaused();
      if (ctx.control.stopped) break;
      let chunk: ChunkRow | undefined;
      // A chunk processed but whose commit has not started: if the previous commit fails, it is
      // given back here (its heartbeat stopped), or its lease would be renewed forever.
      let prepared: PreparedChunk | undefined;
      try {
        const askedAt = Date.now();
        const seen = ctx.board.version;
        chunk = await ctx.store.leaseChunk(ctx.runId, ctx.stage, workerId, ctx.leaseTtlMs, inOrder);
        if (!chunk) {
          if (pending) { await settle(); continue; }
          const states = await ctx.store.chunkStates(ctx.runId, ctx.stage);
          if (states.pending === 0 && states.leased === 0) return;
          ctx.observer.waiting(`${states.leased} chunk(s) leased by other workers`);
          await ctx.board.wait(Math.min(1000, ctx.leaseTtlMs / 4), seen, ctx.control.stopSignal);
          continue;
        }
        prepared = await prepareChunk(ctx, chunk, workerId, askedAt);
        await settle();
        const next = commitPrepared(ctx, prepared, workerId);
        prepared = undefined; // the commit owns it now
        next.catch(() => undefined); // awaited by settle(); marked handled meanwhile
        pending = next;
        outageSince = undefined;
        backoff = 250;
      } catch (e) {
        if (prepared) {
          prepared.stopHeartbeat();
          await ctx.store.releaseChunk(ctx.runId, prepared.chunk.seq, workerId, prepared.chunk.generation).catch(() => undefined);
          ctx.observer.chunkReleased(prepared.chunk, 'the previous commit failed');
          ctx.board.changed();
        }
        await settle().catch(() => undefined);
        if (e instanceof Interrupted || ctx.control.stopped) continue;
        if (!isConnectionError(e)) throw e;
        outageSince ??= Date.now();
        if (Date.now() - outageSince > ctx.outageTimeoutMs) {
          ctx.control.stop('store-unreachable', (e as Error).message);
          break;
        }
        ctx.observer.waiting(`database unreachable (${(e as Error).message}); retrying`);
        if (chunk) {
          await ctx.store.releaseChunk(ctx.runId, chunk.seq, workerId, chunk.generation).catch(() => undefined);
          ctx.board.changed();
        }
        await sleep(backoff, ctx.control.stopSignal).catch(() => undefined);
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  } finally {
    await settle().catch((e) => { if (!(e instanceof Interrupted) && !isConnectionError(e)) throw e; });
  }
}

interface PreparedChunk {
  chunk: ChunkRow;
  results: ItemResult[];
  lease: AbortController;
  /** Stops renewing the lease (and watching it run out). */
  stopHeartbeat: () => void;
}

/** Fetches and processes a chunk's items under a heartbeated lease; gives the chunk back when interrupted. */
async function prepareChunk(ctx: WorkerContext, chunk: ChunkRow, workerId: string, leasedAt: number): Promise<PreparedChunk> {
  const lease = new AbortController();
  // How long this process can vouch for its lease: one TTL (less a margin for clock rates) from
  // when the lease, or its last renewal, was asked for. A process frozen past it (SIGSTOP, a VM
  // or GC pause) wakes up with its heartbeat not yet run: it must not start effects then, since
  // another worker may already own the chunk (the gate asks lease.held(); fencing covers the commit).
  const margin = Math.min(1_000, Math.floor(ctx.leaseTtlMs / 10));
  let heldUntil = leasedAt + ctx.leaseTtlMs - margin;
  // The lease is also watched between gate calls: when it runs out unrenewed (the state store
  // unreachable, say), the chunk's attempts are aborted at once, so an effect call under way (a
  // module retrying its own connection while a database restarts) is told before a successor can
  // take the chunk over, not only the next time the handler calls an effect.
  let expiry: NodeJS.Timeout | undefined;
  const watchExpiry = (): void => {
    clearTimeout(expiry);
    expiry = setTimeout(() => { leaseHeld(); }, Math.max(0, heldUntil - Date.now()));
  };
  const heartbeat = setInterval(() => {
    const sentAt = Date.now();
    ctx.store
      .heartbeat(ctx.runId, chunk.seq, workerId, chunk.generation, ctx.leaseTtlMs)
      .then((held) => {
        if (held) {
          heldUntil = Math.max(heldUntil, sentAt + ctx.leaseTtlMs - margin);
          if (!lease.signal.aborted) watchExpiry();
        } else lease.abort(new Error('lease lost'));
      })
      .catch(() => undefined);
  }, Math.max(100, Math.floor(ctx.leaseTtlMs / 3)));
  const stopHeartbeat = (): void => {
    clearInterval(heartbeat);
    clearTimeout(expiry);
  };
  const leaseHeld = (): boolean => {
    if (lease.signal.aborted) return false;
    if (Date.now() < heldUntil) return true;
    lease.abort(new Error('lease expired'));
    return false;
  };
  watchExpiry();
  const stop = AbortSignal.any([ctx.control.stopSignal, lease.signal]);
  try {
    const items = (await ctx.source.fetch(chunk)).filter((i) => !ctx.skipKeys.has(i.key));
    const results = await processItems(ctx, items, stop, { held: leaseHeld, fence: { chunk: chunk.seq, generation: chunk.generation } });
    if (!results || ctx.gate.failedClosed) {
      if (ctx.gate.failedClosed) ctx.control.stop('fail-closed', ctx.gate.failedClosed.message);
      const why = lease.signal.aborted ? 'lease lost' : ctx.control.stopReason?.reason ?? 'paused';
      if (!lease.signal.aborted) await ctx.store.releaseChunk(ctx.runId, chunk.seq, workerId, chunk.generation).catch(() => undefined);
      ctx.observer.chunkReleased(chunk, why);
      ctx.board.changed();
      throw new Interrupted();
    }
    return { chunk, results, lease, stopHeartbeat };
  } catch (e) {
    stopHeartbeat();
    throw e;
  }
}

async function commitPrepared(ctx: WorkerContext, p: PreparedChunk, workerId: string): Promise<void> {
  const { chunk, results } = p;
  try {
    let out;
    try {
      out = await commitChunk({
        store: ctx.store, runId: ctx.runId, stage: ctx.stage, chunk, owner: workerId, results,
        dedupe: ctx.dedupe, dedupeInStateDb: ctx.dedupeInStateDb, batcher: ctx.batcher, ordered: orderingOf(ctx.plan) !== 'none',
      });
    } catch (e) {
      if (e instanceof DedupeUnavailableError) {
        // Fail closed: nothing of this chunk was applied without its claim; give it back and stop.
        ctx.control.stop('fail-closed', e.message);
        await ctx.store.releaseChunk(ctx.runId, chunk.seq, workerId, chunk.generation).catch(() => undefined);
        ctx.observer.chunkReleased(chunk, 'dedupe store unreachable');
        throw new Interrupted();
      }
      if (isConnectionError(e)) await ctx.store.releaseChunk(ctx.runId, chunk.seq, workerId, chunk.generation).catch(() => undefined);
      throw e;
    }
    if (out.committed) ctx.observer.chunkCommitted(chunk, out.items, out.failed);
    else ctx.observer.fenced(chunk);
  } finally {
    p.stopHeartbeat();
    ctx.board.changed();
  }
}

/** Runs a chunk's items; undefined when stopped before every item finished (the chunk is released). */
async function processItems(ctx: WorkerContext, items: Item[], stop: AbortSignal, lease?: AttemptLease): Promise<ItemResult[] | undefined> {
  const ordering = orderingOf(ctx.plan);
  const concurrency = ordering === 'key' ? 1 : ctx.plan.rate.concurrency;
  const lanes: Item[][] =
    typeof ordering === 'object'
      ? [...groupBy(items, (i) => String(i.row[ordering.partitionBy] ?? '')).values()]
      : ordering === 'key'
        ? [items]
        : items.map((i) => [i]);
  const results: Array<ItemResult | undefined> = [];
  const index = new Map(items.map((it, i) => [it, i]));
  const tokens = new TokenTap(ctx.limiter, tokenBatch(ctx.plan), items.length);
  // One listener on the chunk's stop signal for all its attempts (one per item costs too much).
  const stoppers = new Set<() => void>();
  const onStop = (): void => { for (const f of stoppers) f(); };
  stop.addEventListener('abort', onStop, { once: true });
  let next = 0;
  let interrupted = false;
  const lane = async (): Promise<void> => {
    while (next < lanes.length && !interrupted) {
      const mine = lanes[next++]!;
      for (const item of mine) {
        const r = await processItem(ctx, item, stop, stoppers, tokens, lease);
        if (!r) { interrupted = true; return; }
        results[index.get(item)!] = r;
        ctx.observer.itemDone(r);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, lanes.length) }, lane));
  } finally {
    stop.removeEventListener('abort', onStop);
  }
  if (interrupted || stop.aborted || results.length !== items.length || results.some((r) => !r)) return undefined;
  return results as ItemResult[];
}

/**
 * One attempt's abort state. Its AbortSignal is made only when the handler reads `ctx.signal`
 * or an effect applied at once needs it: items whose effects are all deferred to the chunk
 * commit never pay for an AbortController.
 */
class Attempt implements AttemptSignal {
  aborted = false;
  private reason: unknown;
  private controller: AbortController | undefined;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

async function processItem(ctx: WorkerContext, item: Item, stop: AbortSignal, stoppers: Set<() => void>, tokens: TokenTap, lease?: AttemptLease): Promise<ItemResult | undefined> {
  const { retries, timeoutMs } = ctx.plan.processing;
  let lastError = '';
  let lastCalls: RecordedCall[] = [];
  for (let attempt = 1; attempt <= retries.max + 1; attempt++) {
    // Paused or stopped: the item does not start; its chunk is given back and processed again
    // later (the worker waits at the top of its loop, holding no lease).
    if (ctx.control.paused || stop.aborted) return undefined;
    try {
      await ctx.guard.waitUntilHealthy(stop);
      if (!tokens.tryTake()) await tokens.take(stop);
      // A probe tripped while this item waited for its token: it waits again and takes a fresh
      // one, and the credits left from before are dropped, so no item starts while the run is
      // throttled and no stale batch bursts out when it resumes.
      while (ctx.guard.state().throttled) {
        tokens.drop();
        await ctx.guard.waitUntilHealthy(stop);
        await tokens.take(stop);
      }
    } catch {
      return undefined;
    }
    if (stop.aborted || ctx.control.paused) return undefined;
    // Aborted by the chunk's stop or the item's timeout.
    const abort = new Attempt();
    let giveUp: ((e: unknown) => void) | undefined;
    let idle: (() => Promise<void>) | undefined;
    // A stop (abort, SIGTERM, a lost lease) does not cut an effect short: the handler is told
    // (its signal) and the gate refuses effect calls made after it, but a call already under way
    // completes — applied and its claim confirmed — before the attempt is dropped and its chunk
    // given back. Dropped while under way, it could land after the run closed its dedupe store,
    // its claim unconfirmed, and be applied again on resume. A handler busy outside any effect
    // call (or stuck) is dropped at once; a stuck effect, at the item's timeout.
    const onStop = (): void => {
      abort.abort(stop.reason);
      void (idle?.() ?? Promise.resolve()).then(() => giveUp?.(stop.reason));
    };
    stoppers.add(onStop);
    const timer = setTimeout(() => {
      const e = new Error(`timed out after ${timeoutMs} ms`);
      abort.abort(e);
      giveUp?.(e);
    }, timeoutMs);
    const attemptEffects = ctx.gate.forItem(item, attempt, abort, lease);
    const { effects, calls } = attemptEffects;
    idle = attemptEffects.idle;
    lastCalls = calls;
    try {
      const running = ctx.handler(item.row, {
        effects, log: ctx.observer.log, stage: ctx.stage, runId: ctx.runId, attempt, itemKey: item.key,
        get signal() { return abort.signal; },
      });
      await new Promise<void>((resolve, reject) => {
        giveUp = reject;
        running.then(() => resolve(), reject);
      });
      if (ctx.gate.failedClosed) return undefined;
      return { item, ok: true, attempts: attempt, calls };
    } catch (e) {
      if (ctx.gate.failedClosed || e instanceof DedupeUnavailableError) return undefined;
      if (stop.aborted) return undefined;
      lastError = e instanceof Error ? e.message : String(e);
      if (attempt <= retries.max) await sleep(retries.backoffMs * 2 ** (attempt - 1), stop).catch(() => undefined);
    } finally {
      clearTimeout(timer);
      stoppers.delete(onStop);
    }
  }
  if (stop.aborted) return undefined;
  return { item, ok: false, attempts: retries.max + 1, calls: lastCalls, error: lastError };
}

/**
 * Items per rate-token batch: about 50 ms of the rate, at least the concurrency, at most 100.
 * The shared bucket is asked once per batch, so a burst is bounded by its capacity plus one batch.
 */
export function tokenBatch(plan: Plan): number {
  return Math.max(1, Math.min(100, Math.max(plan.rate.concurrency, Math.floor(plan.rate.itemsPerSecond / 20))));
}

export function orderingOf(plan: Plan): NonNullable<Plan['selection']>['ordering'] {
  return plan.selection?.ordering ?? plan.source?.ordering ?? 'none';
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}

/** Takes rate tokens from the shared limiter a batch at a time and hands them out one per item attempt. */
class TokenTap {
  private credits = 0;
  private pending: Promise<void> | undefined;
  constructor(private readonly limiter: RateLimiter, private readonly batch: number, private remaining: number) {}

  /** Takes a credit in hand, if there is one, without waiting. */
  tryTake(): boolean {
    if (this.credits <= 0) return false;
    this.credits--;
    this.remaining = Math.max(1, this.remaining - 1);
    return true;
  }

  async take(signal: AbortSignal): Promise<void> {
    while (this.credits <= 0) {
      if (!this.pending) {
        const n = Math.max(1, Math.min(this.batch, this.remaining));
        this.pending = this.limiter.acquire(n, signal).then(
          () => { this.credits += n; this.pending = undefined; },
          (e) => { this.pending = undefined; throw e; },
        );
      }
      await this.pending;
    }
    this.credits--;
    this.remaining = Math.max(1, this.remaining - 1);
  }

  /** Forgets the credits in hand (granted before a throttle): the next item reserves afresh. */
  drop(): void {
    if (this.credits > 0) this.credits = 0;
  }
}
