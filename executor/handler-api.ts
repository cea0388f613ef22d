/**
 * The contract between a plan's handler and the executor. A handler is a module whose default
 * export is `defineHandler(async (item, ctx) => …)`; it may cause side effects only through
 * `ctx.effects.<name>(args)`, which exists for exactly the effects the plan declares. Every call
 * goes through the effects gate, which applies, suppresses, dedupes or (in dry-run) captures it.
 */

/** What the gate did with one effect call. */
export type EffectStatus =
  /** Applied to its target (replay, or dedupe with a fresh claim). */
  | 'applied'
  /** Not applied: the plan's policy is `suppress`; recorded in the ledger. */
  | 'suppressed'
  /** Not applied: the dedupe key was already claimed by live or an earlier run. */
  | 'skipped-dup'
  /** Not applied: this run claimed the key before a crash and `delivery: at-most-once` forbids a second try. */
  | 'claimed'
  /** Dry-run: captured, nothing applied. */
  | 'captured'
  /**
   * A sql effect on the checkpoint connection: recorded now, applied in the chunk's commit
   * transaction together with its checkpoint (its dedupe claim too). The ledger holds the outcome.
   */
  | 'deferred';

export interface EffectOutcome {
  status: EffectStatus;
  /** The rendered dedupe key, for `dedupe` effects. */
  dedupeKey?: string;
  /** What the target returned when the effect was applied immediately (module effects' return value, HTTP status). */
  result?: unknown;
}

/** One declared effect: call it with its arguments (a sql statement's :parameters, an HTTP body, stream fields). */
export type EffectCall = (args: Record<string, unknown>) => Promise<EffectOutcome>;

export interface HandlerLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface HandlerContext<Effects extends string = string> {
  /** Exactly the plan's declared effects; calling anything else is impossible. */
  effects: Readonly<Record<Effects, EffectCall>>;
  log: HandlerLogger;
  /** Aborted when the run is aborted (kill switch, SIGTERM) or the item times out. */
  signal: AbortSignal;
  stage: 'dry-run' | 'canary' | 'full';
  runId: string;
  /** 1 for the first attempt at this item, 2 for its first retry, … */
  attempt: number;
  /** The item's key as the ledger records it. */
  itemKey: string;
}

export type Handler<Item = Record<string, unknown>, Effects extends string = string> = (
  item: Item,
  ctx: HandlerContext<Effects>,
) => Promise<void>;

/** Marks a handler's default export (identity at run time; gives the handler its types). */
export function defineHandler<Item = Record<string, unknown>, Effects extends string = string>(
  fn: Handler<Item, Effects>,
): Handler<Item, Effects> {
  if (typeof fn !== 'function') throw new TypeError('defineHandler expects an async function (item, ctx) => …');
  return fn;
}
