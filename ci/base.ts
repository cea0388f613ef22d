/**
 * The plan as the base branch has it, for the pull-request comment's diff: the revision the pull
 * request would replace. Read with `git show REF:PATH` (compiler/source.ts), compiled, and
 * compared with compiler/diff.ts, exactly as `reprise diff REF:PATH PATH` does.
 */
import { execFileSync } from 'node:child_process';
import { compileSource, type Compiled } from '../compiler/compile.js';
import { diffCompiled, type PlanDiff } from '../compiler/diff.js';
import { coerceError, ExitCode, PlanInvalidError, RepriseError, type Diagnostic } from '../compiler/errors.js';
import { gitPlanSource } from '../compiler/source.js';

/** The base when neither `--base` nor a CI variable names one. */
export const DEFAULT_BASE_REF = 'origin/main';

/** What the base branch holds at the plan's path. */
export type BaseRevision =
  /** The plan does not exist at `ref`: the pull request adds it. */
  | { kind: 'new'; ref: string }
  /** The plan exists at `ref`; `diff` compares it with the pull request's (possibly no change). */
  | { kind: 'diff'; ref: string; diff: PlanDiff }
  /** The plan exists at `ref` but does not compile there (its problems, or why). */
  | { kind: 'invalid'; ref: string; problems: Diagnostic[] }
  /** `ref` cannot be read: not fetched, unknown, or not a git working tree. */
  | { kind: 'unavailable'; ref: string; reason: string; hint: string };

/**
 * The git revision to diff against, when `--base` is not given, from the first of:
 * `REPRISE_BASE_REF` (used as is); GitHub Actions' `GITHUB_BASE_REF` and GitLab's
 * `CI_MERGE_REQUEST_TARGET_BRANCH_NAME` (branch names, read as `origin/<branch>`, the
 * remote-tracking branch a CI checkout has once the base is fetched); else `origin/main`.
 */
export function defaultBaseRef(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REPRISE_BASE_REF) return env.REPRISE_BASE_REF;
  const branch = env.GITHUB_BASE_REF || env.CI_MERGE_REQUEST_TARGET_BRANCH_NAME;
  if (branch) return `origin/${branch}`;
  return DEFAULT_BASE_REF;
}

/** Refuses (exit 2) a revision git would read as an option. */
export function checkBaseRef(ref: string): string {
  if (ref === '' || ref.startsWith('-') || /[\s\u0000-\u001f]/.test(ref)) {
    throw new RepriseError('USAGE', `--base ${JSON.stringify(ref)} is not a git revision`, {
      exit: ExitCode.invalidInput,
      hint: 'e.g. --base origin/main, or a commit sha',
    });
  }
  return ref;
}

/**
 * Reads the plan at `ref` and diffs it against `current` (the pull request's plan, compiled from
 * `planPath`). Never throws for a missing or broken base: the comment says what it found.
 */
export async function readBaseRevision(ref: string, planPath: string, current: Compiled, cwd: string = process.cwd()): Promise<BaseRevision> {
  checkBaseRef(ref);
  try {
    execFileSync('git', ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? '').trim().split('\n')[0] ?? '';
    const notRepo = /not a git repository/i.test(stderr);
    return {
      kind: 'unavailable',
      ref,
      reason: notRepo ? 'not a git working tree' : (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'git is not installed' : `git does not know the revision ${ref}`,
      hint: notRepo ? 'run reprise ci-comment in the repository\'s checkout' : `fetch it first (e.g. git fetch origin ${ref.replace(/^origin\//, '')}), or pass --base`,
    };
  }
  let source;
  try {
    source = gitPlanSource(ref, planPath, cwd);
  } catch (e) {
    if (e instanceof RepriseError && e.code === 'PLAN_NOT_FOUND') return { kind: 'new', ref };
    const err = coerceError(e);
    return { kind: 'unavailable', ref, reason: err.message, hint: err.hint ?? 'check --base' };
  }
  let base: Compiled;
  try {
    base = await compileSource(source);
  } catch (e) {
    if (e instanceof PlanInvalidError) return { kind: 'invalid', ref, problems: e.diagnostics };
    const err = coerceError(e);
    return { kind: 'invalid', ref, problems: [{ code: err.code, message: err.message, hint: err.hint }] };
  }
  return { kind: 'diff', ref, diff: diffCompiled(base, current) };
}
