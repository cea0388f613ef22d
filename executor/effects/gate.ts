/**
 * The effects gate: every `ctx.effects.<name>(args)` call of a handler goes through here, and
 * the plan's side-effect table decides what happens.
 *
 *   suppress  never applied; recorded in the ledger as `suppressed`
 *   replay    applied (idempotent by construction)
 *   dedupe    the key is claimed in the shared store first; applied only on a fresh claim;
 *             a key held by live or another run -> `skipped-dup`; the store unreachable -> the
 *             call fails closed (nothing applied) and the run stops
 *
 * A claim this run left unconfirmed (a crash between apply and confirm) is judged by the
 * effect's `delivery`: `at-least-once` applies it again, `at-most-once` never does (`claimed`).
 *
 * sql effects on the checkpoint connection are *deferred*: the gate records them and the chunk
 * commit applies them in the same transaction as the checkpoint and the ledger (see
 * stages/commit.ts), so a crash can never leave them applied without their checkpoint.
 * Everything else is applied when called. In dry-run nothing is applied: every call is captured.
 */
import type { Effect, Plan } from '../../schema/manifest.types.js';
import { parseTemplate, renderTemplate, type Template } from '../../compiler/template.js';
import type { EffectCall, EffectOutcome } from '../handler-api.js';
import type { Fence } from '../modules.js';
import type { Item } from '../source/types.js';
import type { LedgerEntry } from '../store/store.js';
import type { Applier } from './appliers.js';
import { EffectArgumentError } from './appliers.js';
import { DedupeUnavailableError, type DedupeStore } from './dedupe.js';
import { failpoint } from '../failpoints.js';

export type Stage = 'dry-run' | 'canary' | 'full';

/** One effect call of one item attempt, as it will be ledgered. */
export interface RecordedCall {
  entry: LedgerEntry;
  /**
   * Deferred sql effect: claimed (when deduped) and applied by the chunk commit, inside its
   * transaction; the commit sets the entry's final status.
   */
  deferred?: { applier: Applier; args: Record<string, unknown> };
  /** An at-least-once effect applied again for a claim a crash left unconfirmed. */
  redelivered?: boolean;
}

/** What the dry-run learns from captured calls. */
export interface CaptureSink {
  capture(effect: Effect, item: Item, args: Record<string, unknown>, dedupeKey: string | undefined): Promise<void>;
}

export class ItemAbortedError extends Error {
  constructor(effect: string) {
    super(`effect ${effect} called after the item was aborted (timeout or stop)`);
  }
}

/**
 * The worker can no longer vouch for its lease on the item's chunk (its process was frozen past
 * the lease TTL — SIGSTOP, a VM or GC pause): another worker may own the item now, so no
 * immediate effect is claimed or started. Fencing stops the stale commit; this stops the stale
 * effects, which no commit can take back.
 */
export class LeaseExpiredError extends Error {
  constructor(effect: string) {
    super(`effect ${effect} not started: the lease on the item's chunk may have expired`);
  }
}

/**
 * An item attempt's abort state as the gate sees it: a flag checked on every call, and the
 * AbortSignal handed to effects applied at once (the worker makes it only when asked, since an
 * AbortController per item costs more than the rest of an in-memory item together).
 */
export interface AttemptSignal {
  readonly aborted: boolean;
  readonly signal: AbortSignal;
}

function attemptSignal(s: AbortSignal | AttemptSignal): AttemptSignal {
  return s instanceof AbortSignal ? { get aborted() { return s.aborted; }, signal: s } : s;
}

/**
 * The lease an item attempt runs under: asked before every claim and apply, and handed to
 * effects applied at once as a fencing token (the chunk and its lease generation), so a target
 * can refuse a call from a worker whose lease was taken over (docs/reliability.md, known limits).
 */
export interface AttemptLease {
  held(): boolean;
  readonly fence: Fence;
}

export interface GateOptions {
  plan: Plan;
  runId: string;
  stage: Stage;
  appliers: Map<string, Applier>;
  dedupe: DedupeStore | undefined;
  /** sql effects on this connection are deferred to the chunk commit (checkpoint.connection). */
  transactionalConnection: string | null;
  /** Dry-run only. */
  capture?: CaptureSink;
  /** Counts each gate decision (metrics). */
  onOutcome?: (effect: Effect, status: LedgerEntry['status'] | 'captured') => void;
}

export class EffectsGate {
  private readonly keyTemplates = new Map<string, Template>();
  private readonly effects = new Map<string, Effect>();
  /** Set when the dedupe store failed: the worker must stop the run. */
  failedClosed: DedupeUnavailableError | undefined;

  constructor(private readonly opts: GateOptions) {
    for (const e of opts.plan.sideEffects) {
      this.effects.set(e.name, e);
      if (e.dedupeKey) this.keyTemplates.set(e.name, parseTemplate(e.dedupeKey));
    }
  }

  private deferred(e: Effect): boolean {
    return e.kind === 'sql' && this.opts.transactionalConnection !== null && e.connection === this.opts.transactionalConnection;
  }

  /**
   * The `ctx.effects` object for one attempt of one item, the calls it records, and `idle()`:
   * resolves once no effect call of the attempt is under way (calls made after `signal` aborts
   * are refused, so after an abort it resolves when the calls already started have finished).
   */
  forItem(item: Item, attempt: number, abortSignal: AbortSignal | AttemptSignal, lease?: AttemptLease): { effects: Record<string, EffectCall>; calls: RecordedCall[]; idle: () => Promise<void> } {
    const signal = attemptSignal(abortSignal);
    const calls: RecordedCall[] = [];
    const sideEffects = this.opts.plan.sideEffects;
    const counters: number[] = new Array<number>(sideEffects.length).fill(0);
    const effects: Record<string, EffectCall> = Object.create(null);
    let inFlight = 0;
    let waiters: Array<() => void> = [];
    const done = (): void => {
      if (--inFlight === 0 && waiters.length) {
        const w = waiters;
        waiters = [];
        for (const r of w) r();
      }
    };
    sideEffects.forEach((e, i) => {
      effects[e.name] = async (args: Record<string, unknown>): Promise<EffectOutcome> => {
        if (signal.aborted) throw new ItemAbortedError(e.name);
        if (args === null || typeof args !== 'object' || Array.isArray(args)) {
          throw new TypeError(`ctx.effects.${e.name}(args) expects an object of arguments`);
        }
        const callIndex = counters[i]!++;
        inFlight++;
        try {
          return await this.call(e, item, { ...args }, callIndex, attempt, signal, calls, lease);
        } finally {
          done();
        }
      };
    });
    const idle = (): Promise<void> => (inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => waiters.push(r)));
    return { effects: Object.freeze(effects), calls, idle };
  }

  private async call(e: Effect, item: Item, args: Record<string, unknown>, callIndex: number, attempt: number, signal: AttemptSignal, calls: RecordedCall[], lease?: AttemptLease): Promise<EffectOutcome> {
    // Checked right before a claim and right before an apply: a frozen process wakes up in the
    // middle of a call, and must not go on to apply what its lease no longer covers.
    const assertLease = (): void => {
      if (lease && !lease.held()) throw new LeaseExpiredError(e.name);
    };
    const missing = e.args.filter((a) => args[a] === undefined);
    if (missing.length && e.kind !== 'sql') throw new EffectArgumentError(e.name, missing);
    const dedupeKey = e.backfill === 'dedupe' ? renderTemplate(this.keyTemplates.get(e.name)!, args) : undefined;
    const entry: LedgerEntry = {
      item_key: item.key,
      effect: e.name,
      call_index: callIndex,
      policy: e.backfill,
      status: 'applied',
      dedupe_key: dedupeKey ?? null,
      payload: args,
      before: null,
      error: null,
    };
    const record = (status: LedgerEntry['status'], extra: Partial<RecordedCall> = {}): RecordedCall => {
      entry.status = status;
      const rc: RecordedCall = { entry, ...extra };
      calls.push(rc);
      this.opts.onOutcome?.(e, status);
      return rc;
    };

    if (this.opts.stage === 'dry-run') {
      if (missing.length) throw new EffectArgumentError(e.name, missing);
      await this.opts.capture?.capture(e, item, args, dedupeKey);
      this.opts.onOutcome?.(e, 'captured');
      return { status: 'captured', ...(dedupeKey ? { dedupeKey } : {}) };
    }

    if (e.backfill === 'suppress') {
      record('suppressed');
      return { status: 'suppressed' };
    }

    const applier = this.opts.appliers.get(e.name)!;
    if (this.deferred(e)) {
      record('applied', { deferred: { applier, args } });
      return { status: 'deferred', ...(dedupeKey ? { dedupeKey } : {}) };
    }

    const ctx = {
      signal: signal.signal,
      runId: this.opts.runId,
      itemKey: item.key,
      dedupeKey,
      idempotencyKey: dedupeKey ?? `reprise:${this.opts.runId}:${item.key}:${e.name}:${callIndex}`,
      ...(lease ? { fence: lease.fence } : {}),
    };

    if (e.backfill === 'dedupe') {
      const store = this.opts.dedupe!;
      let claim;
      assertLease();
      try {
        claim = await store.claim(dedupeKey!, this.opts.runId, item.key);
      } catch (err) {
        if (err instanceof DedupeUnavailableError) this.failedClosed ??= err;
        throw err;
      }
      if (claim.outcome === 'taken') {
        record('skipped-dup');
        return { status: 'skipped-dup', dedupeKey };
      }
      if (claim.outcome === 'own') {
        if (claim.state === 'applied') {
          // Applied and confirmed by an earlier attempt whose chunk did not commit.
          record('applied');
          return { status: 'applied', dedupeKey };
        }
        if (e.delivery === 'at-most-once') {
          record('claimed');
          return { status: 'claimed', dedupeKey };
        }
      }
      assertLease();
      const rc = record('applied', claim.outcome === 'own' ? { redelivered: true } : {});
      try {
        if (applier.needsBefore && applier.readBefore) entry.before = await applier.readBefore(args);
        const result = await applier.apply(args, ctx);
        failpoint('after-effect');
        await this.confirm(store, dedupeKey!);
        return { status: 'applied', dedupeKey, result };
      } catch (err) {
        rc.entry.status = 'failed';
        rc.entry.error = (err as Error).message;
        throw err;
      }
    }

    // replay
    assertLease();
    const rc = record('applied');
    try {
      if (applier.needsBefore && applier.readBefore) entry.before = await applier.readBefore(args);
      const result = await applier.apply(args, ctx);
      failpoint('after-effect');
      return { status: 'applied', result };
    } catch (err) {
      rc.entry.status = 'failed';
      rc.entry.error = (err as Error).message;
      throw err;
    }
  }

  private async confirm(store: DedupeStore, key: string): Promise<void> {
    try {
      await store.confirm(key, this.opts.runId);
    } catch (err) {
      if (err instanceof DedupeUnavailableError) this.failedClosed ??= err;
      throw err;
    }
  }
}
