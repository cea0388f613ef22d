/**
 * The organisation policy (design section 8): guardrails a platform team sets once for every
 * plan, in `reprise.policy.yaml`, passed by the pipeline (`--policy FILE` / `REPRISE_POLICY`),
 * never read from the plan's folder. `validate`, `compile` and `run` check a plan against it;
 * a violation is a plan error (exit 2) at the plan's offending field, naming the rule and the
 * policy file. The manifest never depends on the policy: the same plan has the same hash with
 * or without one, so an approval stays valid when the platform team edits the policy.
 *
 * Approval minimums are enforced here, at compile time, and nowhere else: a plan below a minimum
 * does not compile, so the executor counts approvers against the plan's own
 * `approvals.<stage>.min`, which already satisfies the policy (max(plan, policy) is the plan's).
 *
 * docs/policy.md documents every rule and code; compiler/codes.ts lists the codes.
 */
import { readFileSync } from 'node:fs';
import type { PolicyFile } from '../schema/policy.types.js';
import { DEFAULTS } from './defaults.js';
import { byPosition, ExitCode, PolicyInvalidError, RepriseError, type Diagnostic, type SourcePosition } from './errors.js';
import { loadYaml, type LoadedYaml, type PlanPath } from './load.js';
import { stripSqlComments } from './sql-params.js';
import { dottedPath as dotted, validateAgainstSchema, valueAt, type SchemaSubject } from './validate-schema.js';

/** The environment variable a pipeline sets to the policy file (`--policy` wins over it). */
export const POLICY_ENV = 'REPRISE_POLICY';

const POLICY_SUBJECT: SchemaSubject = { schema: 'policy.schema.json', root: 'the policy', doc: 'docs/policy.md' };

/** Stages a policy sets approval minimums for, and the backfill policies `whenPolicies` names. */
const STAGES = ['canary', 'full', 'reverse'] as const;
const BACKFILL_POLICIES = ['replay', 'suppress', 'dedupe'] as const;

/** A loaded, schema-valid policy, with its `forbid` patterns compiled. */
export interface Policy {
  /** The policy file as messages name it (the path given). */
  readonly file: string;
  /** The policy as written. */
  readonly rules: PolicyFile;
  /** `forbid[]` in order, each pattern compiled (case-insensitive). */
  readonly forbid: ReadonlyArray<{ readonly index: number; readonly pattern: RegExp; readonly message: string }>;
  /** Where a rule is written in the policy file. */
  locate(path: PlanPath): SourcePosition;
}

/** Parses a policy; every problem of the policy file, at its own line:col. Never throws for a user mistake. */
export function parsePolicy(file: string, text: string): { policy: Policy | undefined; diagnostics: Diagnostic[] } {
  const loaded = loadYaml(file, text);
  const diagnostics = [...loaded.diagnostics];
  if (diagnostics.length === 0 && !isObj(loaded.data)) {
    diagnostics.push({
      code: 'POLICY_NOT_A_MAPPING',
      message: `${file} is not a YAML mapping`,
      hint: 'a policy is a mapping with any of `targets`, `approvals` and `forbid` (see docs/policy.md)',
      at: loaded.locate([]),
    });
  }
  if (diagnostics.length > 0) return { policy: undefined, diagnostics };
  diagnostics.push(...validateAgainstSchema(loaded, POLICY_SUBJECT));
  const forbid: Array<{ index: number; pattern: RegExp; message: string }> = [];
  arr((loaded.data as Obj).forbid).forEach((f, index) => {
    if (!isObj(f) || typeof f.pattern !== 'string' || typeof f.message !== 'string') return;
    try {
      forbid.push({ index, pattern: new RegExp(f.pattern, 'i'), message: f.message });
    } catch (e) {
      diagnostics.push({
        code: 'POLICY_INVALID_PATTERN',
        message: `\`forbid[${index}].pattern\` is not a valid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`,
        hint: 'write a JavaScript regular expression (matched case-insensitively); in YAML, single quotes keep backslashes as written',
        at: loaded.locate(['forbid', index, 'pattern']),
        path: ['forbid', index, 'pattern'],
      });
    }
  });
  diagnostics.sort(byPosition);
  if (diagnostics.length > 0) return { policy: undefined, diagnostics };
  return {
    policy: { file, rules: loaded.data as PolicyFile, forbid, locate: (path) => loaded.locate(path) },
    diagnostics,
  };
}

/** Reads and parses a policy file; throws POLICY_NOT_FOUND, or PolicyInvalidError with every problem. */
export function loadPolicyFile(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RepriseError('POLICY_NOT_FOUND', `cannot read policy ${path}${code ? ` (${code})` : ''}`, {
      hint: `check --policy / ${POLICY_ENV}; the pipeline supplies the policy, it is never read from the plan's folder`,
      exit: ExitCode.invalidInput,
    });
  }
  const { policy, diagnostics } = parsePolicy(path, text);
  if (!policy) throw new PolicyInvalidError(path, diagnostics);
  return policy;
}

/**
 * Every rule of `policy` the plan breaks, each at the plan's offending field (or, for a value
 * left to its default, the nearest field written). Reads the plan as written, defensively: the
 * plan's own schema and rule problems are reported beside these, never instead of them.
 */
export function checkPolicy(plan: LoadedYaml, policy: Policy): Diagnostic[] {
  const data = plan.data;
  if (!isObj(data)) return [];
  const out: Diagnostic[] = [];
  const rule = (path: PlanPath): string => {
    const at = policy.locate(path);
    return `policy rule \`${dotted(path)}\` (${policy.file}:${at.line}:${at.col})`;
  };
  const report = (code: string, path: PlanPath, at: SourcePosition, message: string, hint: string, rulePath: PlanPath): void => {
    out.push({ code, message, hint, path, at, details: { policy: policy.file, rule: dotted(rulePath) } });
  };
  /** The field when written, else its nearest written ancestor, else `fallback` (a key). */
  const fieldAt = (path: PlanPath, fallback?: PlanPath): SourcePosition =>
    fallback && valueAt(data, path.slice(0, 1)) === undefined ? plan.locate(fallback, 'key') : plan.locate(path);

  checkTargets(data, policy, { rule, report, fieldAt });
  checkApprovals(data, policy, { rule, report, fieldAt });
  checkForbid(data, policy, { rule, report, fieldAt });
  return out.sort(byPosition);
}

interface Reporter {
  rule(path: PlanPath): string;
  report(code: string, path: PlanPath, at: SourcePosition, message: string, hint: string, rulePath: PlanPath): void;
  fieldAt(path: PlanPath, fallback?: PlanPath): SourcePosition;
}

/** `maxItemsPerSecond`, `maxConcurrency` and `requireProtect` of every target the plan touches. */
function checkTargets(data: Obj, policy: Policy, r: Reporter): void {
  const connections = Object.entries(isObj(data.connections) ? data.connections : {})
    .filter((e): e is [string, Obj] => isObj(e[1]) && typeof e[1].env === 'string')
    .map(([name, c]) => ({ name, env: c.env as string }));
  const rate = isObj(data.rate) ? data.rate : {};
  for (const [env, target] of Object.entries(policy.rules.targets ?? {})) {
    if (!target) continue;
    const names = connections.filter((c) => c.env === env).map((c) => c.name);
    if (names.length === 0) continue;
    const via = `connection${names.length === 1 ? '' : 's'} ${names.map((n) => `\`${n}\``).join(', ')} read${names.length === 1 ? 's' : ''} ${env}`;
    const firstConnection: PlanPath = ['connections', names[0]!];

    const limits = [
      { code: 'POLICY_RATE', field: 'itemsPerSecond', limit: 'maxItemsPerSecond', max: target.maxItemsPerSecond },
      { code: 'POLICY_CONCURRENCY', field: 'concurrency', limit: 'maxConcurrency', max: target.maxConcurrency },
    ] as const;
    for (const l of limits) {
      const value = effective(rate[l.field], DEFAULTS.rate[l.field]);
      if (l.max === undefined || !value || value.value <= l.max) continue;
      const rulePath = ['targets', env, l.limit];
      r.report(
        l.code,
        ['rate', l.field],
        r.fieldAt(['rate', l.field], firstConnection),
        `\`rate.${l.field}\` is ${value.value}${value.defaulted ? ' (the default)' : ''}, above the ${l.max} allowed for ${env} by ${r.rule(rulePath)}; ${via}`,
        `set \`rate.${l.field}\` to ${l.max} or less, or ask the owners of ${policy.file} to change the limit`,
        rulePath,
      );
    }

    if (target.requireProtect === true) {
      const probes = arr(rate.protect);
      const watched = probes.some((p) => isObj(p) && typeof p.connection === 'string' && names.includes(p.connection));
      if (!watched) {
        const rulePath = ['targets', env, 'requireProtect'];
        const hasProtect = valueAt(data, ['rate', 'protect']) !== undefined;
        r.report(
          'POLICY_PROTECT_REQUIRED',
          ['rate', 'protect'],
          hasProtect ? r.fieldAt(['rate', 'protect']) : r.fieldAt(['rate', 'protect'], firstConnection),
          `no \`rate.protect\` probe watches ${env}, as ${r.rule(rulePath)} requires; ${via}`,
          `add a probe under \`rate.protect\` with \`connection: ${names[0]}\`, a query returning \`value\` (replica lag, for instance) and a \`max\``,
          rulePath,
        );
      }
    }
  }
}

/** `approvals.<stage>` and `approvals.whenPolicies.<backfill>.<stage>`: the strictest applicable minimum. */
function checkApprovals(data: Obj, policy: Policy, r: Reporter): void {
  const rules = policy.rules.approvals;
  if (!rules) return;
  const effects = arr(data.sideEffects).filter(isObj);
  const approvals = isObj(data.approvals) ? data.approvals : {};
  for (const stage of STAGES) {
    const candidates: Array<{ min: number; rulePath: PlanPath; because: string }> = [];
    if (rules[stage] !== undefined) candidates.push({ min: rules[stage], rulePath: ['approvals', stage], because: '' });
    for (const bp of BACKFILL_POLICIES) {
      const min = rules.whenPolicies?.[bp]?.[stage];
      const names = effects.filter((e) => e.backfill === bp).map((e) => `\`${String(e.name)}\``);
      if (min !== undefined && names.length > 0) {
        candidates.push({ min, rulePath: ['approvals', 'whenPolicies', bp, stage], because: ` (the plan has \`backfill: ${bp}\` effect${names.length === 1 ? '' : 's'} ${names.join(', ')})` });
      }
    }
    // The strictest minimum; on a tie, the rule listed first (the stage's own minimum).
    const required = candidates.reduce<(typeof candidates)[number] | undefined>((best, c) => (!best || c.min > best.min ? c : best), undefined);
    if (!required) continue;
    const written = isObj(approvals[stage]) ? (approvals[stage] as Obj).min : undefined;
    const min = effective(approvals[stage] === undefined ? undefined : written, DEFAULTS.approvals[stage]);
    if (!min || min.value >= required.min) continue;
    r.report(
      'POLICY_APPROVALS',
      ['approvals', stage, 'min'],
      r.fieldAt(['approvals', stage, 'min']),
      `\`approvals.${stage}.min\` is ${min.value}${min.defaulted ? ' (the default)' : ''}, below the ${required.min} approvers required by ${r.rule(required.rulePath)}${required.because}`,
      `set \`approvals.${stage}.min\` to ${required.min} or more; a plan can raise the policy's minimums, never lower them`,
      required.rulePath,
    );
  }
}

/** `forbid[]` over the `statement` and `reverse.statement` of every sql effect, comments removed. */
function checkForbid(data: Obj, policy: Policy, r: Reporter): void {
  if (policy.forbid.length === 0) return;
  arr(data.sideEffects).forEach((e, i) => {
    if (!isObj(e) || e.kind !== 'sql') return;
    const statements: Array<{ path: PlanPath; text: unknown; what: string }> = [
      { path: ['sideEffects', i, 'statement'], text: e.statement, what: 'statement' },
      { path: ['sideEffects', i, 'reverse', 'statement'], text: isObj(e.reverse) ? e.reverse.statement : undefined, what: 'reverse statement' },
    ];
    const name = typeof e.name === 'string' ? `\`${e.name}\`` : `#${i + 1}`;
    for (const s of statements) {
      if (typeof s.text !== 'string') continue;
      const sql = stripSqlComments(s.text);
      for (const f of policy.forbid) {
        if (!f.pattern.test(sql)) continue;
        const rulePath = ['forbid', f.index];
        r.report(
          'POLICY_FORBIDDEN_STATEMENT',
          s.path,
          r.fieldAt(s.path),
          `the ${s.what} of sql effect ${name} is forbidden by ${r.rule(rulePath)}: ${f.message}`,
          `rewrite it so it no longer matches /${f.pattern.source}/i, or ask the owners of ${policy.file}`,
          rulePath,
        );
      }
    }
  });
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** A plan number as the compiler will apply it: written, or the default when absent; undefined when malformed (the schema reports it). */
function effective(written: unknown, fallback: number): { value: number; defaulted: boolean } | undefined {
  if (written === undefined) return { value: fallback, defaulted: true };
  return typeof written === 'number' && Number.isFinite(written) ? { value: written, defaulted: false } : undefined;
}
