/* eslint-disable */
/**
 * generated — do not edit.
 * Source: schema/manifest.schema.json. Regenerate with `npm run gen:types`; a test fails when this file is stale.
 */

/**
 * `none`, `key`, or `{ partitionBy }`.
 */
export type Ordering =
  | ('none' | 'key')
  | {
      /**
       * Partition column or field.
       */
      partitionBy: string;
    };
/**
 * A normalized side effect.
 */
export type Effect = SqlEffect | HttpEffect | RedisStreamEffect | ModuleEffect;
/**
 * SQL effect.
 */
export type SqlEffect = EffectCommon & {
  /**
   * Effect kind.
   */
  kind: 'sql';
  /**
   * Connection.
   */
  connection: string;
  /**
   * Statement with :named parameters.
   */
  statement: string;
  /**
   * Preview query or null.
   */
  preview: string | null;
  /**
   * Idempotent by construction.
   */
  idempotent: boolean;
  /**
   * Compensation or null.
   */
  reverse: {
    /**
     * Compensating statement.
     */
    statement: string;
  } | null;
};
/**
 * HTTP effect.
 */
export type HttpEffect = EffectCommon & {
  /**
   * Effect kind.
   */
  kind: 'http';
  /**
   * HTTP method.
   */
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: UrlRef;
  /**
   * Extra headers.
   */
  headers: {
    [k: string]: string | undefined;
  };
  /**
   * Request timeout.
   */
  timeoutMs: number;
  /**
   * Compensation or null.
   */
  reverse: {
    /**
     * HTTP method.
     */
    method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
    url: UrlRef;
    /**
     * Body template, or null for the original arguments.
     */
    body: {} | null;
  } | null;
};
/**
 * A URL, or the environment variable holding it.
 */
export type UrlRef = string | EnvRef;
/**
 * Redis stream effect.
 */
export type RedisStreamEffect = EffectCommon & {
  /**
   * Effect kind.
   */
  kind: 'redis-stream';
  /**
   * Connection.
   */
  connection: string;
  /**
   * Stream key.
   */
  stream: string;
  /**
   * Approximate MAXLEN or null.
   */
  maxLen: number | null;
  /**
   * Compensation or null.
   */
  reverse: {
    /**
     * Fields template.
     */
    fields: {
      [k: string]: string | undefined;
    };
  } | null;
};
/**
 * Module effect.
 */
export type ModuleEffect = EffectCommon & {
  /**
   * Effect kind.
   */
  kind: 'module';
  /**
   * Module path relative to the plan file.
   */
  module: string;
  /**
   * Exported function.
   */
  export: string;
  /**
   * Compensation or null.
   */
  reverse: {
    /**
     * Exported compensating function.
     */
    export: string;
  } | null;
};
/**
 * Lowercase hex sha256.
 */
export type Hex = string;

/**
 * A compiled plan, frozen: the normalized plan with every default applied, the sha256 of every file it runs, and the hash approvals bind. Stored as RFC 8785 canonical JSON.
 */
export interface Manifest {
  /**
   * Document kind and version.
   */
  kind: 'reprise/manifest@1';
  /**
   * The compiler that produced this manifest.
   */
  compiler: {
    /**
     * Always `reprise`.
     */
    name: 'reprise';
    /**
     * Compiler version (package version).
     */
    version: string;
  };
  plan: Plan;
  /**
   * Pinned inputs. The executor recomputes each at run time and refuses on any mismatch.
   */
  files: {
    /**
     * The plan's content: sha256 of the RFC 8785 form of the parsed YAML document, so formatting, comments and key order do not change it but any value does.
     */
    plan: {
      sha256: Hex;
    };
    handler: PinnedFile;
    /**
     * Module effects' files, in declaration order.
     */
    modules: {
      /**
       * Effect name.
       */
      effect: string;
      /**
       * Path relative to the plan file.
       */
      path: string;
      sha256: Hex;
    }[];
    /**
     * The JSONL source file, when the plan reads one.
     */
    source: PinnedFile | null;
  };
  /**
   * sha256 of the RFC 8785 canonical JSON of every other field, as `sha256:<hex>`. Approvals bind this value.
   */
  hash: string;
}
/**
 * The plan with every default applied (durations in milliseconds, timestamps in UTC ISO 8601 with milliseconds, absent optional values as null).
 */
export interface Plan {
  /**
   * Plan language version.
   */
  reprise: 1;
  /**
   * Plan name.
   */
  name: string;
  /**
   * Plan revision.
   */
  revision: number;
  /**
   * Owning team.
   */
  owner: string;
  /**
   * Author principal.
   */
  author: string;
  /**
   * Why the run exists.
   */
  reason: string;
  /**
   * Ticket or null.
   */
  ticket: string | null;
  /**
   * Declared connections.
   */
  connections: {
    [k: string]: Connection | undefined;
  };
  /**
   * SQL selection, or null when the plan reads a JSONL source.
   */
  selection: Selection | null;
  /**
   * JSONL source, or null when the plan uses a selection.
   */
  source: JsonlSource | null;
  /**
   * Handler and its limits.
   */
  processing: {
    /**
     * Handler path relative to the plan file.
     */
    handler: string;
    /**
     * Per-item timeout.
     */
    timeoutMs: number;
    /**
     * Retry policy.
     */
    retries: {
      /**
       * Retries after the first attempt.
       */
      max: number;
      /**
       * First backoff, doubled each retry.
       */
      backoffMs: number;
    };
  };
  /**
   * Declared effects.
   */
  sideEffects: Effect[];
  /**
   * Dedupe store or null.
   */
  dedupe: DedupeStore | null;
  /**
   * Clean cutoff or null.
   */
  liveBoundary: LiveBoundary | null;
  rate: Rate;
  canary: Canary;
  abort: Abort;
  /**
   * Where state lives.
   */
  checkpoint: {
    /**
     * Connection holding schema `reprise`, or null for --state.
     */
    connection: string | null;
  };
  /**
   * Approvals required per stage.
   */
  approvals: {
    canary: ApprovalRule;
    full: ApprovalRule;
    reverse: ApprovalRule;
  };
}
/**
 * A declared connection and the kind of server its uses imply.
 */
export interface Connection {
  /**
   * Environment variable holding the URL.
   */
  env: string;
  /**
   * `postgres` or `redis`, inferred from how the plan uses it; `unused` when nothing refers to it.
   */
  kind: 'postgres' | 'redis' | 'unused';
}
export interface Selection {
  /**
   * Connection.
   */
  connection: string;
  /**
   * Selection query with :window_start and :window_end.
   */
  query: string;
  /**
   * Key columns.
   */
  key: string[];
  window: Window;
  expect: Expect;
  ordering: Ordering;
}
/**
 * Half-open window [start, end), ISO 8601 UTC with milliseconds.
 */
export interface Window {
  /**
   * Inclusive start.
   */
  start: string;
  /**
   * Exclusive end.
   */
  end: string;
}
/**
 * Count guard.
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
export interface JsonlSource {
  /**
   * Path relative to the plan file.
   */
  jsonl: string;
  /**
   * Key field.
   */
  key: string;
  /**
   * Timestamp field or null.
   */
  timestamp: string | null;
  /**
   * Window or null.
   */
  window: Window | null;
  expect: Expect;
  ordering: Ordering;
}
/**
 * Fields every normalized effect has.
 */
export interface EffectCommon {
  /**
   * Effect name.
   */
  name: string;
  /**
   * What it does, or null.
   */
  description: string | null;
  /**
   * Backfill policy.
   */
  backfill: 'replay' | 'suppress' | 'dedupe';
  /**
   * What the live path does.
   */
  live: 'apply' | 'dedupe' | 'none';
  /**
   * Dedupe key template (null unless backfill or live is dedupe).
   */
  dedupeKey: string | null;
  /**
   * Delivery for a claim left unconfirmed by a crash (null unless backfill is dedupe).
   */
  delivery: ('at-least-once' | 'at-most-once') | null;
  /**
   * Every argument the handler must supply: the statement's parameters for sql, else `args` plus the placeholders of the dedupe key and templates.
   */
  args: string[];
}
/**
 * A value read from an environment variable at run time.
 */
export interface EnvRef {
  /**
   * Variable name.
   */
  env: string;
}
export interface DedupeStore {
  /**
   * Store kind.
   */
  store: 'redis' | 'postgres';
  /**
   * Connection.
   */
  connection: string;
  /**
   * Key namespace.
   */
  namespace: string;
  /**
   * Claim lifetime, ms.
   */
  ttl: number;
}
export interface LiveBoundary {
  /**
   * Cutoff instant.
   */
  cutoff: string;
  /**
   * Watermark query or null.
   */
  watermark: {
    /**
     * Connection.
     */
    connection: string;
    /**
     * Query returning `watermark`.
     */
    query: string;
  } | null;
}
/**
 * Throttle and live protection.
 */
export interface Rate {
  /**
   * Rate cap.
   */
  itemsPerSecond: number;
  /**
   * Live traffic and capacity, or null.
   */
  live: {
    /**
     * Live rate.
     */
    itemsPerSecond: number;
    /**
     * Path capacity.
     */
    capacity: number;
  } | null;
  /**
   * In-flight items per worker.
   */
  concurrency: number;
  /**
   * Items per chunk.
   */
  chunkSize: number;
  /**
   * Target connections per process.
   */
  maxConnections: number;
  /**
   * Probe interval, ms.
   */
  checkEvery: number;
  /**
   * Probes.
   */
  protect: Probe[];
}
/**
 * A normalized live-health probe.
 */
export interface Probe {
  /**
   * Probe name.
   */
  name: string;
  /**
   * SQL probe connection or null.
   */
  connection: string | null;
  /**
   * SQL probe query or null.
   */
  query: string | null;
  /**
   * HTTP probe or null.
   */
  http: {
    url: UrlRef;
    /**
     * Dotted path of the number, or null.
     */
    field: string | null;
  } | null;
  /**
   * Highest healthy value.
   */
  max: number;
  /**
   * Probe timeout.
   */
  timeoutMs: number;
}
/**
 * Canary batch.
 */
export interface Canary {
  /**
   * Canary items.
   */
  size: number;
  /**
   * How the canary set is picked.
   */
  pick: 'first' | 'sample';
  /**
   * Validation queries.
   */
  validate: {
    /**
     * Check name.
     */
    name: string;
    /**
     * Connection.
     */
    connection: string;
    /**
     * Query returning `ok`.
     */
    query: string;
  }[];
}
/**
 * Error budget and stall handling.
 */
export interface Abort {
  /**
   * Failed share over errorWindow that aborts.
   */
  maxErrorRate: number;
  /**
   * Window size in items.
   */
  errorWindow: number;
  /**
   * Failed items in a row that abort.
   */
  maxConsecutiveErrors: number;
  /**
   * Stall threshold, ms.
   */
  stallAfter: number;
  /**
   * Stall action.
   */
  onStall: 'alert' | 'pause' | 'abort';
  /**
   * Alert target or null.
   */
  alert: {
    webhook: UrlRef;
  } | null;
}
/**
 * Distinct approvers required.
 */
export interface ApprovalRule {
  /**
   * Distinct principals.
   */
  min: number;
}
/**
 * A file and the sha256 of its bytes.
 */
export interface PinnedFile {
  /**
   * Path relative to the plan file.
   */
  path: string;
  sha256: Hex;
}
