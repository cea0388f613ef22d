/* eslint-disable */
/**
 * generated — do not edit.
 * Source: schema/plan.schema.json. Regenerate with `npm run gen:types`; a test fails when this file is stale.
 */

/**
 * `none` (any order, fastest), `key` (strictly in key order, one item at a time), or `{ partitionBy: column }` (in key order within each partition, partitions in parallel). Default none.
 */
export type Ordering =
  | ('none' | 'key')
  | {
      /**
       * Column (or event field) whose items must be processed in order.
       */
      partitionBy: string;
    };
/**
 * One declared side effect.
 */
export type Effect = SqlEffect | HttpEffect | RedisStreamEffect | ModuleEffect;
/**
 * A SQL statement declared in the plan; the handler supplies its :named parameters.
 */
export type SqlEffect = EffectCommon & {
  /**
   * Effect kind.
   */
  kind: 'sql';
  /**
   * Connection (PostgreSQL) the statement runs on.
   */
  connection: string;
  /**
   * The statement, with :named bound parameters.
   */
  statement: string;
  /**
   * Query returning the rows the statement changes (same parameters); used for dry-run diffs (the dry-run runs the statement for its first 10 calls inside a transaction it rolls back, reading this query before and after) and for :before.<column> in reverse.
   */
  preview?: string;
  /**
   * Whether applying it twice equals applying it once. `false` is only allowed on checkpoint.connection. Default true.
   */
  idempotent?: boolean;
  /**
   * Compensating statement; may use the effect's parameters and :before.<column> from the preview row read before applying.
   */
  reverse?: {
    /**
     * The compensating statement.
     */
    statement: string;
  };
};
/**
 * An HTTP request; method and URL are declared, the handler supplies the JSON body. Each request carries `Idempotency-Key` (the dedupe key, else one per call), `X-Reprise-Run` and `X-Reprise-Fence: <chunk>.<generation>`, the lease it is made under, for targets that fence (docs/reliability.md).
 */
export type HttpEffect = EffectCommon & {
  /**
   * Effect kind.
   */
  kind: 'http';
  /**
   * HTTP method. Default POST.
   */
  method?: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /**
   * Target URL; may contain {field} placeholders over the arguments.
   */
  url: string | EnvRef;
  /**
   * Extra request headers (values may be {field} templates).
   */
  headers?: {
    [k: string]: string | undefined;
  };
  /**
   * Request timeout. Default 10000.
   */
  timeoutMs?: number;
  /**
   * Compensating request.
   */
  reverse?: {
    /**
     * HTTP method. Default POST.
     */
    method?: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
    /**
     * URL of the compensating request ({field} placeholders allowed).
     */
    url: string | EnvRef;
    /**
     * JSON body template; string values may use {field} placeholders. Default: the original arguments.
     */
    body?: {};
  };
};
/**
 * An XADD to a Redis stream; the handler supplies the fields.
 */
export type RedisStreamEffect = EffectCommon & {
  /**
   * Effect kind.
   */
  kind: 'redis-stream';
  /**
   * Connection (Redis) of the stream.
   */
  connection: string;
  /**
   * Stream key.
   */
  stream: string;
  /**
   * Approximate MAXLEN trim applied with each XADD.
   */
  maxLen?: number;
  /**
   * Compensating event published to the same stream.
   */
  reverse?: {
    /**
     * Fields of the compensating event; values may use {field} placeholders.
     */
    fields: {
      [k: string]: string | undefined;
    };
  };
};
/**
 * A function exported by a module of the plan's; hashed like the handler. Called as (args, ctx) with `ctx.signal`, `runId`, `itemKey`, `dedupeKey` and `fence` ({ chunk, generation }: the lease the call is made under, for targets that fence).
 */
export type ModuleEffect = EffectCommon & {
  /**
   * Effect kind.
   */
  kind: 'module';
  /**
   * Module path, relative to the plan file. Its sha256 is pinned in the manifest.
   */
  module: string;
  /**
   * Name of the exported async function (args, ctx) => result.
   */
  export: string;
  /**
   * Compensating function exported by the same module.
   */
  reverse?: {
    /**
     * Name of the exported compensating function (args, ctx) => void.
     */
    export: string;
  };
};

/**
 * A reprise plan (v1): one reviewed, versioned backfill or event replay. Every field is documented here; unknown keys are errors.
 */
export interface PlanFile {
  /**
   * Plan language version. Always 1.
   */
  reprise: 1;
  /**
   * Plan name: lowercase letters, digits and dashes. Names the manifest, the runbook and the run id (<name>.r<revision>.<hash8>).
   */
  name: string;
  /**
   * Revision number. Any change to a plan that was approved needs a new revision.
   */
  revision: number;
  /**
   * Team that owns this run and answers for it.
   */
  owner: string;
  /**
   * Principal who wrote the plan (as it appears in the trust file). The author may not approve their own plan.
   */
  author: string;
  /**
   * Why this run exists: the bug or outage, and what the run repairs. Printed at the top of the runbook.
   */
  reason: string;
  /**
   * Incident or change ticket this run belongs to.
   */
  ticket?: string;
  /**
   * Named connections, each read from an environment variable at run time. A plan never contains a secret.
   */
  connections: {
    [k: string]: EnvRef | undefined;
  };
  /**
   * The records to reprocess: a SQL query over a time window, enumerated by a unique, totally ordered key. Use either `selection` or `source`.
   */
  selection?: {
    /**
     * Connection (PostgreSQL) the selection query runs on.
     */
    connection: string;
    /**
     * SELECT returning one row per item. Must use the bound parameters :window_start and :window_end; reprise adds the key range and ordering around it.
     */
    query: string;
    /**
     * Column (or list of columns) that is unique and totally ordered within the selection; used for keyset pagination and chunk boundaries.
     */
    key: string | [string, ...string[]];
    window: Window;
    expect: Expect;
    ordering?: Ordering;
  };
  /**
   * Alternative to `selection` for missed events: a JSONL file (a dead-letter dump or archive export), one JSON object per line.
   */
  source?: {
    /**
     * Path of the JSONL file, relative to the plan file. Its sha256 is pinned in the manifest.
     */
    jsonl: string;
    /**
     * Field of each event that identifies it uniquely (ledger and dedupe use it).
     */
    key: string;
    /**
     * Field holding the event's time (ISO 8601); required when `window` is set. Events outside the window are skipped and counted.
     */
    timestamp?: string;
    window?: Window;
    expect: Expect;
    ordering?: Ordering;
  };
  /**
   * How each item is processed.
   */
  processing: {
    /**
     * Handler module, relative to the plan file (TypeScript or JavaScript; default export `defineHandler(...)`). Its sha256 is pinned in the manifest.
     */
    handler: string;
    /**
     * Time allowed for one item, effects included. Default 30000.
     */
    timeoutMs?: number;
    /**
     * Retries of an item whose handler or effect throws.
     */
    retries?: {
      /**
       * Retries after the first attempt. Default 2.
       */
      max?: number;
      /**
       * Delay before the first retry, doubled at each further one. Default 200.
       */
      backoffMs?: number;
    };
  };
  /**
   * Every side effect the handler may cause, with its policy during the backfill. The handler can call exactly these, as ctx.effects.<name>(args).
   */
  sideEffects: Effect[];
  /**
   * The dedupe store shared with live consumers (reprise/live). Required when an effect has `backfill: dedupe`.
   */
  dedupe?: {
    /**
     * Where claims are kept: `redis` (SET NX) or `postgres` (unique insert in reprise.dedupe_keys).
     */
    store: 'redis' | 'postgres';
    /**
     * Connection of the dedupe store.
     */
    connection: string;
    /**
     * Key namespace, shared with the live consumers that claim the same keys. Default: the plan name.
     */
    namespace?: string;
    /**
     * How long a claim is kept. Default 30d.
     */
    ttl?: string;
  };
  /**
   * Clean cutoff between backfill and live: the live path handles everything from `cutoff` on, so the backfill window must end at or before it.
   */
  liveBoundary?: {
    /**
     * Instant from which the live path owns every item.
     */
    cutoff: string;
    /**
     * Query proving the live path has started at or before the cutoff; checked in the go/no-go preflight.
     */
    watermark?: {
      /**
       * Connection (PostgreSQL) the watermark query runs on.
       */
      connection: string;
      /**
       * Query returning one row with a `watermark` timestamp column.
       */
      query: string;
    };
  };
  /**
   * How fast the run may go, and what protects live traffic.
   */
  rate?: {
    /**
     * Rate cap shared by every worker of the run (token bucket). Default 100.
     */
    itemsPerSecond?: number;
    /**
     * What the same path serves for live traffic now, and its ceiling; the runbook prints the headroom left.
     */
    live?: {
      /**
       * Live traffic on the same path, items per second.
       */
      itemsPerSecond: number;
      /**
       * Items per second the path can serve in total.
       */
      capacity: number;
    };
    /**
     * Items in flight at once, per worker. Default 1.
     */
    concurrency?: number;
    /**
     * Items per chunk (the unit of leasing and of checkpoints). Default 500.
     */
    chunkSize?: number;
    /**
     * Connections the executor opens to target databases, in total per worker process (its own pools, never live's). Must be at least concurrency. Default: concurrency + 1.
     */
    maxConnections?: number;
    /**
     * How often the protect probes run. Default 5s.
     */
    checkEvery?: string;
    /**
     * Live-health probes: any over its max throttles the run to zero until all are healthy again.
     */
    protect?: Probe[];
  };
  /**
   * The canary batch run for real before the full run, and the queries that validate it.
   */
  canary?: {
    /**
     * Items in the canary batch; must be below expect.min. Default 100.
     */
    size?: number;
    /**
     * `first` (in key order) or `sample` (uniform, seeded by the manifest hash). Default first.
     */
    pick?: 'first' | 'sample';
    /**
     * Queries run after the canary batch; each returns one row with a boolean `ok`.
     */
    validate?: {
      /**
       * Name of the check, shown in the canary report.
       */
      name: string;
      /**
       * Connection (PostgreSQL) the query runs on.
       */
      connection: string;
      /**
       * Query returning one row with a boolean `ok` column.
       */
      query: string;
    }[];
  };
  /**
   * When the run stops itself.
   */
  abort?: {
    /**
     * Abort when the share of failed items over the last `errorWindow` items exceeds this. Default 0.01.
     */
    maxErrorRate?: number;
    /**
     * Items in the sliding window for maxErrorRate. Default 1000.
     */
    errorWindow?: number;
    /**
     * Abort after this many failed items in a row. Default 20.
     */
    maxConsecutiveErrors?: number;
    /**
     * No committed progress for this long is a stall. Default 10m.
     */
    stallAfter?: string;
    /**
     * What a stall does besides alerting: `alert` only, `pause` the run, or `abort` it. Default alert.
     */
    onStall?: 'alert' | 'pause' | 'abort';
    /**
     * Where alerts go.
     */
    alert?: {
      /**
       * URL receiving a JSON POST for each alert.
       */
      webhook: string | EnvRef;
    };
  };
  /**
   * Where the run's state tables live (schema `reprise`). Setting `connection` puts them in that database, so sql effects on it commit in the same transaction as the checkpoint; omit to use the --state store.
   */
  checkpoint?: {
    /**
     * Connection (PostgreSQL) holding the state tables.
     */
    connection?: string;
  };
  /**
   * Distinct approvers required per stage (never below the organisation policy).
   */
  approvals?: {
    canary?: ApprovalRule;
    full?: ApprovalRule1;
    reverse?: ApprovalRule2;
  };
}
/**
 * A value read from an environment variable at run time.
 */
export interface EnvRef {
  /**
   * Name of the environment variable.
   */
  env: string;
}
/**
 * Half-open time window [start, end) the run covers, bound to :window_start and :window_end.
 */
export interface Window {
  /**
   * Inclusive start (ISO 8601 with a zone).
   */
  start: string;
  /**
   * Exclusive end (ISO 8601 with a zone).
   */
  end: string;
}
/**
 * Count guard: the selection is counted before anything runs, and the run refuses when the count is outside [min, max].
 */
export interface Expect {
  /**
   * Fewest items expected.
   */
  min: number;
  /**
   * Most items expected.
   */
  max: number;
}
/**
 * Fields shared by every effect kind.
 */
export interface EffectCommon {
  /**
   * Effect name: the handler calls ctx.effects.<name>(args). A JavaScript identifier.
   */
  name: string;
  /**
   * What this effect does, for the runbook.
   */
  description?: string;
  /**
   * Policy during the backfill: `replay` (applied; idempotent by construction), `suppress` (never applied, recorded), `dedupe` (applied at most once per dedupeKey across backfill and live).
   */
  backfill: 'replay' | 'suppress' | 'dedupe';
  /**
   * What the live path does with this effect (documentation, and the proof obligation for `dedupe`): `apply`, `dedupe` (claims the same keys through reprise/live) or `none`.
   */
  live: 'apply' | 'dedupe' | 'none';
  /**
   * Template of the dedupe key over the effect's arguments, e.g. `invoice-corrected:{order_id}`. Required with `backfill: dedupe`.
   */
  dedupeKey?: string;
  /**
   * For `dedupe`: what a claim left unconfirmed by a crash means. `at-least-once` applies it again (a re-delivery is possible), `at-most-once` never does (a loss is possible). Default at-least-once.
   */
  delivery?: 'at-least-once' | 'at-most-once';
  /**
   * Argument names the handler must supply (checked at run time). For sql effects they come from the statement's :parameters.
   */
  args?: string[];
}
/**
 * A live-health probe: SQL (`connection` + `query` returning `value`) or HTTP (`http`). Over `max` (or failing) means unhealthy.
 */
export interface Probe {
  /**
   * Probe name, shown when it throttles the run.
   */
  name: string;
  /**
   * Connection (PostgreSQL) of a SQL probe.
   */
  connection?: string;
  /**
   * SQL probe: query returning one row with a numeric `value` column.
   */
  query?: string;
  /**
   * HTTP probe: GET returning a number, or a JSON document holding one.
   */
  http?: {
    /**
     * URL of the health endpoint.
     */
    url: string | EnvRef;
    /**
     * Dotted path of the number in the JSON body (e.g. `lag.seconds`); omit when the body is the number.
     */
    field?: string;
  };
  /**
   * Highest healthy value.
   */
  max: number;
  /**
   * A probe slower than this counts as unhealthy. Default 2000.
   */
  timeoutMs?: number;
}
/**
 * Approvals of the dry-run report needed to run the canary. Default min 1.
 */
export interface ApprovalRule {
  /**
   * Distinct trusted principals who must approve.
   */
  min: number;
}
/**
 * Approvals of the canary report needed to run the full backfill. Default min 1.
 */
export interface ApprovalRule1 {
  /**
   * Distinct trusted principals who must approve.
   */
  min: number;
}
/**
 * Approvals needed to execute reversals. Default min 1.
 */
export interface ApprovalRule2 {
  /**
   * Distinct trusted principals who must approve.
   */
  min: number;
}
