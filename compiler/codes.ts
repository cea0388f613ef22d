/**
 * Every diagnostic code `validate`, `compile` and `diff` can report about a plan, with what it
 * means and how to fix it. docs/plan-reference.md is generated from this list, and a test checks
 * that it names exactly the codes the loader, the schema mapping and the rules emit.
 */

export interface DiagnosticCodeDoc {
  code: string;
  /**
   * Which step reports it: YAML parsing, the JSON Schema, a semantic rule, reading the inputs, the
   * organisation policy (a plan breaking it) or the policy file itself.
   */
  stage: 'yaml' | 'schema' | 'rule' | 'input' | 'policy' | 'policy-file';
  /** What it means. */
  means: string;
  /** How to fix it. */
  fix: string;
}

export const DIAGNOSTIC_CODES: readonly DiagnosticCodeDoc[] = [
  // YAML
  { code: 'YAML_SYNTAX', stage: 'yaml', means: 'The file is not valid YAML (an unclosed bracket or quote, bad indentation, a tab, an alias to an anchor that does not exist).', fix: 'Fix the YAML at the position shown; the message is the parser\'s.' },
  { code: 'DUPLICATE_KEY', stage: 'yaml', means: 'The same key appears twice in one mapping; YAML would silently keep one of them.', fix: 'Keep one of the two keys.' },
  { code: 'PLAN_NOT_A_MAPPING', stage: 'yaml', means: 'The document is not a mapping (it is empty, a list or a scalar).', fix: 'A plan is a mapping that starts with `reprise: 1` and `name: ...`.' },

  // Schema
  { code: 'UNKNOWN_KEY', stage: 'schema', means: 'A key the plan language does not have (often a typo: the hint suggests the closest allowed key).', fix: 'Rename or remove it; every allowed key is listed in the field reference above.' },
  { code: 'MISSING_FIELD', stage: 'schema', means: 'A required field is absent.', fix: 'Add it; the hint repeats its description.' },
  { code: 'INVALID_VALUE', stage: 'schema', means: 'A value of the wrong type, or not one of the allowed values (enums such as `backfill`, `live`, `onStall`).', fix: 'Use a value of the documented type or one of the listed values.' },
  { code: 'INVALID_FORMAT', stage: 'schema', means: 'A string that does not match its pattern (a plan or effect name, a duration such as `5m`, an environment variable name, a URL), or an invalid connection name.', fix: 'Follow the pattern in the field reference (e.g. names are `[a-z0-9-]+`, durations `<number><ms|s|m|h|d>`).' },
  { code: 'INVALID_TIMESTAMP', stage: 'schema', means: 'A window bound or cutoff that is not an RFC 3339 date-time with a time zone.', fix: 'Write it like `2026-10-01T00:00:00Z`.' },
  { code: 'OUT_OF_RANGE', stage: 'schema', means: 'A number outside its bounds (a revision below 1, a negative count, an error rate above 1), an empty string, a list with duplicate items, or a duration too long to represent.', fix: 'Use a value within the bounds shown in the message.' },
  { code: 'UNKNOWN_EFFECT_KIND', stage: 'schema', means: 'A side effect with no `kind`, or a kind reprise does not know.', fix: 'Set `kind` to one of `sql`, `http`, `redis-stream`, `module`.' },

  // Rules
  { code: 'SOURCE_CHOICE', stage: 'rule', means: 'The plan has neither `selection` nor `source`, or both.', fix: 'Keep exactly one: `selection` (a SQL query over a window) or `source` (a JSONL file).' },
  { code: 'WINDOW_ORDER', stage: 'rule', means: 'The window\'s `start` is not before its `end`.', fix: 'The window is [start, end): swap or correct the bounds.' },
  { code: 'WINDOW_AFTER_CUTOFF', stage: 'rule', means: 'The window ends after `liveBoundary.cutoff`, so the backfill and the live path would both own items after the cutoff.', fix: 'End the window at or before the cutoff.' },
  { code: 'SOURCE_WINDOW_TIMESTAMP', stage: 'rule', means: 'A JSONL `source` has a `window` but no `timestamp` field to compare with it.', fix: 'Name the event field holding its time in `source.timestamp`, or drop the window.' },
  { code: 'EXPECT_RANGE', stage: 'rule', means: 'The count guard\'s `min` is above its `max`.', fix: 'Set `expect: { min, max }` with min <= max.' },
  { code: 'UNKNOWN_PARAMETER', stage: 'rule', means: 'A query uses a `:parameter` reprise cannot bind: the selection query binds only `:window_start` and `:window_end`; probes, watermark and validation queries take none; `preview` and `reverse.statement` take the statement\'s own parameters (plus `:before.<column>` in reverse).', fix: 'Use one of the parameters listed in the hint, or write the value into the query.' },
  { code: 'WINDOW_NOT_BOUND', stage: 'rule', means: 'The selection query does not use `:window_start` and `:window_end`, so the run would not be confined to its window.', fix: 'Filter on both, e.g. `created_at >= :window_start and created_at < :window_end`.' },
  { code: 'UNDECLARED_CONNECTION', stage: 'rule', means: 'A field names a connection that is not declared under `connections`.', fix: 'Declare it (`name: { env: VAR }`) or use one of the declared names listed in the hint.' },
  { code: 'CONNECTION_KIND_CONFLICT', stage: 'rule', means: 'One connection is used both as PostgreSQL (selection, sql effects, probes, checkpoint) and as Redis (redis-stream effects, a redis dedupe store).', fix: 'Declare one connection per server.' },
  { code: 'PROBE_KIND', stage: 'rule', means: 'A `rate.protect` probe is neither a SQL probe (`connection` + `query`) nor an HTTP probe (`http`), or mixes both.', fix: 'Give it either `connection` and `query`, or `http`.' },
  { code: 'DUPLICATE_EFFECT', stage: 'rule', means: 'Two side effects have the same name; the handler calls them as `ctx.effects.<name>`.', fix: 'Rename one of them.' },
  { code: 'RESERVED_EFFECT_NAME', stage: 'rule', means: 'An effect is named `__proto__`, `constructor` or `prototype`, which cannot be a property of `ctx.effects`.', fix: 'Choose another name.' },
  { code: 'DEDUPE_NO_STORE', stage: 'rule', means: 'An effect dedupes (`backfill: dedupe` or `live: dedupe`) but the plan has no `dedupe` store.', fix: 'Add `dedupe: { store: redis|postgres, connection, namespace }`, shared with the live consumers.' },
  { code: 'DEDUPE_KEY_MISSING', stage: 'rule', means: 'An effect dedupes but has no `dedupeKey`.', fix: 'Add a `dedupeKey` template over its arguments, e.g. `invoice-corrected:{order_id}`.' },
  { code: 'DEDUPE_LIVE_UNSAFE', stage: 'rule', means: 'An effect has `backfill: dedupe` while the live path applies it without claiming keys (`live: apply|none`) and there is no `liveBoundary`: backfill and live could both apply the same item.', fix: 'Set `live: dedupe` (the live path claims the same keys through `reprise/live`) or add a `liveBoundary` cutoff.' },
  { code: 'DEDUPE_FIELDS_UNUSED', stage: 'rule', means: '`delivery` is set on an effect whose backfill policy is not `dedupe`, or `dedupeKey` on an effect that never dedupes.', fix: 'Remove the field, or change the policy to `dedupe`.' },
  { code: 'DEDUPE_KEY_PLACEHOLDER', stage: 'rule', means: 'A `dedupeKey` placeholder is not an argument the effect receives (a sql statement\'s `:parameters`, or the effect\'s declared `args`).', fix: 'Use one of the arguments listed in the hint, or add the field to `args`.' },
  { code: 'TEMPLATE_SYNTAX', stage: 'rule', means: 'A `{field}` template (dedupe key, URL, header, reverse fields or body) is malformed: an unclosed or unmatched brace, or a placeholder that is not a field name.', fix: 'Placeholders are `{field}` or `{a.b}`; write `{{` and `}}` for literal braces.' },
  { code: 'NON_IDEMPOTENT_SQL', stage: 'rule', means: 'A sql effect is declared `idempotent: false` but its connection is not `checkpoint.connection`, so a crash between applying it and committing the checkpoint would apply it twice.', fix: 'Set `checkpoint.connection` to the effect\'s connection, or make the statement idempotent (upsert, set-to-value) and drop `idempotent: false`.' },
  { code: 'REVERSE_NEEDS_PREVIEW', stage: 'rule', means: 'A `reverse.statement` uses `:before.<column>` but the effect has no `preview` query to read those values before applying.', fix: 'Add a `preview` query returning the columns the reverse restores.' },
  { code: 'FILE_NOT_FOUND', stage: 'rule', means: 'The handler, a module effect or the JSONL source does not exist (paths are relative to the plan file; for `git-ref:path`, at that revision).', fix: 'Fix the path, or add the file.' },
  { code: 'HANDLER_EXTENSION', stage: 'rule', means: 'The handler is not a TypeScript or JavaScript module.', fix: 'Use a `.ts`, `.mts`, `.cts`, `.js`, `.mjs` or `.cjs` file.' },
  { code: 'CONCURRENCY_OVER_CONNECTIONS', stage: 'rule', means: '`rate.concurrency` is above `rate.maxConnections`: in-flight items would wait for connections of the executor\'s own pool.', fix: 'Raise `maxConnections` or lower `concurrency`.' },
  { code: 'LIVE_HEADROOM', stage: 'rule', means: '`rate.itemsPerSecond` plus `rate.live.itemsPerSecond` exceeds `rate.live.capacity`: the backfill would eat into what live traffic needs.', fix: 'Lower `rate.itemsPerSecond` to at most capacity minus live (the hint gives the number).' },
  { code: 'DURATION_ZERO', stage: 'rule', means: 'A duration that must be positive is zero (`checkEvery`, `stallAfter`, `dedupe.ttl`).', fix: 'Use a positive duration such as `5s`.' },
  { code: 'CANARY_SIZE', stage: 'rule', means: '`canary.size` (default 100) is not below the count guard\'s `expect.min`, so the canary would not be a small part of the run.', fix: 'Set `canary.size` below `expect.min`.' },

  // Inputs
  { code: 'PLAN_NOT_FOUND', stage: 'input', means: 'The plan file cannot be read, or `REF:PATH` does not exist at that git revision.', fix: 'Check the path (and the revision).' },
  { code: 'GIT_UNAVAILABLE', stage: 'input', means: '`REF:PATH` was given outside a git working tree, or git is not installed.', fix: 'Run the command inside the repository, or pass plan files.' },
];

/**
 * The codes of the organisation policy (docs/policy.md): a plan breaking a rule of
 * `--policy FILE` / `REPRISE_POLICY` (at the plan's field), and a policy file with mistakes of its
 * own (at the policy file's line:col; YAML and schema mistakes there use the codes above).
 */
export const POLICY_CODES: readonly DiagnosticCodeDoc[] = [
  { code: 'POLICY_RATE', stage: 'policy', means: 'The plan touches a target (a connection reading that environment variable) whose `maxItemsPerSecond` is below the plan\'s `rate.itemsPerSecond` (default 100).', fix: 'Lower `rate.itemsPerSecond` to the limit the message gives, or ask the platform team to change the policy.' },
  { code: 'POLICY_CONCURRENCY', stage: 'policy', means: 'The plan touches a target whose `maxConcurrency` is below the plan\'s `rate.concurrency` (default 1).', fix: 'Lower `rate.concurrency` to the limit the message gives.' },
  { code: 'POLICY_PROTECT_REQUIRED', stage: 'policy', means: 'The plan touches a target with `requireProtect: true` but has no `rate.protect` SQL probe on a connection reading that variable.', fix: 'Add a probe under `rate.protect` with `connection: <that connection>`, a query returning `value` and a `max` (replica lag, for instance).' },
  { code: 'POLICY_APPROVALS', stage: 'policy', means: 'The plan\'s `approvals.<stage>.min` (default 1) is below the policy\'s minimum for that stage, or below a `whenPolicies` minimum that applies because the plan has an effect with that backfill policy.', fix: 'Raise `approvals.<stage>.min` to the minimum the message gives; a plan can raise the policy\'s minimums, never lower them.' },
  { code: 'POLICY_FORBIDDEN_STATEMENT', stage: 'policy', means: 'The `statement` or `reverse.statement` of a sql effect matches a `forbid` pattern of the policy (the message is the policy\'s).', fix: 'Rewrite the statement (a bounded delete, an upsert instead of a truncate), or ask the platform team.' },
  { code: 'POLICY_NOT_A_MAPPING', stage: 'policy-file', means: 'The policy file is empty, a list or a scalar.', fix: 'A policy is a mapping with any of `targets`, `approvals` and `forbid`.' },
  { code: 'POLICY_INVALID_PATTERN', stage: 'policy-file', means: 'A `forbid[].pattern` is not a valid JavaScript regular expression.', fix: 'Fix the pattern at the position shown; the message is the regular expression parser\'s.' },
  { code: 'POLICY_NOT_FOUND', stage: 'input', means: 'The file given with `--policy` or `REPRISE_POLICY` cannot be read.', fix: 'Check the path; the pipeline supplies the policy, it is never read from the plan\'s folder.' },
];
