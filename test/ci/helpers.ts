/**
 * For the CI tests: the CLI as a subprocess of the build with the CI variables that would change
 * its defaults cleared, throwaway git repositories holding an example plan, and sealed reports.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePlanFile, type Compiled } from '../../compiler/compile.js';
import { finalizeReport, reportJsonText, type Report, type ReportBody } from '../../executor/reports/index.js';
import { emptyEffectCounts } from '../../executor/reports/report.js';
import { bin, root, type CliResult } from '../cli/run.js';

export { root };
export const EXAMPLES_DIR = join(root, 'plans', 'examples');

/** Variables that change `ci-comment`'s defaults; cleared unless a test sets them. */
const CI_ENV = { REPRISE_TRUST: '', REPRISE_BASE_REF: '', GITHUB_BASE_REF: '', CI_MERGE_REQUEST_TARGET_BRANCH_NAME: '', REPRISE_POLICY: '' };

export function reprise(args: string[], cwd: string, env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', REPRISE_DEBUG: '', ...CI_ENV, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'core.hooksPath=/dev/null', '-c', 'commit.gpgsign=false', '-c', 'user.name=test', '-c', 'user.email=test@example.invalid', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Copies an example's files (`<name>.*`) into `dir/plans/`. */
export function copyExample(dir: string, name: string): string {
  mkdirSync(join(dir, 'plans'), { recursive: true });
  for (const f of readdirSync(EXAMPLES_DIR).filter((x) => x.startsWith(`${name}.`))) copyFileSync(join(EXAMPLES_DIR, f), join(dir, 'plans', f));
  return `plans/${name}.yaml`;
}

/**
 * A git repository as a pull request's checkout: `origin/main` is its first commit, holding the
 * example when `committed` (else nothing); the example is in the working tree either way.
 */
export function prCheckout(name: string, opts: { committed: boolean }): { dir: string; plan: string } {
  const dir = mkdtempSync(join(tmpdir(), 'reprise-ci-'));
  git(dir, 'init', '-q');
  let plan = `plans/${name}.yaml`;
  if (opts.committed) {
    plan = copyExample(dir, name);
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', 'base');
  } else {
    git(dir, 'commit', '-q', '--allow-empty', '-m', 'base');
    copyExample(dir, name);
  }
  git(dir, 'update-ref', 'refs/remotes/origin/main', 'HEAD');
  return { dir, plan };
}

export async function compileIn(dir: string, plan: string): Promise<Compiled> {
  return compilePlanFile(join(dir, plan));
}

/** A completed dry-run report of `compiled`, sealed, as the executor writes it. */
export function dryRunReport(compiled: Compiled, over: Partial<ReportBody> = {}): Report {
  const expect = (compiled.plan.selection ?? compiled.plan.source)!.expect;
  return finalizeReport({
    kind: 'reprise/report@1',
    runId: compiled.runId,
    plan: compiled.plan.name,
    revision: compiled.plan.revision,
    manifest: compiled.hash,
    stage: 'dry-run',
    outcome: 'completed',
    startedAt: '2026-11-14T10:00:00.000Z',
    finishedAt: '2026-11-14T10:01:00.000Z',
    durationMs: 60_000,
    count: { value: 48_213, expect, countedAt: '2026-11-14T09:59:59.000Z' },
    counts: { selected: 48_213, processed: 48_213, succeeded: 48_213, failed: 0, skippedOutsideWindow: 0, remaining: 0 },
    effects: compiled.plan.sideEffects.map((e) => ({ name: e.name, kind: e.kind, policy: e.backfill, delivery: e.delivery, live: e.live, counts: { ...emptyEffectCounts(), captured: 48_213 } })),
    errors: { total: 0, samples: [] },
    throttle: { throttledMs: 0, episodes: [] },
    throughput: [],
    validations: [],
    fingerprints: { orders: { kind: 'postgres', systemIdentifier: '7315264850113569834', database: 'orders' } },
    canary: null,
    preview: [],
    abort: null,
    workers: 1,
    ...over,
  });
}

/** Writes `reports/<run>.<stage>.report.json` under `dir`; returns its path relative to `dir`. */
export function writeReport(dir: string, report: Report): string {
  mkdirSync(join(dir, 'reports'), { recursive: true });
  const rel = `reports/${report.runId}.${report.stage}.report.json`;
  writeFileSync(join(dir, rel), reportJsonText(report));
  return rel;
}
