/* eslint-disable */
/**
 * generated — do not edit.
 * Source: schema/policy.schema.json. Regenerate with `npm run gen:types`; a test fails when this file is stale.
 */

/**
 * An organisation policy (reprise.policy.yaml): guardrails a platform team sets once for every plan. Passed by the pipeline with --policy FILE or REPRISE_POLICY, never read from the plan's folder. `validate`, `compile` and `run` check plans against it; a violation is a plan error (exit 2). Every field is optional; unknown keys are errors.
 */
export interface PolicyFile {
  /**
   * Limits per target, keyed by the environment variable a plan connection reads (`connections.<name>.env`), since plans name their connections freely. A plan touches a target when any of its connections reads that variable.
   */
  targets?: {
    [k: string]: Target | undefined;
  };
  /**
   * Minimum numbers of distinct approvers per stage. A plan whose `approvals.<stage>.min` is below the minimum is an error (POLICY_APPROVALS); plans can raise these minimums, never lower them.
   */
  approvals?: {
    /**
     * Minimum `approvals.canary.min` of every plan.
     */
    canary?: number;
    /**
     * Minimum `approvals.full.min` of every plan.
     */
    full?: number;
    /**
     * Minimum `approvals.reverse.min` of every plan.
     */
    reverse?: number;
    /**
     * Higher minimums for plans that have at least one side effect with a given backfill policy, e.g. `{ suppress: { full: 2 } }`. The strictest applicable minimum wins.
     */
    whenPolicies?: {
      replay?: StageMinimums;
      suppress?: StageMinimums1;
      dedupe?: StageMinimums2;
    };
  };
  /**
   * Statements no plan may contain: each pattern is matched against the `statement` and the `reverse.statement` of every sql effect (not against selection, preview, probe or validation queries).
   */
  forbid?: ForbiddenStatement[];
}
/**
 * Limits for every plan touching one target (a database or server named by its environment variable).
 */
export interface Target {
  /**
   * Highest `rate.itemsPerSecond` (after defaults) of a plan touching this target (POLICY_RATE).
   */
  maxItemsPerSecond?: number;
  /**
   * Highest `rate.concurrency` (items in flight per worker, after defaults) of a plan touching this target (POLICY_CONCURRENCY).
   */
  maxConcurrency?: number;
  /**
   * When true, a plan touching this target needs at least one `rate.protect` SQL probe on a connection that reads this variable (POLICY_PROTECT_REQUIRED).
   */
  requireProtect?: boolean;
}
/**
 * Minimums for plans with a `backfill: replay` effect.
 */
export interface StageMinimums {
  /**
   * Minimum `approvals.canary.min`.
   */
  canary?: number;
  /**
   * Minimum `approvals.full.min`.
   */
  full?: number;
  /**
   * Minimum `approvals.reverse.min`.
   */
  reverse?: number;
}
/**
 * Minimums for plans with a `backfill: suppress` effect.
 */
export interface StageMinimums1 {
  /**
   * Minimum `approvals.canary.min`.
   */
  canary?: number;
  /**
   * Minimum `approvals.full.min`.
   */
  full?: number;
  /**
   * Minimum `approvals.reverse.min`.
   */
  reverse?: number;
}
/**
 * Minimums for plans with a `backfill: dedupe` effect.
 */
export interface StageMinimums2 {
  /**
   * Minimum `approvals.canary.min`.
   */
  canary?: number;
  /**
   * Minimum `approvals.full.min`.
   */
  full?: number;
  /**
   * Minimum `approvals.reverse.min`.
   */
  reverse?: number;
}
/**
 * A forbidden statement shape (POLICY_FORBIDDEN_STATEMENT).
 */
export interface ForbiddenStatement {
  /**
   * JavaScript regular expression, matched case-insensitively against the whole statement text; `^` and `$` are its start and end, `[\s\S]` crosses lines.
   */
  pattern: string;
  /**
   * Why the statement is forbidden; printed in the error.
   */
  message: string;
}
