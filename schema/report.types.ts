/* eslint-disable */
/**
 * generated — do not edit.
 * Source: schema/report.schema.json. Regenerate with `npm run gen:types`; a test fails when this file is stale.
 */

/**
 * The stage this report covers.
 */
export type ReportStage = 'dry-run' | 'canary' | 'full' | 'reverse';
/**
 * Identity of a target server.
 */
export type Fingerprint =
  | {
      /**
       * A PostgreSQL server.
       */
      kind: 'postgres';
      /**
       * `system_identifier` from pg_control_system(), as a decimal string.
       */
      systemIdentifier: string;
      /**
       * The database name (current_database()).
       */
      database: string;
    }
  | {
      /**
       * A Redis server.
       */
      kind: 'redis';
      /**
       * `run_id` from INFO server.
       */
      runId: string;
    };

/**
 * What one stage of a run did: written as `<run>.<stage>.report.json` (with `.md` and `.html` renderings) and stored in the state store with its hash. The full-stage approval binds the canary report's hash; the canary approval binds the dry-run report's hash.
 */
export interface Report {
  /**
   * Document kind and version.
   */
  kind: 'reprise/report@1';
  /**
   * Run id: `<plan>.r<revision>.<first 8 hex of the manifest hash>`.
   */
  runId: string;
  /**
   * Plan name.
   */
  plan: string;
  /**
   * Plan revision.
   */
  revision: number;
  /**
   * Hash of the manifest the stage ran.
   */
  manifest: string;
  stage: ReportStage;
  /**
   * How the stage ended: `completed` (every selected item processed), `aborted` (operator, signal, error budget or stall-abort; resumable), `paused` (stopped by a pause; resumable), `failed` (an internal or store error stopped it), `validation-failed` (canary validation queries did not all pass).
   */
  outcome: 'completed' | 'aborted' | 'paused' | 'failed' | 'validation-failed';
  /**
   * When the stage started (ISO 8601 UTC).
   */
  startedAt: string;
  /**
   * When the stage stopped (ISO 8601 UTC).
   */
  finishedAt: string;
  /**
   * Wall-clock duration of the stage in milliseconds.
   */
  durationMs: number;
  /**
   * The count guard: the selection counted in a read-only snapshot before anything ran, and the plan's bounds. Null for a stage without a selection count (reverse).
   */
  count: CountGuard | null;
  counts: ReportCounts;
  /**
   * One entry per effect the plan declares, in plan order, with what the effects gate did with its calls during this stage.
   */
  effects: EffectReport[];
  errors: ReportErrors;
  throttle: ReportThrottle;
  /**
   * Items finished per time bucket, for the throughput chart. Buckets are contiguous and of equal width, the first starts at t = 0; the width is the second bucket's `t` (or the whole duration when there is one bucket).
   */
  throughput: ThroughputBucket[];
  /**
   * Results of the plan's canary validation queries (empty for other stages).
   */
  validations: ValidationResult[];
  /**
   * Identity of every target server, by connection name, so an approval earned on one environment cannot run against another.
   */
  fingerprints: {
    [k: string]: Fingerprint | undefined;
  };
  /**
   * How the canary batch was chosen (canary stage), else null.
   */
  canary: CanarySummary | null;
  /**
   * Dry-run only: for sql effects with a `preview` query, the target rows before and after the effect (computed without committing) and their unified diff. Bounded to a sample of items.
   */
  preview: EffectPreview[];
  /**
   * Why the stage stopped early, or null when it was not aborted.
   */
  abort: AbortInfo | null;
  /**
   * Number of worker processes that took part in the stage.
   */
  workers: number;
  /**
   * `sha256:` + hex sha256 of the RFC 8785 canonical JSON of every other field of the report.
   */
  hash: string;
}
/**
 * The count guard result.
 */
export interface CountGuard {
  /**
   * Number of items the selection counted.
   */
  value: number;
  /**
   * The plan's bounds (inclusive) the count had to fall within.
   */
  expect: {
    /**
     * Fewest items expected.
     */
    min: number;
    /**
     * Most items expected.
     */
    max: number;
  };
  /**
   * When the count was taken (ISO 8601 UTC).
   */
  countedAt: string;
}
/**
 * Item counts for this stage.
 */
export interface ReportCounts {
  /**
   * Items this stage set out to process (the canary size for canary, what was left after the canary for full).
   */
  selected: number;
  /**
   * Items that finished, successfully or not (succeeded + failed).
   */
  processed: number;
  /**
   * Items whose handler finished without error and whose chunk committed.
   */
  succeeded: number;
  /**
   * Items that failed after all retries.
   */
  failed: number;
  /**
   * Items the source yielded outside the plan's window (JSONL sources), skipped without processing.
   */
  skippedOutsideWindow: number;
  /**
   * Selected items not yet processed when the stage stopped (0 when it completed).
   */
  remaining: number;
}
/**
 * One declared effect and what happened to its calls.
 */
export interface EffectReport {
  /**
   * Effect name as declared in the plan.
   */
  name: string;
  /**
   * Effect kind.
   */
  kind: 'sql' | 'http' | 'redis-stream' | 'module';
  /**
   * Backfill policy: `replay`, `suppress` or `dedupe`.
   */
  policy: 'replay' | 'suppress' | 'dedupe';
  /**
   * Delivery for a claim left unconfirmed by a crash (dedupe effects), else null.
   */
  delivery: ('at-least-once' | 'at-most-once') | null;
  /**
   * What the live path does with the same effect (documentation).
   */
  live: 'apply' | 'dedupe' | 'none';
  counts: EffectCounts;
}
/**
 * Effect calls by ledger status.
 */
export interface EffectCounts {
  /**
   * Applied to the target (replay, or dedupe with a fresh claim).
   */
  applied: number;
  /**
   * Not applied because the policy is `suppress`; recorded in the ledger.
   */
  suppressed: number;
  /**
   * Not applied: the dedupe key was already claimed by live or an earlier run.
   */
  'skipped-dup': number;
  /**
   * Claimed but left unconfirmed (a crash with `delivery: at-most-once`); not applied again.
   */
  claimed: number;
  /**
   * The call threw after its retries.
   */
  failed: number;
  /**
   * Dry-run: captured, nothing applied.
   */
  captured: number;
  /**
   * Compensated by `reprise reverse`.
   */
  reversed: number;
}
/**
 * Failed items: the total and a bounded sample (the first and the most recent failures).
 */
export interface ReportErrors {
  /**
   * Number of failed items in this stage.
   */
  total: number;
  /**
   * A bounded sample of failures.
   */
  samples: ErrorSample[];
}
/**
 * One failed item attempt kept as an example.
 */
export interface ErrorSample {
  /**
   * The item's key as the ledger records it.
   */
  itemKey: string;
  /**
   * Attempt number (1 for the first try).
   */
  attempt: number;
  /**
   * The error message (truncated to a bounded length).
   */
  message: string;
  /**
   * When the attempt failed (ISO 8601 UTC).
   */
  at: string;
}
/**
 * Time spent throttled by protect probes.
 */
export interface ReportThrottle {
  /**
   * Total time throttled, in milliseconds.
   */
  throttledMs: number;
  /**
   * Throttle episodes in order (bounded; the most recent are kept).
   */
  episodes: ThrottleEpisode[];
}
/**
 * A period during which a protect probe was over its limit and the run was throttled to zero.
 */
export interface ThrottleEpisode {
  /**
   * Name of the protect probe.
   */
  probe: string;
  /**
   * Highest value the probe read during the episode.
   */
  value: number;
  /**
   * The probe's limit.
   */
  max: number;
  /**
   * When throttling started (ISO 8601 UTC).
   */
  from: string;
  /**
   * When throttling ended (ISO 8601 UTC), or null when the stage stopped while throttled.
   */
  to: string | null;
}
/**
 * Items finished in one time bucket.
 */
export interface ThroughputBucket {
  /**
   * Start of the bucket, in seconds since the stage started.
   */
  t: number;
  /**
   * Items finished in the bucket.
   */
  items: number;
}
/**
 * One canary validation query and its verdict.
 */
export interface ValidationResult {
  /**
   * Validation name as declared in the plan.
   */
  name: string;
  /**
   * Whether the query returned a true `ok`.
   */
  ok: boolean;
  /**
   * What the query returned or why it failed, or null.
   */
  detail: string | null;
}
/**
 * The canary batch.
 */
export interface CanarySummary {
  /**
   * Items in the canary batch.
   */
  size: number;
  /**
   * `first` keys in key order, or a `sample` seeded by the manifest hash.
   */
  pick: 'first' | 'sample';
  /**
   * The first few keys of the batch.
   */
  keys: string[];
}
/**
 * What a sql effect would change for one item (dry-run).
 */
export interface EffectPreview {
  /**
   * Effect name.
   */
  effect: string;
  /**
   * The item's key.
   */
  itemKey: string;
  /**
   * Arguments the handler supplied to the effect.
   */
  args: {
    [k: string]: unknown | undefined;
  };
  /**
   * Rows the preview query returned before the effect, or null when they could not be read.
   */
  before: Row[] | null;
  /**
   * Rows the preview query returned after the effect (inside a rolled-back transaction; see `method`), or null when they could not be read or estimated.
   */
  after: Row[] | null;
  /**
   * Unified diff of the pretty JSON of before and after; empty when nothing would change.
   */
  diff: string;
  /**
   * How `after` was found: `executed` — the statement ran inside a transaction that was rolled back, and the preview query read its result; `estimated` — the target refused the statement (a read-only replica, or the statement failed: see `note`), so the effect's arguments were laid over the current row's columns of the same names. Absent in reports of earlier versions.
   */
  method?: 'executed' | 'estimated';
  /**
   * Why the preview is estimated or unreadable (the target's error), when it is.
   */
  note?: string;
}
/**
 * A row as the preview query returned it (column -> value).
 */
export interface Row {
  [k: string]: unknown | undefined;
}
/**
 * Why the stage stopped early.
 */
export interface AbortInfo {
  /**
   * Short machine-readable reason, e.g. `operator` (reprise abort), `signal` (SIGINT/SIGTERM), `error-rate`, `consecutive-errors`, `stall`, `pause`, `store-unreachable`.
   */
  reason: string;
  /**
   * One human-readable sentence with the numbers behind the reason.
   */
  detail: string;
}
